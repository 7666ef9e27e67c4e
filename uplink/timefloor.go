package uplink

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/internal/version"
)

// releaseFloor is the earliest time any build of the agent can run at: a
// clock showing less is unset (a board without a real-time clock boots at
// 1970).
func releaseFloor() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// floorSlack is how far behind the last known good time the clock may
// be: a board's clock restored from a saved time (fake-hwclock) is a
// little behind, which is harmless; 1970 is not.
const floorSlack = 24 * time.Hour

// buildTime is the build's date stamped by the Makefile, or the release
// floor for a plain go build.
func buildTime() time.Time {
	if t, err := time.Parse(time.RFC3339, version.Date); err == nil && t.After(releaseFloor()) {
		return t.UTC()
	}
	return releaseFloor()
}

// timeFloor knows the earliest time the clock can truly be: the build time,
// or the last time the unit was connected with a clock it trusted, less
// floorSlack. The last good time is persisted (clock.json) so that it
// survives a reboot into 1970.
type timeFloor struct {
	path  string
	build time.Time

	mu       sync.Mutex
	lastGood time.Time
}

type floorFile struct {
	V        int       `json:"v"`
	LastGood time.Time `json:"last_good"`
}

func newTimeFloor(path string, build time.Time) *timeFloor {
	if build.IsZero() {
		build = buildTime()
	}
	return &timeFloor{path: path, build: build.UTC()}
}

func (f *timeFloor) floor() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.build
	if g := f.lastGood.Add(-floorSlack); g.After(fl) {
		fl = g
	}
	return fl
}

// sane reports whether now is at or after the floor.
func (f *timeFloor) sane(now time.Time) bool { return !now.Before(f.floor()) }

// observe records now as a good time if it is sane.
func (f *timeFloor) observe(now time.Time) {
	if !f.sane(now) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.After(f.lastGood) {
		f.lastGood = now.UTC()
	}
}

func (f *timeFloor) load() error {
	if f.path == "" {
		return nil
	}
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("uplink: last known good time: %w", err)
	}
	var ff floorFile
	if err := json.Unmarshal(b, &ff); err != nil || ff.V != 1 {
		return fmt.Errorf("uplink: last known good time %s is unreadable (%v); the build time is the floor", f.path, err)
	}
	f.mu.Lock()
	f.lastGood = ff.LastGood.UTC()
	f.mu.Unlock()
	return nil
}

func (f *timeFloor) save() error {
	f.mu.Lock()
	lg := f.lastGood
	f.mu.Unlock()
	if f.path == "" || lg.IsZero() {
		return nil
	}
	return writeFileAtomic(f.path, mustJSON(floorFile{V: 1, LastGood: lg}))
}
