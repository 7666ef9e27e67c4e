package footage

// Hooks for the external tests (package footage_test).

// Abandon leaves the store as a crash would: files closed without a final
// sync or seal, the lock released. The store must not be used after.
func (s *Store) Abandon() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if s.act != nil {
		s.act.f.Close()
		s.act = nil
	}
	s.man.close()
	if s.lock != nil {
		s.lock.Close()
	}
}

// ActiveSegment is the name of the segment being written, "" if none.
func (s *Store) ActiveSegment() string {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.act == nil {
		return ""
	}
	return s.act.seg.name
}

// RecordOffsets lists the offset and size of every record of a segment.
func RecordOffsets(path string) ([][2]int64, error) {
	f, err := OSFS{}.OpenFile(path, 0, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	res, err := scanSegment(f, size)
	if err != nil {
		return nil, err
	}
	var out [][2]int64
	for _, e := range res.index {
		out = append(out, [2]int64{e.off, recordSize(int(e.length))})
	}
	return out, nil
}

// RecHeaderSize is the size of a record header.
const RecHeaderSize = recHeaderSize
