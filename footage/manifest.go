package footage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sort"
	"sync"
)

// The index file (index.log) is an append-only journal of the sealed
// segments' summaries, their deletions, and the clock corrections; see
// doc.go. It lets Open skip reading 40,000 footers. Summaries in it are a
// cache, rebuilt from the footers whenever they are missing; clock
// corrections are not (they outlive the segments that carried them), so
// appending one is synced.

const (
	manifestHeaderSize = 16
	manifestRecHeader  = 12

	mSummary   = 'S'
	mDelete    = 'D'
	mClock     = 'C'
	mHighWater = 'H'
)

type manifest struct {
	mu   sync.Mutex // appends come from the writer and from retention
	fsys FS
	dir  string
	f    File
	off  int64
	// records counts the records in the file, live those still meaning
	// something; compaction rewrites the file when most are dead.
	records, live int
}

type manifestState struct {
	sums   map[uint64]summary
	clocks []clockEntry
	end    int64 // end of the last valid record
	size   int64
	valid  bool // the header was intact
	count  int
	// maxSeq and maxRun are the highest sequence and run the file has
	// seen, so that they are never reused even when every segment that
	// carried them has been evicted.
	maxSeq uint64
	maxRun uint32
}

// journalRecord reads the record at off of a journal (index.log,
// chain.log): u32 length, u32 CRC-32C of the kind byte and the payload,
// the kind, 3 zero bytes, the payload. It reports false at the end of the
// data, or at a record that is cut short, longer than max, or whose CRC
// does not match: where the valid records end.
func journalRecord(b []byte, off, max int) (kind byte, payload []byte, next int, ok bool) {
	if off+manifestRecHeader > len(b) {
		return 0, nil, off, false
	}
	n := int(binary.LittleEndian.Uint32(b[off:]))
	if n < 0 || n > max || off+manifestRecHeader+n > len(b) { // negative: a huge length read into a 32-bit int
		return 0, nil, off, false
	}
	kind = b[off+8]
	payload = b[off+manifestRecHeader : off+manifestRecHeader+n]
	c := crc32.Update(0, castagnoli, b[off+8:off+9])
	c = crc32.Update(c, castagnoli, payload)
	if c != binary.LittleEndian.Uint32(b[off+4:]) {
		return 0, nil, off, false
	}
	return kind, payload, off + manifestRecHeader + n, true
}

func manifestHeader() []byte {
	b := make([]byte, manifestHeaderSize)
	copy(b, indexMagic[:])
	binary.LittleEndian.PutUint32(b[8:], schemaVersion)
	binary.LittleEndian.PutUint32(b[12:], crc32.Checksum(b[:12], castagnoli))
	return b
}

func encodeManifestRecord(kind byte, payload []byte) []byte {
	b := make([]byte, manifestRecHeader+len(payload))
	binary.LittleEndian.PutUint32(b[0:], uint32(len(payload)))
	b[8] = kind
	copy(b[manifestRecHeader:], payload)
	c := crc32.Update(0, castagnoli, b[8:9])
	c = crc32.Update(c, castagnoli, payload)
	binary.LittleEndian.PutUint32(b[4:], c)
	return b
}

// readManifest replays the index file. A damaged or missing file gives an
// empty state: everything in it can be rebuilt from the segments except
// clock corrections whose segments are gone.
func readManifest(fsys FS, dir string) (manifestState, error) {
	st := manifestState{sums: map[uint64]summary{}}
	f, err := fsys.OpenFile(join(dir, indexFile), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return st, err
	}
	st.size = size
	if size > 1<<30 {
		return st, nil
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return st, err
	}
	if len(b) < manifestHeaderSize || [8]byte(b[:8]) != indexMagic ||
		binary.LittleEndian.Uint32(b[12:]) != crc32.Checksum(b[:12], castagnoli) ||
		binary.LittleEndian.Uint32(b[8:]) != schemaVersion {
		return st, nil
	}
	st.valid = true
	off := manifestHeaderSize
	for {
		kind, payload, next, ok := journalRecord(b, off, len(b))
		if !ok {
			break
		}
		switch kind {
		case mSummary:
			if s, _, err := decodeSummary(payload); err == nil {
				st.sums[s.firstSeq] = s
				st.mark(s.lastSeq, s.run)
			}
		case mDelete:
			if len(payload) == 20 {
				delete(st.sums, binary.LittleEndian.Uint64(payload))
				st.mark(binary.LittleEndian.Uint64(payload[8:]), binary.LittleEndian.Uint32(payload[16:]))
			}
		case mClock:
			if c, ok := decodeClockPayload(payload); ok {
				st.clocks = append(st.clocks, c)
				st.mark(c.seq, c.run)
			}
		case mHighWater:
			if len(payload) == 12 {
				st.mark(binary.LittleEndian.Uint64(payload), binary.LittleEndian.Uint32(payload[8:]))
			}
		}
		st.count++
		off = next
	}
	st.end = int64(off)
	return st, nil
}

func (st *manifestState) mark(seq uint64, run uint32) {
	st.maxSeq = max(st.maxSeq, seq)
	st.maxRun = max(st.maxRun, run)
}

// openManifest opens the index file for appending, cutting a damaged tail
// or starting a fresh file when the header is damaged.
func openManifest(fsys FS, dir string, st manifestState) (*manifest, error) {
	m := &manifest{fsys: fsys, dir: dir, records: st.count, live: len(st.sums) + len(st.clocks)}
	if !st.valid {
		f, err := createFile(fsys, dir, indexFile, manifestHeader(), true)
		if f == nil {
			return nil, fmt.Errorf("create %s: %w", indexFile, err)
		}
		m.f, m.off, m.records = f, manifestHeaderSize, 0
		return m, nil
	}
	f, err := fsys.OpenFile(join(dir, indexFile), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	if st.end < st.size {
		if err := f.Truncate(st.end); err != nil {
			f.Close()
			return nil, fmt.Errorf("cut the damaged tail of %s: %w", indexFile, err)
		}
	}
	m.f, m.off = f, st.end
	return m, nil
}

func (m *manifest) append(kind byte, payload []byte, sync bool) error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil
	}
	b := encodeManifestRecord(kind, payload)
	if err := writeFull(m.f, b, m.off); err != nil {
		// Leave no partial record behind for the next append to follow.
		m.f.Truncate(m.off)
		return fmt.Errorf("footage: append to %s: %w", indexFile, err)
	}
	m.off += int64(len(b))
	m.records++
	if sync {
		if err := m.f.Sync(); err != nil {
			return fmt.Errorf("footage: sync %s: %w", indexFile, err)
		}
	}
	return nil
}

func (m *manifest) addSummary(s *summary) error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	m.live++
	m.mu.Unlock()
	return m.append(mSummary, s.encode(nil), false)
}

func (m *manifest) addDelete(firstSeq, lastSeq uint64, run uint32) error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	m.live--
	m.mu.Unlock()
	b := binary.LittleEndian.AppendUint64(nil, firstSeq)
	b = binary.LittleEndian.AppendUint64(b, lastSeq)
	b = binary.LittleEndian.AppendUint32(b, run)
	return m.append(mDelete, b, false)
}

func (m *manifest) addClock(c clockEntry) error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	m.live++
	m.mu.Unlock()
	b := make([]byte, clockEntrySize)
	c.put(b)
	return m.append(mClock, b, true)
}

// needsCompaction reports whether most of the file is dead records.
func (m *manifest) needsCompaction() bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.records > 1024 && m.records > 2*m.live
}

// compact rewrites the file with only the live state, through a temporary
// file and a rename.
func (m *manifest) compact(sums []summary, clocks []clockEntry, maxSeq uint64, maxRun uint32) error {
	sort.Slice(sums, func(i, j int) bool { return sums[i].firstSeq < sums[j].firstSeq })
	b := manifestHeader()
	hw := binary.LittleEndian.AppendUint64(nil, maxSeq)
	hw = binary.LittleEndian.AppendUint32(hw, maxRun)
	b = append(b, encodeManifestRecord(mHighWater, hw)...)
	for i := range sums {
		b = append(b, encodeManifestRecord(mSummary, sums[i].encode(nil))...)
	}
	cb := make([]byte, clockEntrySize)
	for _, c := range clocks {
		c.put(cb)
		b = append(b, encodeManifestRecord(mClock, cb)...)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := createFile(m.fsys, m.dir, indexFile, b, true)
	if f == nil {
		return fmt.Errorf("footage: rewrite %s: %w", indexFile, err)
	}
	// The new file is in place (even if syncing the directory failed):
	// appends go to it from now on.
	if m.f != nil {
		m.f.Close()
	}
	m.f, m.off = f, int64(len(b))
	m.records, m.live = len(sums)+len(clocks)+1, len(sums)+len(clocks)+1
	if err != nil {
		return fmt.Errorf("footage: rewrite %s: %w", indexFile, err)
	}
	return nil
}

func (m *manifest) close() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil
	}
	err := m.f.Close()
	m.f = nil
	return err
}
