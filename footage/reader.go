package footage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
)

// Frame is a recorded frame as read back.
type Frame struct {
	// Seq is the frame's sequence number: unique and increasing in the
	// order frames were recorded, whatever the clock did.
	Seq uint64
	// Time is the capture time, corrected for clock steps recorded since
	// (see doc.go, Time); RawTime is the time as stamped.
	Time, RawTime time.Time
	Codec         camera.Codec
	Width, Height int
	// Flags are FlagEvent, FlagPreRoll, FlagTimelapse.
	Flags byte
	// Data is the encoded picture. In a callback it is valid only until
	// the callback returns.
	Data []byte
}

// hit is a record chosen by a query.
type hit struct {
	e   indexEntry
	eff int64 // effective time
}

// pinViews selects segments under the lock and pins them, so that
// retention does not delete them while they are read. release unpins.
func (s *Store) pinViews(sel func(v *segView) bool) ([]segView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	var out []segView
	for _, v := range s.viewsLocked() {
		if sel(&v) {
			v.seg.pins++
			out = append(out, v)
		}
	}
	return out, nil
}

func (s *Store) release(vs []segView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range vs {
		v.seg.pins--
	}
}

// entries returns a segment's index: the in-memory one of a segment not
// yet sealed, otherwise the one in its footer.
func (s *Store) entries(v *segView) ([]indexEntry, error) {
	s.mu.Lock()
	if !v.seg.sealed {
		idx := append([]indexEntry(nil), v.seg.idx...)
		s.mu.Unlock()
		return idx, nil
	}
	s.mu.Unlock()
	f, err := s.fsys.OpenFile(join(s.dir, v.seg.name), os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("footage: open segment %s: %w", v.seg.name, err)
	}
	defer f.Close()
	_, idx, ok, err := readFooter(f, v.sum.size, true)
	if err != nil {
		return nil, fmt.Errorf("footage: segment %s: read footer: %w", v.seg.name, err)
	}
	if !ok {
		// The footer was damaged after sealing: fall back to the records.
		size, err := f.Size()
		if err != nil {
			return nil, fmt.Errorf("footage: segment %s: %w", v.seg.name, err)
		}
		res, err := scanSegment(f, size)
		if err != nil {
			return nil, fmt.Errorf("footage: segment %s: footer damaged and records unreadable: %w", v.seg.name, err)
		}
		s.log.Warn("segment footer damaged; read its records instead", "segment", v.seg.name)
		return res.index, nil
	}
	return idx, nil
}

// readRecord reads the record e points at into buf (grown as needed) and
// checks it: errCorrupt if its CRC or header do not match the index.
func readRecord(f io.ReaderAt, e indexEntry, buf []byte) ([]byte, recHeader, error) {
	n := recHeaderSize + int(e.length)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	b := buf[:n]
	if _, err := f.ReadAt(b, e.off); err != nil {
		if errors.Is(err, io.EOF) {
			return buf, recHeader{}, errCorrupt
		}
		return buf, recHeader{}, err
	}
	h := getRecHeader(b)
	if h.seq != e.seq || h.length != e.length || h.kind != e.kind || recordCRC(b, b[recHeaderSize:]) != h.crc {
		return buf, h, errCorrupt
	}
	return buf, h, nil
}

// query walks the frames of the pinned segments vs that keep accepts, in
// sequence order, reading each and calling fn. Damaged frames are skipped,
// counted in the result and reported as a fault. With withData false, fn
// gets frames without Data (nothing is read but the indexes).
func (s *Store) query(ctx context.Context, vs []segView, keep func(eff int64, e *indexEntry) bool, withData bool, fn func(Frame) error) (int, error) {
	var buf []byte
	skipped := 0
	for i := range vs {
		v := &vs[i]
		idx, err := s.entries(v)
		if err != nil {
			return skipped, err
		}
		var f File
		for _, e := range idx {
			if err := ctx.Err(); err != nil {
				if f != nil {
					f.Close()
				}
				return skipped, err
			}
			eff := e.time + v.off
			if e.kind != kindFrame || !keep(eff, &e) {
				continue
			}
			fr := Frame{Seq: e.seq, Time: fromNano(eff), RawTime: fromNano(e.time), Flags: e.flags,
				Codec: codecOf(v.sum.codec), Width: int(v.sum.width), Height: int(v.sum.height)}
			if withData {
				if f == nil {
					if f, err = s.fsys.OpenFile(join(s.dir, v.seg.name), os.O_RDONLY, 0); err != nil {
						return skipped, fmt.Errorf("footage: open segment %s: %w", v.seg.name, err)
					}
				}
				var h recHeader
				var data []byte
				buf, data, h, err = s.readPayload(f, v, e, buf)
				if errors.Is(err, errCorrupt) {
					skipped++
					s.damagedRead(v.seg.name, e)
					continue
				}
				if err != nil {
					f.Close()
					return skipped, fmt.Errorf("footage: read segment %s: %w", v.seg.name, err)
				}
				fr.Data = data
				fr.Codec, fr.Width, fr.Height = codecOf(h.codec), int(h.width), int(h.height)
			}
			if err := fn(fr); err != nil {
				if f != nil {
					f.Close()
				}
				return skipped, err
			}
		}
		if f != nil {
			f.Close()
		}
	}
	return skipped, nil
}

func (s *Store) damagedRead(seg string, e indexEntry) {
	s.log.Error("damaged record skipped", "segment", seg, "seq", e.seq, "offset", e.off)
	s.mu.Lock()
	s.st.corruptRead++
	s.mu.Unlock()
	s.updateDamageFault()
}

// overlap selects the segments with frames in [from, to).
func overlap(from, to int64) func(v *segView) bool {
	return func(v *segView) bool { return v.sum.frames > 0 && v.lo < to && v.hi >= from }
}

// Frames calls fn for every intact frame whose time is in [from, to), in
// sequence order, and returns the number of damaged frames skipped. The
// segments read are kept from eviction until it returns.
func (s *Store) Frames(ctx context.Context, from, to time.Time, fn func(Frame) error) (int, error) {
	f, t := from.UnixNano(), to.UnixNano()
	vs, err := s.pinViews(overlap(f, t))
	if err != nil {
		return 0, err
	}
	defer s.release(vs)
	return s.query(ctx, vs, func(eff int64, _ *indexEntry) bool { return eff >= f && eff < t }, true, fn)
}

// FramesBySeq calls fn for every intact frame with a sequence in
// [from, to], in order.
func (s *Store) FramesBySeq(ctx context.Context, from, to uint64, fn func(Frame) error) (int, error) {
	vs, err := s.pinViews(func(v *segView) bool {
		return v.sum.frames > 0 && v.sum.firstSeq <= to && v.sum.lastSeq >= from
	})
	if err != nil {
		return 0, err
	}
	defer s.release(vs)
	return s.query(ctx, vs, func(_ int64, e *indexEntry) bool { return e.seq >= from && e.seq <= to }, true, fn)
}

// FrameBySeq returns the frame with sequence seq, with its own copy of the
// data.
func (s *Store) FrameBySeq(ctx context.Context, seq uint64) (Frame, error) {
	var out Frame
	found := false
	skipped, err := s.FramesBySeq(ctx, seq, seq, func(f Frame) error {
		out, found = f, true
		out.Data = append([]byte(nil), f.Data...)
		return nil
	})
	if err != nil {
		return Frame{}, err
	}
	if !found {
		if skipped > 0 {
			return Frame{}, fmt.Errorf("footage: frame %d is damaged: %w", seq, errCorrupt)
		}
		return Frame{}, fmt.Errorf("%w: no frame %d", ErrNoFootage, seq)
	}
	return out, nil
}

// Nearest returns the intact frame whose time is nearest at, no further
// than within, with its own copy of the data: a snapshot.
func (s *Store) Nearest(ctx context.Context, at time.Time, within time.Duration) (Frame, error) {
	a := at.UnixNano()
	lo, hi := a-int64(within), a+int64(within)
	vs, err := s.pinViews(overlap(lo, hi+1))
	if err != nil {
		return Frame{}, err
	}
	defer s.release(vs)
	// Candidates from the indexes, nearest first; read until one is
	// intact.
	type cand struct {
		v    *segView
		e    indexEntry
		dist int64
		eff  int64
	}
	var cands []cand
	for i := range vs {
		idx, err := s.entries(&vs[i])
		if err != nil {
			return Frame{}, err
		}
		for _, e := range idx {
			eff := e.time + vs[i].off
			if e.kind != kindFrame || eff < lo || eff > hi {
				continue
			}
			d := eff - a
			if d < 0 {
				d = -d
			}
			cands = append(cands, cand{&vs[i], e, d, eff})
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].dist < cands[j].dist })
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return Frame{}, err
		}
		f, err := s.fsys.OpenFile(join(s.dir, c.v.seg.name), os.O_RDONLY, 0)
		if err != nil {
			return Frame{}, fmt.Errorf("footage: open segment %s: %w", c.v.seg.name, err)
		}
		_, data, h, err := s.readPayload(f, c.v, c.e, nil)
		f.Close()
		if errors.Is(err, errCorrupt) {
			s.damagedRead(c.v.seg.name, c.e)
			continue
		}
		if err != nil {
			return Frame{}, fmt.Errorf("footage: read segment %s: %w", c.v.seg.name, err)
		}
		return Frame{Seq: c.e.seq, Time: fromNano(c.eff), RawTime: fromNano(c.e.time), Flags: c.e.flags,
			Codec: codecOf(h.codec), Width: int(h.width), Height: int(h.height),
			Data: data}, nil
	}
	return Frame{}, fmt.Errorf("%w: nothing within %s of %s", ErrNoFootage, within, at.Format(time.RFC3339))
}

// SegmentInfo describes a segment, for listings.
type SegmentInfo struct {
	Name          string
	FirstSeq      uint64
	LastSeq       uint64
	Run           uint32
	Frames        int
	Events        int
	Damaged       int // damaged records skipped
	Start, End    time.Time
	ClockSet      bool // times are from a set clock (after 2020)
	Codec         camera.Codec
	Width, Height int
	Size          int64
	Sealed, Held  bool
	// Encrypted: its pictures and events are encrypted at rest (see
	// doc.go, Encryption at rest).
	Encrypted       bool
	SideFiles       []string
	ClockCorrection time.Duration // added to the raw times
}

// Segments lists the segments, oldest first.
func (s *Store) Segments() []SegmentInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	views := s.viewsLocked()
	out := make([]SegmentInfo, 0, len(views))
	for i := range views {
		v := &views[i]
		out = append(out, SegmentInfo{
			Name: v.seg.name, FirstSeq: v.sum.firstSeq, LastSeq: v.sum.lastSeq, Run: v.sum.run,
			Frames: int(v.sum.frames), Events: int(v.sum.events), Damaged: int(v.sum.corrupt),
			Start: fromNano(v.lo), End: fromNano(v.hi), ClockSet: v.lo >= plausibleTime,
			Codec: codecOf(v.sum.codec), Width: int(v.sum.width), Height: int(v.sum.height),
			Size: v.sum.size, Sealed: v.seg.sealed, Held: s.heldLocked(v), Encrypted: v.sum.encrypted(),
			SideFiles: append([]string(nil), v.seg.side...), ClockCorrection: time.Duration(v.off),
		})
	}
	return out
}

// Span is the time of the oldest and newest frames (zero if none).
func (s *Store) Span() (oldest, newest time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return spanOf(s.viewsLocked(), false)
}

// spanOf finds the oldest and newest frame times; with setOnly, only among
// segments stamped by a set clock when there are any.
func spanOf(views []segView, setOnly bool) (time.Time, time.Time) {
	var lo, hi int64
	found := false
	for pass := 0; pass < 2 && !found; pass++ {
		for _, v := range views {
			if v.sum.frames == 0 || (setOnly && pass == 0 && v.lo < plausibleTime) {
				continue
			}
			if !found || v.lo < lo {
				lo = v.lo
			}
			if !found || v.hi > hi {
				hi = v.hi
			}
			found = true
		}
	}
	if !found {
		return time.Time{}, time.Time{}
	}
	return fromNano(lo), fromNano(hi)
}
