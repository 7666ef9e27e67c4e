package footage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// Event is a trigger recorded in the store (motion, PIR, manual, ...).
type Event struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
}

// Events calls fn for every intact event record whose time is in
// [from, to), in sequence order. Damaged records are skipped and counted
// like damaged frames.
func (s *Store) Events(ctx context.Context, from, to time.Time, fn func(Event) error) error {
	f, t := from.UnixNano(), to.UnixNano()
	vs, err := s.pinViews(func(v *segView) bool { return v.sum.events > 0 && v.lo < t && v.hi >= f })
	if err != nil {
		return err
	}
	defer s.release(vs)
	var buf []byte
	for i := range vs {
		v := &vs[i]
		idx, err := s.entries(v)
		if err != nil {
			return err
		}
		var file File
		for _, e := range idx {
			if err := ctx.Err(); err != nil {
				break
			}
			eff := e.time + v.off
			if e.kind != kindEvent || eff < f || eff >= t {
				continue
			}
			if file == nil {
				if file, err = s.fsys.OpenFile(join(s.dir, v.seg.name), os.O_RDONLY, 0); err != nil {
					return fmt.Errorf("footage: open segment %s: %w", v.seg.name, err)
				}
			}
			var data []byte
			buf, data, _, err = s.readPayload(file, v, e, buf)
			if errors.Is(err, errCorrupt) {
				s.damagedRead(v.seg.name, e)
				continue
			}
			if err != nil {
				file.Close()
				return fmt.Errorf("footage: read segment %s: %w", v.seg.name, err)
			}
			ev := Event{Seq: e.seq, Time: fromNano(eff), Kind: string(data)}
			if err := fn(ev); err != nil {
				file.Close()
				return err
			}
		}
		if file != nil {
			file.Close()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}
