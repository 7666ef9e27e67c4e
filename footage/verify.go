package footage

import (
	"context"
	"fmt"
	"io"
	"os"
)

// Problem is damage found by Verify.
type Problem struct {
	Segment string `json:"segment"`
	Offset  int64  `json:"offset"`
	What    string `json:"what"`
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Segments int   `json:"segments"`
	Records  int   `json:"records"`
	Frames   int   `json:"frames"`
	Bytes    int64 `json:"bytes"`
	// Problems is every damaged record or footer. Empty means every
	// record's CRC checked.
	Problems []Problem `json:"problems"`
	// Notes are things worth knowing that are not damage: repairs made
	// when the store was opened, side files kept, a segment still being
	// written.
	Notes []string `json:"notes"`
}

// OK reports whether nothing was damaged.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// Verify reads every record of every segment and checks its CRC, and
// checks each sealed segment's footer against its records. Damage already
// found and skipped when the store was recovered is reported again: the
// footage there is lost. It does not change the store.
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	for _, r := range s.Recovered() {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s: recovered on open: %s", r.Segment, r.Action))
	}
	vs, err := s.pinViews(func(*segView) bool { return true })
	if err != nil {
		return rep, err
	}
	defer s.release(vs)
	rep.Segments = len(vs)
	for i := range vs {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := s.verifySegment(&vs[i], i == len(vs)-1, &rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func (s *Store) verifySegment(v *segView, newest bool, rep *VerifyReport) error {
	name := v.seg.name
	problem := func(off int64, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{Segment: name, Offset: off, What: fmt.Sprintf(format, args...)})
	}
	for _, n := range v.seg.side {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s: side file %s holds bytes cut off in a recovery", name, n))
	}
	f, err := s.fsys.OpenFile(join(s.dir, name), os.O_RDONLY, 0)
	if err != nil {
		problem(0, "cannot be opened: %v", err)
		return nil
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("footage: segment %s: %w", name, err)
	}
	rep.Bytes += size

	s.mu.Lock()
	sealed := v.seg.sealed
	isActive := v.seg.writing
	dataEnd := v.seg.sum.dataEnd
	s.mu.Unlock()

	limit := size
	if !sealed && (isActive || s.ro) {
		// Being written: check what the writer has finished.
		if isActive {
			limit = min(size, dataEnd)
		}
	}
	res, err := scanSegment(&limitReader{f, limit}, limit)
	if err != nil {
		problem(0, "unreadable: %v", err)
		return nil
	}
	rep.Records += len(res.index)
	for _, e := range res.index {
		if e.kind == kindFrame {
			rep.Frames++
		}
	}
	for _, d := range res.damaged {
		problem(d.off, "%d damaged bytes: a record there fails its CRC and is skipped (its footage is lost)", d.length)
	}
	switch {
	case sealed:
		_, fidx, ok, err := readFooter(f, size, true)
		if err != nil {
			return fmt.Errorf("footage: segment %s: %w", name, err)
		}
		if !ok {
			problem(max(res.dataEnd, 0), "footer damaged: the records are intact but the segment must be read record by record")
			break
		}
		if res.tail > 0 {
			problem(res.dataEnd, "%d damaged bytes before the footer", res.tail)
		}
		// Every record the footer lists must be there, or lie in damage
		// already reported; no record may be missing from it.
		found := make(map[int64]uint64, len(res.index))
		for _, e := range res.index {
			found[e.off] = e.seq
		}
		inDamage := func(off int64) bool {
			for _, d := range res.damaged {
				if off >= d.off && off < d.off+d.length {
					return true
				}
			}
			return false
		}
		for _, e := range fidx {
			if seq, ok := found[e.off]; ok && seq == e.seq {
				delete(found, e.off)
			} else if !inDamage(e.off) {
				problem(e.off, "the footer lists record %d here, the segment does not hold it", e.seq)
			}
		}
		for off, seq := range found {
			problem(off, "record %d is not in the footer", seq)
		}
	case res.tail > 0 && s.ro && newest:
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s: %d bytes at its end are not (yet) a whole record: it is being written, or the agent stopped abruptly and the store is recovered when next opened for writing", name, res.tail))
	case res.tail > 0:
		problem(res.dataEnd, "torn tail of %d bytes", res.tail)
	}
	return nil
}

// limitReader reads a file as if it ended at n.
type limitReader struct {
	r interface {
		ReadAt([]byte, int64) (int, error)
	}
	n int64
}

func (l *limitReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > l.n {
		return 0, io.EOF
	}
	return l.r.ReadAt(p, off)
}
