package footage

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// holdsSchema is the version of holds.json; see doc.go.
const holdsSchema = 1

// Hold keeps the footage of a time range from eviction until released: an
// evidence hold, asked for by the control room or the police.
type Hold struct {
	ID      string    `json:"id"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Reason  string    `json:"reason"`
	By      string    `json:"by"`
	Created time.Time `json:"created"`
}

type holdsDoc struct {
	Schema int    `json:"schema"`
	Holds  []Hold `json:"holds"`
}

// loadHolds reads holds.json. A damaged file is not an error that stops
// the store: it raises a fault and suspends eviction, since any footage
// might be held.
func (s *Store) loadHolds() error {
	f, err := s.fsys.OpenFile(join(s.dir, holdsFile), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("footage: open %s: %w", join(s.dir, holdsFile), err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("footage: %s: %w", join(s.dir, holdsFile), err)
	}
	b := make([]byte, min(size, 16<<20))
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("footage: read %s: %w", join(s.dir, holdsFile), err)
	}
	var doc holdsDoc
	switch err := json.Unmarshal(b, &doc); {
	case err != nil:
		s.holdsErr = fmt.Errorf("footage: %s is damaged (%v): no footage is evicted until it is repaired or restored from the control room's record of holds", join(s.dir, holdsFile), err)
	case doc.Schema != holdsSchema:
		s.holdsErr = fmt.Errorf("footage: %s has schema %d, this build reads %d: no footage is evicted until a matching outpost runs", join(s.dir, holdsFile), doc.Schema, holdsSchema)
	default:
		s.holds = doc.Holds
		return nil
	}
	s.log.Error("evidence holds unreadable; eviction suspended", "err", s.holdsErr)
	s.faults.raise(FaultHoldsUnreadable, s.holdsErr.Error(), s.clk.Now())
	return nil
}

// saveHolds writes holds atomically: temporary file, sync, rename, sync
// the directory.
func (s *Store) saveHolds(holds []Hold) error {
	b, err := json.MarshalIndent(holdsDoc{Schema: holdsSchema, Holds: holds}, "", "  ")
	if err != nil {
		return err
	}
	if _, err := createFile(s.fsys, s.dir, holdsFile, append(b, '\n'), false); err != nil {
		return fmt.Errorf("footage: save %s: %w", join(s.dir, holdsFile), err)
	}
	return nil
}

// AddHold holds the footage between from and to (wall-clock times) until
// the hold is released. A hold over the hold cap is still made — evidence
// comes first — but raises FaultHoldCap.
func (s *Store) AddHold(from, to time.Time, reason, by string) (Hold, error) {
	if s.ro {
		return Hold{}, ErrReadOnly
	}
	switch {
	case !from.Before(to):
		return Hold{}, fmt.Errorf("footage: hold from %s to %s: the start must be before the end", from.Format(time.RFC3339), to.Format(time.RFC3339))
	case reason == "":
		return Hold{}, errors.New("footage: a hold needs a reason (an incident or case reference)")
	case by == "":
		return Hold{}, errors.New("footage: a hold needs the name of who asked for it")
	}
	var id [8]byte
	rand.Read(id[:])
	h := Hold{ID: "h-" + hex.EncodeToString(id[:]), From: from.UTC(), To: to.UTC(), Reason: reason, By: by, Created: s.clk.Now().UTC()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holdsErr != nil {
		return Hold{}, s.holdsErr
	}
	holds := append(append([]Hold(nil), s.holds...), h)
	sort.Slice(holds, func(i, j int) bool { return holds[i].From.Before(holds[j].From) })
	if err := s.saveHolds(holds); err != nil {
		return Hold{}, err
	}
	s.holds = holds
	s.log.Info("evidence hold added", "id", h.ID, "from", h.From, "to", h.To, "reason", reason, "by", by)
	s.checkHoldCapLocked()
	return h, nil
}

// ReleaseHold ends a hold; its footage is again subject to retention.
func (s *Store) ReleaseHold(id string) error {
	if s.ro {
		return ErrReadOnly
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holdsErr != nil {
		return s.holdsErr
	}
	var keep []Hold
	found := false
	for _, h := range s.holds {
		if h.ID == id {
			found = true
			continue
		}
		keep = append(keep, h)
	}
	if !found {
		return fmt.Errorf("footage: no hold %q (list them with 'outpost footage ls')", id)
	}
	if err := s.saveHolds(keep); err != nil {
		return err
	}
	s.holds = keep
	s.log.Info("evidence hold released", "id", id)
	s.checkHoldCapLocked()
	return nil
}

// Holds lists the holds.
func (s *Store) Holds() []Hold {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Hold(nil), s.holds...)
}

// heldLocked reports whether a segment overlaps a hold. With the holds
// file unreadable every segment counts as held.
func (s *Store) heldLocked(v *segView) bool {
	if s.holdsErr != nil {
		return true
	}
	for _, h := range s.holds {
		if v.sum.frames == 0 && v.sum.events == 0 {
			continue
		}
		if v.lo <= h.To.UnixNano() && v.hi >= h.From.UnixNano() {
			return true
		}
	}
	return false
}

// heldBytesLocked is the size of the held segments.
func (s *Store) heldBytesLocked(views []segView) int64 {
	var n int64
	for i := range views {
		if s.heldLocked(&views[i]) {
			n += views[i].sum.size
		}
	}
	return n
}

func (s *Store) checkHoldCapLocked() {
	total, _, err := s.fsys.DiskUsage(s.dir)
	if err != nil || total == 0 {
		return
	}
	held := s.heldBytesLocked(s.viewsLocked())
	limit := s.opts.HoldCap.Of(total)
	now := s.clk.Now()
	if held > limit {
		s.faults.raise(FaultHoldCap, fmt.Sprintf("evidence holds keep %s, above retention.hold_cap %s (%s): nothing held is deleted; release holds that are no longer needed or raise the cap",
			fmtBytes(held), s.opts.HoldCap, fmtBytes(limit)), now)
		return
	}
	s.faults.clear(FaultHoldCap, now)
}

func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
