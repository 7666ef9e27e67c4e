package cmdauth

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/outpost-cctv/outpost/internal/atomicfile"
)

// stateVersion is the schema version of the state file.
const stateVersion = 1

// state is the replay state, as kept in the state file.
type state struct {
	V    int    `json:"v"`
	Unit string `json:"unit"`
	// Floor, when set, refuses every request issued at or before it, for
	// every key: it is set when a damaged state was put aside.
	Floor time.Time            `json:"floor,omitzero"`
	Keys  map[string]*keyState `json:"keys"`
}

// keyState is the replay state of one key. Invariant: every request id
// admitted with the key is either in IDs or was issued before
// HighWater - window or at or before Floor, so it is refused again.
type keyState struct {
	HighWater time.Time            `json:"high_water"`
	Floor     time.Time            `json:"floor,omitzero"`
	IDs       map[string]time.Time `json:"ids"`
}

// prune drops ids issued before HighWater - window, then the oldest beyond
// max, raising Floor to the newest issue time dropped that way. It returns
// what it dropped.
func (k *keyState) prune(window time.Duration, max int) map[string]time.Time {
	var dropped map[string]time.Time
	drop := func(id string, t time.Time) {
		if dropped == nil {
			dropped = map[string]time.Time{}
		}
		dropped[id] = t
		delete(k.IDs, id)
	}
	low := k.HighWater.Add(-window)
	for id, t := range k.IDs {
		if t.Before(low) {
			drop(id, t)
		}
	}
	for len(k.IDs) > max {
		var oldID string
		var old time.Time
		for id, t := range k.IDs {
			if oldID == "" || t.Before(old) || (t.Equal(old) && id < oldID) {
				oldID, old = id, t
			}
		}
		drop(oldID, old)
		if old.After(k.Floor) {
			k.Floor = old
		}
	}
	return dropped
}

// loadState reads the state file; a missing file is an empty state. A
// state for another unit is left behind (signatures name the unit, so the
// old unit's commands are refused anyway). A damaged state, or one of
// another version, is put aside (path.damaged) and replaced by a state
// that refuses everything issued until now: nothing admitted before can
// be replayed, and fresh commands run.
func loadState(path, unit string, now time.Time, log *slog.Logger) (state, error) {
	st := state{V: stateVersion, Unit: unit, Keys: map[string]*keyState{}}
	if path == "" {
		return st, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("cmdauth: replay state: %w", err)
	}
	var got state
	err = json.Unmarshal(b, &got)
	if err == nil && got.V != stateVersion {
		err = fmt.Errorf("version %d, this agent reads %d", got.V, stateVersion)
	}
	if err != nil {
		aside := path + ".damaged"
		if rerr := os.Rename(path, aside); rerr != nil {
			return st, fmt.Errorf("cmdauth: replay state %s is unreadable (%v) and could not be put aside (%v): move it away", path, err, rerr)
		}
		log.Error("replay state unreadable; put aside, and every command issued before now is refused", "path", path, "aside", aside, "err", err)
		st.Floor = now
		return st, nil
	}
	if got.Unit != unit {
		log.Warn("replay state is for another unit id; starting afresh", "path", path, "state_unit", got.Unit, "unit", unit)
		return st, nil
	}
	for k, ks := range got.Keys {
		if ks == nil {
			delete(got.Keys, k)
			continue
		}
		if ks.IDs == nil {
			ks.IDs = map[string]time.Time{}
		}
	}
	if got.Keys == nil {
		got.Keys = map[string]*keyState{}
	}
	return got, nil
}

// save writes the state of the configured keys atomically and durably.
func (s *state) save(path string, keys map[string]ed25519.PublicKey) error {
	if path == "" {
		return nil
	}
	for k := range s.Keys {
		if _, ok := keys[k]; !ok {
			delete(s.Keys, k)
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}
