package footage

import (
	"sort"
	"sync"
	"time"
)

// Fault codes. They are stable strings: the control room sees them.
const (
	// FaultDiskFull: footage could not be written for lack of space, or
	// the quota and minimum free space cannot be kept because what is left
	// is held or being exported. Frames are being dropped.
	FaultDiskFull = "disk_full"
	// FaultStorage: a write, sync or file creation failed for another
	// reason (a failing or read-only card). Frames are being dropped.
	FaultStorage = "storage_error"
	// FaultRetentionBlocked: the quota or minimum free space cannot be
	// kept because what is left is held or being exported.
	FaultRetentionBlocked = "retention_blocked"
	// FaultHoldCap: evidence holds keep more footage than
	// retention.hold_cap allows. Nothing held is deleted.
	FaultHoldCap = "hold_cap_exceeded"
	// FaultHoldsUnreadable: the holds file could not be read; no footage
	// is evicted until it is repaired, in case it is held.
	FaultHoldsUnreadable = "holds_unreadable"
	// FaultDamaged: records were found damaged (on recovery, export or
	// verify) and skipped; the footage they held is lost.
	FaultDamaged = "footage_damaged"
	// FaultFramesDropped: the recorder could not keep up with the camera
	// and dropped frames in the last minute.
	FaultFramesDropped = "frames_dropped"
)

// Fault is a condition the control room must hear about without asking.
type Fault struct {
	Code string `json:"code"`
	// Message says what happened and what to do.
	Message string    `json:"message"`
	Since   time.Time `json:"since"`
	// Active is false in the notification that the fault has cleared.
	Active bool `json:"active"`
}

// faultSet holds the active faults and tells a listener of each change.
type faultSet struct {
	mu     sync.Mutex
	active map[string]Fault
	notify func(Fault)
}

// raise sets or updates a fault; the listener hears of it when it is new
// or its message changed.
func (fs *faultSet) raise(code, msg string, now time.Time) {
	fs.mu.Lock()
	if fs.active == nil {
		fs.active = map[string]Fault{}
	}
	old, had := fs.active[code]
	if had && old.Message == msg {
		fs.mu.Unlock()
		return
	}
	f := Fault{Code: code, Message: msg, Since: now, Active: true}
	if had {
		f.Since = old.Since
	}
	fs.active[code] = f
	notify := fs.notify
	fs.mu.Unlock()
	if notify != nil {
		notify(f)
	}
}

func (fs *faultSet) clear(code string, now time.Time) {
	fs.mu.Lock()
	f, had := fs.active[code]
	if !had {
		fs.mu.Unlock()
		return
	}
	delete(fs.active, code)
	notify := fs.notify
	fs.mu.Unlock()
	if notify != nil {
		f.Active = false
		f.Since = now
		notify(f)
	}
}

func (fs *faultSet) list() []Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]Fault, 0, len(fs.active))
	for _, f := range fs.active {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

func (fs *faultSet) has(code string) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	_, ok := fs.active[code]
	return ok
}
