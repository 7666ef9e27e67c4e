package footage

import (
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// Errors callers tell apart.
var (
	// ErrNoFootage: the requested range or time holds no footage.
	ErrNoFootage = errors.New("footage: no footage in the requested range")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("footage: store is closed")
	// ErrReadOnly: a write was asked of a store opened read-only.
	ErrReadOnly = errors.New("footage: store is open read-only")
	// ErrEmptyFrame and ErrFrameTooLarge: the frame was refused (and
	// counted); the camera, not the store, is at fault.
	ErrEmptyFrame    = errors.New("footage: empty frame refused")
	ErrFrameTooLarge = errors.New("footage: frame above recording.max_frame_size refused")

	errLocked = errors.New("locked")
	// errCorrupt marks a record whose CRC or header does not match.
	errCorrupt = errors.New("record damaged")
)

// segment is one segment file as the store knows it.
type segment struct {
	name   string
	sum    summary
	sealed bool
	// idx is the record index of a segment that is not sealed (the active
	// one, or one whose sealing failed); sealed segments keep theirs in
	// the footer.
	idx  []indexEntry
	pins int
	side []string // side files holding bytes cut from it
	// writing is set while it is the active segment (guarded by mu;
	// Store.act itself is the writer's, under wmu).
	writing bool
}

// active is the segment being appended to.
type active struct {
	seg       *segment
	f         File
	off       int64 // end of the last record written
	syncedOff int64
	syncedSeq uint64
	dirty     bool
	// sha is the SHA-256 of the file's bytes [0, hashed), kept as they
	// are written so that sealing need not read the segment back;
	// shaSynced is its state at the last good sync.
	sha       hash.Hash
	hashed    int64
	shaSynced []byte
	hashedSyn int64
	zero      [align]byte // padding, never written to
}

// Recovery is one repair made when the store was opened.
type Recovery struct {
	Segment string `json:"segment"`
	// What was done, for a person: "cut a torn tail of 1234 bytes at
	// offset 5678 (kept in X)", "skipped 2 damaged records".
	Action string `json:"action"`
}

// Store is a footage store in one directory. Appends come from one writer
// at a time (the Recorder); reads (export, snapshot, verify, listing) may
// run concurrently with them and with retention.
type Store struct {
	dir  string
	fsys FS
	opts Options
	log  *slog.Logger
	clk  clock.Clock
	ro   bool
	lock io.Closer
	// crypt encrypts new segments and decrypts encrypted ones; nil
	// without a key.
	crypt *sealer

	// wmu serialises the writer's operations (append, sync, rotation,
	// clock corrections, close); they take mu briefly to publish.
	wmu sync.Mutex
	act *active
	// sealBuf holds the record being encrypted (guarded by wmu).
	sealBuf []byte

	mu       sync.Mutex
	segs     []*segment // by firstSeq
	nextSeq  uint64
	run      uint32
	runRecs  int // records written in this run
	clocks   []clockEntry
	holds    []Hold
	holdsErr error
	man      *manifest
	chain    *chain
	// lastHeadAt is when the chain's head was last signed.
	lastHeadAt time.Time
	recovered  []Recovery
	closed     bool
	synced     uint64
	faults     faultSet
	st         counters
	rate       rateMeter
}

type counters struct {
	framesWritten uint64
	eventsWritten uint64
	bytesWritten  int64
	framesLost    uint64 // written but cut after a failed sync
	refused       uint64 // empty or too large
	writeErrors   uint64
	syncs         uint64
	slowSyncs     uint64
	lastSyncDur   time.Duration
	maxSyncDur    time.Duration
	evicted       uint64
	evictedBytes  int64
	corruptRead   uint64
}

// Open opens (creating if needed) the store in dir and recovers it: a torn
// tail of a segment that was being written is cut (and kept in a side
// file), a damaged record between good ones is skipped and reported, and
// the segment is sealed. A read-write store is locked against a second
// writer.
func Open(dir string, opts Options, log *slog.Logger, clk clock.Clock) (*Store, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	s := &Store{dir: dir, fsys: opts.FS, opts: opts, log: log.With("component", "footage"), clk: clk, ro: opts.ReadOnly}
	if key, source := opts.EncryptionKey, "the key given"; key != nil || opts.KeyFile != "" {
		if key == nil {
			k, err := LoadKey(opts.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("footage: store %s not opened: %w", dir, err)
			}
			key, source = k, "the key file "+opts.KeyFile
		}
		c, err := newSealer(key, source)
		if err != nil {
			return nil, fmt.Errorf("footage: store %s not opened: %w", dir, err)
		}
		s.crypt = c
		s.opts.EncryptionKey = nil // the sealer holds it
		if !s.ro {
			s.log.Info("new footage is encrypted at rest", "key_id", fmtKeyID(c.id), "key", source)
		}
	}
	s.faults.notify = opts.OnFault
	if err := s.open(); err != nil {
		if s.lock != nil {
			s.lock.Close()
		}
		if s.man != nil {
			s.man.close()
		}
		if s.chain != nil {
			s.chain.close()
		}
		return nil, err
	}
	return s, nil
}

func (s *Store) open() error {
	start := time.Now()
	fsys := s.fsys
	if s.ro {
		if _, err := fsys.ReadDir(s.dir); err != nil {
			return fmt.Errorf("footage: open %s: %w (is --data the agent's data directory?)", s.dir, err)
		}
	} else {
		if err := fsys.MkdirAll(s.dir, 0o750); err != nil {
			return fmt.Errorf("footage: create %s: %w", s.dir, err)
		}
		l, err := fsys.Lock(join(s.dir, lockFile))
		if errors.Is(err, errLocked) {
			return fmt.Errorf("footage: %s is in use by another process (is the agent running? stop it, or open the store read-only)", s.dir)
		}
		if err != nil {
			return fmt.Errorf("footage: lock %s: %w", s.dir, err)
		}
		s.lock = l
	}
	names, err := fsys.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("footage: list %s: %w", s.dir, err)
	}
	ms, err := readManifest(fsys, s.dir)
	if err != nil {
		return fmt.Errorf("footage: read %s: %w", join(s.dir, indexFile), err)
	}

	side := map[uint64][]string{}
	var seqs []uint64
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, tmpSuffix):
			// A file whose creation never finished: it was never renamed
			// into place, so nothing refers to it.
			if !s.ro {
				fsys.Remove(join(s.dir, n))
			}
		case strings.Contains(n, segSuffix+tornSuffix):
			if seq, ok := parseSegName(n[:strings.Index(n, segSuffix)+len(segSuffix)]); ok {
				side[seq] = append(side[seq], n)
			}
		default:
			if seq, ok := parseSegName(n); ok {
				seqs = append(seqs, seq)
			}
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })

	var added []*segment
	for _, seq := range seqs {
		seg := &segment{name: segName(seq), side: side[seq]}
		if sum, ok := ms.sums[seq]; ok {
			seg.sum, seg.sealed = sum, true
			delete(ms.sums, seq)
		} else {
			ok, err := s.recoverSegment(seg)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if seg.sealed {
				added = append(added, seg)
			}
		}
		s.segs = append(s.segs, seg)
	}

	// Clock corrections: those in the index file, and those carried by
	// the segments (the index file may have lost its tail).
	seen := map[[2]uint64]bool{}
	addClock := func(c clockEntry) bool {
		k := [2]uint64{uint64(c.run), c.seq}
		if seen[k] {
			return false
		}
		seen[k] = true
		s.clocks = append(s.clocks, c)
		return true
	}
	for _, c := range ms.clocks {
		addClock(c)
	}
	var newClocks []clockEntry
	for _, seg := range s.segs {
		for _, c := range seg.sum.clocks {
			if addClock(c) {
				newClocks = append(newClocks, c)
			}
		}
	}
	sortClocks(s.clocks)

	s.nextSeq = max(ms.maxSeq+1, 1)
	s.run = ms.maxRun
	for _, seg := range s.segs {
		s.nextSeq = max(s.nextSeq, seg.sum.lastSeq+1, seg.sum.firstSeq)
		s.run = max(s.run, seg.sum.run)
	}
	for _, c := range s.clocks {
		s.run = max(s.run, c.run)
		s.nextSeq = max(s.nextSeq, c.seq+1)
	}
	s.run++

	if err := s.loadHolds(); err != nil {
		return err
	}
	if s.ro {
		if err := s.openChain(); err != nil {
			return err
		}
		s.log.Debug("opened read-only", "dir", s.dir, "segments", len(s.segs), "took", time.Since(start))
		return nil
	}

	// Bring the index file up to date.
	if s.man, err = openManifest(fsys, s.dir, ms); err != nil {
		return fmt.Errorf("footage: %w", err)
	}
	gone := len(ms.sums) // summaries of segments no longer on disk
	// Live records: summaries of the segments found (those about to be
	// deleted are counted, and uncounted by their deletion record) and
	// corrections.
	s.man.live = len(s.segs) - len(added) + gone + len(ms.clocks)
	if !ms.valid || s.man.needsCompaction() || gone > 64 {
		if err := s.compactManifest(); err != nil {
			return err
		}
	} else {
		for seq, sm := range ms.sums {
			if err := s.man.addDelete(seq, sm.lastSeq, sm.run); err != nil {
				return err
			}
		}
		for _, seg := range added {
			if err := s.man.addSummary(&seg.sum); err != nil {
				return err
			}
		}
		for _, c := range newClocks {
			if err := s.man.addClock(c); err != nil {
				return err
			}
		}
	}
	if err := s.openChain(); err != nil {
		return err
	}
	s.updateDamageFault()
	s.log.Info("footage store open", "dir", s.dir, "segments", len(s.segs), "run", s.run, "next_seq", s.nextSeq,
		"recovered", len(s.recovered), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// compactManifest rewrites the index file from the store's state.
func (s *Store) compactManifest() error {
	sums := make([]summary, 0, len(s.segs))
	for _, seg := range s.segs {
		if seg.sealed {
			sums = append(sums, seg.sum)
		}
	}
	return s.man.compact(sums, s.liveClocks(), s.nextSeq-1, s.run)
}

// liveClocks are the corrections still affecting a segment in the store.
func (s *Store) liveClocks() []clockEntry {
	runs := map[uint32]bool{s.run: true}
	for _, seg := range s.segs {
		runs[seg.sum.run] = true
	}
	var out []clockEntry
	for _, c := range s.clocks {
		if runs[c.run] {
			out = append(out, c)
		}
	}
	return out
}

func sortClocks(c []clockEntry) {
	sort.Slice(c, func(i, j int) bool {
		if c[i].run != c[j].run {
			return c[i].run < c[j].run
		}
		return c[i].seq < c[j].seq
	})
}

// recoverSegment reads a segment the index file does not describe: a
// sealed one by its footer, any other by scanning its records. In a
// read-write store an unsealed segment is repaired and sealed. It returns
// false when the segment holds nothing and was removed (or, read-only,
// skipped).
func (s *Store) recoverSegment(seg *segment) (bool, error) {
	path := join(s.dir, seg.name)
	flag := os.O_RDWR
	if s.ro {
		flag = os.O_RDONLY
	}
	f, err := s.fsys.OpenFile(path, flag, 0)
	if err != nil {
		return false, fmt.Errorf("footage: open segment %s: %w", path, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return false, fmt.Errorf("footage: segment %s: %w", path, err)
	}
	sum, _, ok, err := readFooter(f, size, false)
	if err != nil {
		return false, fmt.Errorf("footage: segment %s: read footer: %w", path, err)
	}
	if ok {
		seg.sum, seg.sealed = sum, true
		return true, nil
	}
	res, err := scanSegment(f, size)
	if errors.Is(err, errBadSegHeader) {
		s.note(seg.name, fmt.Sprintf("not a segment (bad header); %d bytes set aside", size))
		if s.ro {
			return false, nil
		}
		// Keep the bytes for inspection, out of the store's way.
		if err := s.fsys.Rename(path, path+tornSuffix+".0"); err != nil {
			return false, fmt.Errorf("footage: set aside damaged segment %s: %w", path, err)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("footage: segment %s: %w", path, err)
	}
	for _, d := range res.damaged {
		s.note(seg.name, fmt.Sprintf("skipped %d damaged bytes at offset %d (a record there is lost)", d.length, d.off))
	}
	if res.tail > 0 {
		sideName := fmt.Sprintf("%s%s.%d", seg.name, tornSuffix, res.dataEnd)
		if s.ro {
			s.note(seg.name, fmt.Sprintf("torn tail of %d bytes at offset %d (open read-write to cut it)", res.tail, res.dataEnd))
		} else {
			if err := s.copyAside(f, res.dataEnd, size, sideName); err != nil {
				return false, fmt.Errorf("footage: segment %s: keep torn tail: %w", path, err)
			}
			seg.side = append(seg.side, sideName)
			s.note(seg.name, fmt.Sprintf("cut a torn tail of %d bytes at offset %d (kept in %s)", res.tail, res.dataEnd, sideName))
		}
	}
	res.sum.dataEnd = res.dataEnd
	if s.ro {
		if len(res.index) == 0 {
			return false, nil
		}
		seg.sum, seg.idx = res.sum, res.index
		seg.sum.size = size
		return true, nil
	}
	if len(res.index) == 0 {
		if err := s.fsys.Remove(path); err != nil {
			return false, fmt.Errorf("footage: remove empty segment %s: %w", path, err)
		}
		return false, nil
	}
	if _, err := seal(f, &res.sum, res.index); err != nil {
		return false, fmt.Errorf("footage: seal recovered segment %s: %w", path, err)
	}
	if !res.footer {
		s.note(seg.name, fmt.Sprintf("sealed after an unclean stop, %d records kept", len(res.index)))
	} else {
		s.note(seg.name, "resealed: its trailer was damaged (its records and index were intact)")
	}
	seg.sum, seg.sealed = res.sum, true
	return true, nil
}

func (s *Store) note(seg, action string) {
	s.recovered = append(s.recovered, Recovery{Segment: seg, Action: action})
	s.log.Warn("footage recovery", "segment", seg, "action", action)
}

// copyAside copies bytes [from, to) of f into a new side file.
func (s *Store) copyAside(f File, from, to int64, name string) error {
	tmp := join(s.dir, name+tmpSuffix)
	out, err := s.fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	var woff int64
	for off := from; off < to; {
		n := int(min(int64(len(buf)), to-off))
		if _, err := f.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			out.Close()
			s.fsys.Remove(tmp)
			return err
		}
		if err := writeFull(out, buf[:n], woff); err != nil {
			out.Close()
			s.fsys.Remove(tmp)
			return err
		}
		off += int64(n)
		woff += int64(n)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		s.fsys.Remove(tmp)
		return err
	}
	out.Close()
	if err := s.fsys.Rename(tmp, join(s.dir, name)); err != nil {
		s.fsys.Remove(tmp)
		return err
	}
	return s.fsys.SyncDir(s.dir)
}

// Recovered lists the repairs made when the store was opened.
func (s *Store) Recovered() []Recovery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recovery(nil), s.recovered...)
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Faults lists the store's active faults.
func (s *Store) Faults() []Fault { return s.faults.list() }

// Close syncs and seals the segment being written and releases the store.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	var err error
	if s.act != nil {
		err = s.retire(true)
	}
	s.maybeSignHead(true)
	if s.chain != nil {
		if cerr := s.chain.close(); err == nil {
			err = cerr
		}
	}
	s.mu.Lock()
	if s.man != nil {
		if cerr := s.man.close(); err == nil {
			err = cerr
		}
	}
	s.mu.Unlock()
	if s.lock != nil {
		s.lock.Close()
	}
	return err
}

// Append writes a frame and returns its sequence number. The frame is
// durable once Sync has returned a sequence at or above it. flags are
// FlagEvent, FlagPreRoll, FlagTimelapse.
func (s *Store) Append(f camera.Frame, flags byte) (uint64, error) {
	if len(f.Data) == 0 {
		s.count(func(c *counters) { c.refused++ })
		return 0, ErrEmptyFrame
	}
	if int64(len(f.Data)) > s.opts.MaxFrameSize {
		s.count(func(c *counters) { c.refused++ })
		return 0, fmt.Errorf("%w (%d bytes, limit %d)", ErrFrameTooLarge, len(f.Data), s.opts.MaxFrameSize)
	}
	cc, err := fourCC(f.Codec)
	if err != nil {
		s.count(func(c *counters) { c.refused++ })
		return 0, err
	}
	h := recHeader{time: unixNano(f.Time), codec: cc, width: clampU16(f.Width), height: clampU16(f.Height), kind: kindFrame, flags: flags}
	return s.write(h, f.Data)
}

// AppendEvent records a trigger (motion, PIR, manual) as an event record
// among the frames, and returns its sequence number.
func (s *Store) AppendEvent(kind string, at time.Time) (uint64, error) {
	if kind == "" || len(kind) > 64 {
		return 0, fmt.Errorf("footage: event kind %q must be 1-64 bytes", kind)
	}
	return s.write(recHeader{time: unixNano(at), kind: kindEvent}, []byte(kind))
}

func clampU16(v int) uint16 {
	if v < 0 || v > 0xffff {
		return 0
	}
	return uint16(v)
}

func (s *Store) count(f func(*counters)) {
	s.mu.Lock()
	f(&s.st)
	s.mu.Unlock()
}

// write appends one record, creating or rotating the segment as needed.
func (s *Store) write(h recHeader, payload []byte) (uint64, error) {
	if s.ro {
		return 0, ErrReadOnly
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeLocked(h, payload)
}

// writeLocked is write for callers holding wmu.
func (s *Store) writeLocked(h recHeader, payload []byte) (uint64, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	stored := len(payload)
	if s.crypt != nil && sealed(h.kind) {
		stored += sealOverhead
	}
	if s.act != nil && s.needRotate(&h, stored) {
		if err := s.retire(true); err != nil {
			s.log.Warn("sealing segment failed; it will be sealed later", "err", err)
		}
	}
	if s.act == nil {
		if err := s.startSegment(); err != nil {
			s.writeFailed(err)
			return 0, err
		}
	}
	a := s.act
	s.mu.Lock()
	h.seq = s.nextSeq
	s.mu.Unlock()

	var hb [recHeaderSize]byte
	var whole []byte // the whole record, padding included, when sealed
	if a.seg.sum.encrypted() && sealed(h.kind) {
		whole, payload = s.sealRecord(&h, payload)
		copy(hb[:], whole)
	} else {
		encodeRecordHeader(h, payload, hb[:])
	}
	h.length = uint32(len(payload))
	size := recordSize(len(payload))
	var err error
	if whole != nil {
		err = writeFull(a.f, whole, a.off)
		if err == nil {
			a.hash(whole)
		}
	} else if len(payload) <= 32<<10 {
		b := make([]byte, size)
		copy(b, hb[:])
		copy(b[recHeaderSize:], payload)
		err = writeFull(a.f, b, a.off)
		if err == nil {
			a.hash(b)
		}
	} else {
		err = writeFull(a.f, hb[:], a.off)
		if err == nil {
			err = writeFull(a.f, payload, a.off+recHeaderSize)
		}
		p := size - recHeaderSize - int64(len(payload))
		if err == nil && p > 0 {
			err = writeFull(a.f, a.zero[:p], a.off+recHeaderSize+int64(len(payload)))
		}
		if err == nil {
			a.hash(hb[:])
			a.hash(payload)
			a.hash(a.zero[:p])
		}
	}
	if err != nil {
		err = fmt.Errorf("footage: write segment %s: %w", a.seg.name, err)
		// Leave no partial record for the next one to follow.
		if terr := a.f.Truncate(a.off); terr != nil {
			s.log.Warn("cannot cut a failed write; closing the segment", "segment", a.seg.name, "err", terr)
			s.retire(false)
		}
		s.writeFailed(err)
		return 0, err
	}
	e := indexEntry{seq: h.seq, time: h.time, off: a.off, length: h.length, kind: h.kind, flags: h.flags}
	s.mu.Lock()
	a.seg.idx = append(a.seg.idx, e)
	a.seg.sum.add(e, &h, payload)
	a.off += size
	a.seg.sum.dataEnd = a.off
	a.seg.sum.size = a.off
	a.dirty = true
	s.nextSeq++
	s.runRecs++
	switch h.kind {
	case kindFrame:
		s.st.framesWritten++
		s.st.bytesWritten += size
	case kindEvent:
		s.st.eventsWritten++
	}
	s.mu.Unlock()
	s.writeOK()
	return h.seq, nil
}

func (s *Store) writeFailed(err error) {
	s.count(func(c *counters) { c.writeErrors++ })
	now := s.clk.Now()
	if IsDiskFull(err) {
		s.faults.raise(FaultDiskFull, "the card is full: footage is not being recorded; old footage is evicted by retention, held footage is kept (release holds or raise retention.hold_cap if they fill it)", now)
		return
	}
	s.faults.raise(FaultStorage, fmt.Sprintf("footage could not be written (%v): check or replace the SD card", err), now)
}

func (s *Store) writeOK() {
	if s.faults.has(FaultDiskFull) || s.faults.has(FaultStorage) {
		now := s.clk.Now()
		s.faults.clear(FaultDiskFull, now)
		s.faults.clear(FaultStorage, now)
	}
}

// needRotate reports whether the record must go into a new segment: the
// segment is full, old enough, or holds another codec or picture size.
func (s *Store) needRotate(h *recHeader, n int) bool {
	a := s.act
	sum := &a.seg.sum
	if sum.records == 0 {
		return false
	}
	if a.off+recordSize(n) > s.opts.SegmentMaxSize {
		return true
	}
	if h.kind != kindFrame || sum.frames == 0 {
		return false
	}
	if h.codec != sum.codec || h.width != sum.width || h.height != sum.height {
		return true
	}
	d := time.Duration(h.time - sum.firstTime)
	return d >= s.opts.SegmentDuration || -d >= s.opts.SegmentDuration
}

// startSegment creates a new segment for the next sequence number.
func (s *Store) startSegment() error {
	s.mu.Lock()
	first, run := s.nextSeq, s.run
	s.mu.Unlock()
	hdr := segHeader{version: schemaVersion, run: run, firstSeq: first, created: s.clk.Now().UnixNano()}
	if s.crypt != nil {
		hdr.version, hdr.keyID = schemaEncrypted, s.crypt.id
	}
	name := segName(first)
	f, err := createFile(s.fsys, s.dir, name, hdr.encode(), true)
	if err != nil {
		if f != nil {
			f.Close()
		}
		return fmt.Errorf("footage: create segment %s: %w", join(s.dir, name), err)
	}
	seg := &segment{name: name, sum: summary{firstSeq: first, lastSeq: first - 1, run: run, dataEnd: segHeaderSize, size: segHeaderSize}}
	if hdr.encrypted() {
		seg.sum.flags |= sumEncrypted
	}
	s.act = &active{seg: seg, f: f, off: segHeaderSize, syncedOff: segHeaderSize, syncedSeq: first - 1, sha: sha256.New()}
	s.act.hash(hdr.encode())
	s.act.markSynced()
	s.mu.Lock()
	seg.writing = true
	s.segs = append(s.segs, seg)
	s.mu.Unlock()
	return nil
}

// retire ends the active segment: with doSeal it is synced and sealed;
// otherwise (or if sealing fails) it is closed unsealed, keeping its index
// in memory, and Maintain seals it later.
func (s *Store) retire(doSeal bool) error {
	a := s.act
	s.act = nil
	s.mu.Lock()
	a.seg.writing = false
	s.mu.Unlock()
	var err error
	if doSeal {
		s.mu.Lock()
		sum := a.seg.sum
		sum.clocks = append([]clockEntry(nil), sum.clocks...)
		idx := append([]indexEntry(nil), a.seg.idx...)
		s.mu.Unlock()
		sum.dataEnd = a.off
		if sum.records == 0 {
			// Nothing in it: remove it rather than keep an empty file.
			a.f.Close()
			s.mu.Lock()
			s.dropSegment(a.seg)
			s.mu.Unlock()
			if rerr := s.fsys.Remove(join(s.dir, a.seg.name)); rerr != nil {
				return fmt.Errorf("footage: remove empty segment: %w", rerr)
			}
			return nil
		}
		var footer []byte
		if footer, err = seal(a.f, &sum, idx); err == nil {
			// Linked before it is published as sealed, so that a reader
			// never sees a sealed segment the chain does not yet hold.
			// The digest comes from the bytes hashed as they were
			// written, when they are exactly the file's records; the
			// file is read back otherwise.
			var digest *Hash
			if a.sha != nil && a.hashed == sum.dataEnd {
				a.sha.Write(footer)
				var d Hash
				a.sha.Sum(d[:0])
				digest = &d
			}
			if lerr := s.linkSegment(a.seg.name, &sum, digest, false); lerr != nil {
				s.log.Warn("segment sealed but not linked into the chain; it is linked when the store is next opened", "segment", a.seg.name, "err", lerr)
			}
			s.mu.Lock()
			a.seg.sum, a.seg.sealed, a.seg.idx = sum, true, nil
			s.synced = max(s.synced, sum.lastSeq)
			s.mu.Unlock()
			if merr := s.man.addSummary(&sum); merr != nil {
				s.log.Warn("index file not updated; it is rebuilt at the next open", "err", merr)
			}
		} else {
			err = fmt.Errorf("footage: seal segment %s: %w", a.seg.name, err)
			// The footer may be half written: cut it so the segment ends
			// at its last record, as the in-memory index says.
			a.f.Truncate(a.off)
		}
	}
	if cerr := a.f.Close(); err == nil && cerr != nil && !a.seg.sealed {
		err = cerr
	}
	return err
}

func (s *Store) dropSegment(seg *segment) {
	for i, x := range s.segs {
		if x == seg {
			s.segs = append(s.segs[:i], s.segs[i+1:]...)
			return
		}
	}
}

// Sync makes every record appended so far durable and returns the highest
// durable sequence. If the sync fails, the records written since the last
// good sync are cut (they may not be on the card) and counted as lost.
func (s *Store) Sync() (uint64, error) {
	if s.ro {
		return 0, ErrReadOnly
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	a := s.act
	if a == nil || !a.dirty {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.synced, nil
	}
	start := time.Now()
	err := a.f.Sync()
	took := time.Since(start)
	s.mu.Lock()
	s.st.syncs++
	s.st.lastSyncDur = took
	s.st.maxSyncDur = max(s.st.maxSyncDur, took)
	if took > time.Second {
		s.st.slowSyncs++
	}
	s.mu.Unlock()
	if took > time.Second {
		s.log.Warn("slow sync of footage", "took", took.Round(time.Millisecond), "segment", a.seg.name)
	}
	if err != nil {
		err = fmt.Errorf("footage: sync segment %s: %w", a.seg.name, err)
		s.syncFailed(a)
		s.writeFailed(err)
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.synced, err
	}
	a.markSynced()
	s.mu.Lock()
	a.syncedOff = a.off
	a.syncedSeq = a.seg.sum.lastSeq
	a.dirty = false
	s.synced = max(s.synced, a.syncedSeq)
	synced := s.synced
	s.mu.Unlock()
	return synced, nil
}

// syncFailed cuts the active segment back to its last good sync.
func (s *Store) syncFailed(a *active) {
	s.mu.Lock()
	keep := a.seg.idx[:0:0]
	var lost uint64
	for _, e := range a.seg.idx {
		if e.off < a.syncedOff {
			keep = append(keep, e)
		} else if e.kind == kindFrame {
			lost++
		}
	}
	a.seg.idx = keep
	a.seg.sum = rebuildSummary(a.seg.sum, keep, a.syncedOff)
	a.off = a.syncedOff
	a.dirty = false
	a.rollback()
	s.st.framesLost += lost
	s.mu.Unlock()
	s.log.Error("footage sync failed; frames since the last good sync are dropped", "segment", a.seg.name, "frames", lost)
	if err := a.f.Truncate(a.syncedOff); err != nil {
		s.log.Warn("cannot cut the unsynced tail; closing the segment", "segment", a.seg.name, "err", err)
		s.retire(false)
	}
}

// rebuildSummary recomputes a summary from the index entries kept.
func rebuildSummary(old summary, idx []indexEntry, end int64) summary {
	s := summary{firstSeq: old.firstSeq, lastSeq: old.firstSeq - 1, run: old.run, corrupt: old.corrupt, dataEnd: end, size: end, flags: old.flags}
	for _, e := range idx {
		h := recHeader{codec: old.codec, width: old.width, height: old.height}
		s.add(e, &h, nil)
	}
	for _, c := range old.clocks {
		if c.seq <= s.lastSeq {
			s.clocks = append(s.clocks, c)
		}
	}
	return s
}

// Synced is the highest sequence known durable.
func (s *Store) Synced() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}

// NoteClockStep records that the wall clock stepped by delta (new minus
// old) just before at, in the new clock. Every record of this run written
// so far is from then on read with delta added to its time. The segment
// being written is sealed, so that each segment has one correction.
func (s *Store) NoteClockStep(delta time.Duration, at time.Time) error {
	if s.ro {
		return ErrReadOnly
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.runRecs == 0 {
		// Nothing recorded in this run yet: nothing to correct.
		s.mu.Unlock()
		return nil
	}
	c := clockEntry{run: s.run, seq: s.nextSeq, delta: int64(delta), at: at.UnixNano()}
	s.mu.Unlock()
	s.log.Info("wall clock stepped; correcting the times of footage already recorded", "step", delta, "at", at)
	// The index file first, synced: it outlives the segment.
	if err := s.man.addClock(c); err != nil {
		return err
	}
	s.mu.Lock()
	s.clocks = append(s.clocks, c)
	sortClocks(s.clocks)
	s.mu.Unlock()
	if s.act == nil {
		s.mu.Lock()
		s.nextSeq++
		s.mu.Unlock()
		return nil
	}
	b := make([]byte, clockEntrySize)
	c.put(b)
	if _, err := s.writeLocked(recHeader{time: c.at, kind: kindClock}, b); err != nil {
		return err
	}
	return s.retire(true)
}

// offsetOf is the correction to add to the raw times of a segment: the sum
// of the steps of its run recorded after its frames. A correction record
// is the last record of the segment it follows, hence >=.
func (s *Store) offsetOf(sum *summary) int64 {
	var d int64
	for _, c := range s.clocks {
		if c.run == sum.run && c.seq >= sum.lastSeq {
			d += c.delta
		}
	}
	return d
}

// plausibleTime is the earliest wall-clock time a set clock can show:
// earlier times are from a unit that booted without knowing the time.
var plausibleTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// segView is a segment as readers see it: effective (corrected) times.
type segView struct {
	seg         *segment
	off         int64
	first, last int64 // effective times of first and last frames
	lo, hi      int64 // effective min and max
	sum         summary
}

// views returns the segments with their effective times. Caller holds mu.
func (s *Store) viewsLocked() []segView {
	out := make([]segView, 0, len(s.segs))
	for _, seg := range s.segs {
		off := s.offsetOf(&seg.sum)
		out = append(out, segView{
			seg: seg, off: off, sum: seg.sum,
			first: seg.sum.firstTime + off, last: seg.sum.lastTime + off,
			lo: seg.sum.minTime + off, hi: seg.sum.maxTime + off,
		})
	}
	return out
}

// hash adds bytes written at the end of the segment to its digest.
func (a *active) hash(b []byte) {
	if a.sha == nil {
		return
	}
	a.sha.Write(b)
	a.hashed += int64(len(b))
}

// markSynced remembers the digest's state at a good sync.
func (a *active) markSynced() {
	if a.sha == nil {
		return
	}
	st, err := a.sha.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		a.sha = nil // the segment is read back when sealed
		return
	}
	a.shaSynced, a.hashedSyn = st, a.hashed
}

// rollback returns the digest to its state at the last good sync, when the
// segment is cut back to it.
func (a *active) rollback() {
	if a.sha == nil {
		return
	}
	if a.sha.(encoding.BinaryUnmarshaler).UnmarshalBinary(a.shaSynced) != nil {
		a.sha = nil
		return
	}
	a.hashed = a.hashedSyn
}
