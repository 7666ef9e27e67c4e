package outbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
)

// Class is a message's priority class. The values are stable strings:
// they are stored in the segment files.
type Class string

// Classes, highest priority first.
const (
	ClassAlert     Class = "alert"
	ClassEvent     Class = "event"
	ClassTelemetry Class = "telemetry"
)

// Classes returns the classes, highest priority first.
func Classes() []Class { return []Class{ClassAlert, ClassEvent, ClassTelemetry} }

// ValidClass reports whether c is one of the classes.
func ValidClass(c Class) bool { return rank(c) >= 0 }

func rank(c Class) int {
	switch c {
	case ClassAlert:
		return 0
	case ClassEvent:
		return 1
	case ClassTelemetry:
		return 2
	}
	return -1
}

const numClasses = 3

// Message is what is queued.
type Message struct {
	Class    Class
	Topic    string
	Payload  []byte
	Retained bool
}

// Entry is a queued message handed out by Lease.
type Entry struct {
	ID uint64
	Message
	Created time.Time
}

// ErrDropped is returned by Put when the outbox is full of messages that
// all outrank the new one: the new message is dropped (and counted).
var ErrDropped = errors.New("outbox: full of higher-priority messages; message dropped")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("outbox: closed")

// Options configures an Outbox. Zero fields take the defaults noted.
type Options struct {
	Dir string
	// MaxBytes bounds the records of queued messages (default 16 MiB).
	MaxBytes int64
	// SegmentBytes is the size after which a new segment file is started
	// (default MaxBytes/8, between 16 KiB and 4 MiB).
	SegmentBytes int64
	// MaxMessageBytes bounds one message (default MaxBytes/4, at most
	// 1 MiB).
	MaxMessageBytes int
	Clock           clock.Clock // default clock.Real
	// FS is the file system (default the operating system's); tests
	// inject failing writes and syncs.
	FS FS
	// SlowSync is the fsync duration above which a warning is logged
	// (default 1 s), at most once a minute.
	SlowSync time.Duration
}

// Stats describes the outbox.
type Stats struct {
	Queued      int
	QueuedBytes int64
	InFlight    int
	// Dropped for room since the outbox was created, by class.
	DroppedAlert, DroppedEvent, DroppedTelemetry uint64
	Segments                                     int
	DiskBytes                                    int64
	// Syncs is the number of fsyncs, SlowestSync the longest.
	Syncs       uint64
	SlowestSync time.Duration
	// Damaged counts damaged stretches found and set aside at Open.
	Damaged int
}

// Outbox is a durable, bounded, prioritised queue. It is safe for
// concurrent use.
type Outbox struct {
	log *slog.Logger
	o   Options
	fs  FS

	mu          sync.Mutex
	segs        []*segment // oldest first; the last is written
	entries     map[uint64]*entry
	queues      [numClasses][]uint64 // ids by class, ascending; gone ids are skipped
	queued      int
	queuedBytes int64
	inflight    int
	dropped     map[Class]uint64
	nextID      uint64
	diskBytes   int64
	broken      bool // the last segment's tail is uncertain: start a new one
	closed      bool
	syncs       uint64
	slowest     time.Duration
	slowLogged  time.Time
	damaged     int
}

type segment struct {
	name  string
	first uint64
	f     File
	size  int64
	live  int // queued puts stored here
}

type entry struct {
	id       uint64
	class    Class
	seg      *segment
	off      int64
	size     int
	created  time.Time
	inflight bool
}

const segExt = ".obx"

// Open opens (creating if need be) the outbox in o.Dir and recovers what
// it holds.
func Open(log *slog.Logger, o Options) (*Outbox, error) {
	if o.Dir == "" {
		return nil, errors.New("outbox: no directory given")
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 16 << 20
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = min(max(o.MaxBytes/8, 16<<10), 4<<20)
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = int(min(o.MaxBytes/4, 1<<20))
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.SlowSync <= 0 {
		o.SlowSync = time.Second
	}
	ob := &Outbox{
		log: log.With("component", "outbox"), o: o, fs: o.FS,
		entries: map[uint64]*entry{}, dropped: map[Class]uint64{}, nextID: 1,
	}
	if err := ob.fs.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("outbox: creating %s: %w", o.Dir, err)
	}
	if err := ob.recover(); err != nil {
		ob.closeFiles()
		return nil, err
	}
	if n := len(ob.segs); n == 0 || ob.segs[n-1].size >= o.SegmentBytes || ob.broken {
		if err := ob.cut(); err != nil {
			ob.closeFiles()
			return nil, err
		}
	}
	return ob, nil
}

func (ob *Outbox) path(name string) string { return filepath.Join(ob.o.Dir, name) }

// recover replays every segment.
func (ob *Outbox) recover() error {
	des, err := ob.fs.ReadDir(ob.o.Dir)
	if err != nil {
		return fmt.Errorf("outbox: reading %s: %w", ob.o.Dir, err)
	}
	var names []string
	for _, de := range des {
		n := de.Name()
		switch {
		case strings.HasSuffix(n, ".tmp"):
			// A segment whose creation did not complete holds nothing.
			_ = ob.fs.Remove(ob.path(n))
		case strings.HasSuffix(n, segExt):
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if err := ob.replay(n); err != nil {
			return err
		}
	}
	for i := range ob.queues {
		slices.Sort(ob.queues[i])
	}
	return nil
}

func (ob *Outbox) replay(name string) error {
	first, _ := strconv.ParseUint(strings.TrimSuffix(name, segExt), 16, 64)
	f, err := ob.fs.OpenFile(ob.path(name), os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("outbox: opening %s: %w", name, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("outbox: reading %s: %w", name, err)
	}
	if len(data) < headerSize || string(data[:8]) != magic {
		ob.log.Error("outbox segment has no valid header; setting it aside", "segment", name)
		f.Close()
		ob.keepAside(name, 0, data)
		if err := ob.fs.Remove(ob.path(name)); err != nil {
			return fmt.Errorf("outbox: removing damaged %s: %w", name, err)
		}
		ob.damaged++
		return nil
	}
	if v := uint32(data[8]) | uint32(data[9])<<8 | uint32(data[10])<<16 | uint32(data[11])<<24; v != version {
		f.Close()
		return fmt.Errorf("outbox: %s is format version %d; this agent reads version %d: move the directory aside to start afresh", name, v, version)
	}
	seg := &segment{name: name, first: first, f: f}
	off := headerSize
	for off < len(data) {
		body, n, err := unframe(data[off:])
		var r record
		if err == nil {
			r, err = decode(body)
		}
		if err != nil {
			ob.log.Error("outbox segment damaged; setting the rest aside", "segment", name, "offset", off, "bytes", len(data)-off, "err", err)
			ob.keepAside(name, off, data[off:])
			if terr := f.Truncate(int64(off)); terr != nil {
				f.Close()
				return fmt.Errorf("outbox: truncating damaged %s: %w", name, terr)
			}
			if serr := f.Sync(); serr != nil {
				f.Close()
				return fmt.Errorf("outbox: syncing %s: %w", name, serr)
			}
			ob.damaged++
			break
		}
		ob.apply(r, seg, int64(off), n)
		off += n
	}
	seg.size = int64(off)
	ob.diskBytes += seg.size
	ob.segs = append(ob.segs, seg)
	return nil
}

// apply replays one record.
func (ob *Outbox) apply(r record, seg *segment, off int64, size int) {
	switch r.typ {
	case recPut:
		ob.nextID = max(ob.nextID, r.id+1)
		if _, dup := ob.entries[r.id]; dup {
			return // a copy made by compaction
		}
		ob.index(&entry{id: r.id, class: r.class, seg: seg, off: off, size: size, created: r.created})
	case recAck, recDrop:
		ob.nextID = max(ob.nextID, r.id+1)
		if e, ok := ob.entries[r.id]; ok {
			ob.remove(e)
		}
		if r.typ == recDrop {
			ob.dropped[r.class]++
		}
	case recState:
		ob.nextID = max(ob.nextID, r.nextID)
		ob.dropped = r.dropped
	}
}

func (ob *Outbox) index(e *entry) {
	ob.entries[e.id] = e
	e.seg.live++
	ob.queued++
	ob.queuedBytes += int64(e.size)
	ob.queues[rank(e.class)] = append(ob.queues[rank(e.class)], e.id)
}

func (ob *Outbox) remove(e *entry) {
	delete(ob.entries, e.id)
	e.seg.live--
	ob.queued--
	ob.queuedBytes -= int64(e.size)
	if e.inflight {
		ob.inflight--
	}
}

// keepAside copies damaged bytes next to their segment, keeping the three
// newest copies.
func (ob *Outbox) keepAside(name string, off int, b []byte) {
	aside := fmt.Sprintf("%s.damaged-%d", name, off)
	f, err := ob.fs.OpenFile(ob.path(aside), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err == nil {
		_, err = f.Write(b)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		ob.log.Warn("outbox: could not keep the damaged bytes aside", "file", aside, "err", err)
		return
	}
	des, err := ob.fs.ReadDir(ob.o.Dir)
	if err != nil {
		return
	}
	type aged struct {
		name string
		t    time.Time
	}
	var all []aged
	for _, de := range des {
		if strings.Contains(de.Name(), ".damaged-") {
			if fi, err := de.Info(); err == nil {
				all = append(all, aged{de.Name(), fi.ModTime()})
			}
		}
	}
	sort.Slice(all, func(i, j int) bool {
		return all[i].t.After(all[j].t) || (all[i].t.Equal(all[j].t) && all[i].name > all[j].name)
	})
	for _, a := range all[min(3, len(all)):] {
		_ = ob.fs.Remove(ob.path(a.name))
	}
}

func (ob *Outbox) sync(f File) error {
	start := time.Now()
	err := f.Sync()
	d := time.Since(start)
	ob.syncs++
	ob.slowest = max(ob.slowest, d)
	if d > ob.o.SlowSync {
		if now := ob.o.Clock.Now(); now.Sub(ob.slowLogged) >= time.Minute {
			ob.slowLogged = now
			ob.log.Warn("outbox: slow fsync: the card may be failing or worn", "took", d.Round(time.Millisecond))
		}
	}
	return err
}

func (ob *Outbox) syncDir() error {
	d, err := ob.fs.OpenFile(ob.o.Dir, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// cut starts a new segment: header and state record to NAME.tmp, fsync,
// rename, fsync the directory.
func (ob *Outbox) cut() error {
	first := ob.nextID
	if n := len(ob.segs); n > 0 && first <= ob.segs[n-1].first {
		first = ob.segs[n-1].first + 1
	}
	name := fmt.Sprintf("%016x%s", first, segExt)
	tmp := ob.path(name + ".tmp")
	f, err := ob.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("outbox: creating %s: %w: is the data partition full or read-only?", name, err)
	}
	buf := append(fileHeader(), encodeState(ob.nextID, ob.dropped)...)
	_, err = f.Write(buf)
	if err == nil {
		err = ob.sync(f)
	}
	if err == nil {
		err = ob.fs.Rename(tmp, ob.path(name))
	}
	if err == nil {
		err = ob.syncDir()
	}
	if err != nil {
		f.Close()
		_ = ob.fs.Remove(tmp)
		return fmt.Errorf("outbox: creating %s: %w: is the data partition full or read-only?", name, err)
	}
	if n := len(ob.segs); n > 0 {
		// The previous segment's acks need no fsync, but a clean hand-over
		// costs one.
		_ = ob.sync(ob.segs[n-1].f)
	}
	ob.segs = append(ob.segs, &segment{name: name, first: first, f: f, size: int64(len(buf))})
	ob.diskBytes += int64(len(buf))
	ob.broken = false
	ob.compact()
	return nil
}

// compact deletes the oldest segments once nothing queued is stored in
// them, first copying what is (same ids) into the current segment when
// the segments take more than twice MaxBytes.
func (ob *Outbox) compact() {
	removed := false
	for len(ob.segs) > 1 {
		s0 := ob.segs[0]
		if s0.live > 0 {
			if ob.diskBytes <= 2*ob.o.MaxBytes {
				break
			}
			if err := ob.move(s0); err != nil {
				ob.log.Warn("outbox: compaction failed", "segment", s0.name, "err", err)
				break
			}
		}
		s0.f.Close()
		if err := ob.fs.Remove(ob.path(s0.name)); err != nil {
			ob.log.Warn("outbox: removing a spent segment", "segment", s0.name, "err", err)
		}
		ob.diskBytes -= s0.size
		ob.segs = ob.segs[1:]
		removed = true
	}
	if removed {
		if err := ob.syncDir(); err != nil {
			ob.log.Warn("outbox: syncing the directory", "err", err)
		}
	}
}

// move copies the queued puts of s into the current segment.
func (ob *Outbox) move(s *segment) error {
	cur := ob.segs[len(ob.segs)-1]
	var es []*entry
	for _, e := range ob.entries {
		if e.seg == s {
			es = append(es, e)
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].id < es[j].id })
	var buf []byte
	offs := make([]int64, len(es))
	for i, e := range es {
		raw, err := ob.readRaw(e)
		if err != nil {
			return err
		}
		offs[i] = cur.size + int64(len(buf))
		buf = append(buf, raw...)
	}
	if _, err := cur.f.Write(buf); err != nil {
		ob.broken = true
		return err
	}
	if err := ob.sync(cur.f); err != nil {
		ob.broken = true
		return err
	}
	cur.size += int64(len(buf))
	ob.diskBytes += int64(len(buf))
	for i, e := range es {
		e.seg.live--
		e.seg, e.off = cur, offs[i]
		cur.live++
	}
	return nil
}

func (ob *Outbox) readRaw(e *entry) ([]byte, error) {
	buf := make([]byte, e.size)
	if _, err := e.seg.f.ReadAt(buf, e.off); err != nil {
		return nil, fmt.Errorf("outbox: reading message %d from %s: %w", e.id, e.seg.name, err)
	}
	return buf, nil
}

func (ob *Outbox) read(e *entry) (record, error) {
	raw, err := ob.readRaw(e)
	if err != nil {
		return record{}, err
	}
	body, _, err := unframe(raw)
	if err != nil {
		return record{}, fmt.Errorf("outbox: message %d in %s: %w", e.id, e.seg.name, err)
	}
	r, err := decode(body)
	if err == nil && (r.typ != recPut || r.id != e.id) {
		err = errors.New("index points at another record")
	}
	if err != nil {
		return record{}, fmt.Errorf("outbox: message %d in %s: %w", e.id, e.seg.name, err)
	}
	return r, nil
}

// Put stores a message durably: it returns once the message is written
// and fsynced. When the outbox is full it makes room by dropping the
// oldest messages of the lowest class below or equal to m's, or drops m
// (ErrDropped) if everything queued outranks it.
func (ob *Outbox) Put(m Message) (uint64, error) {
	if !ValidClass(m.Class) {
		return 0, fmt.Errorf("outbox: %q is not a class (alert, event, telemetry)", m.Class)
	}
	if m.Topic == "" || len(m.Topic) > 0xffff {
		return 0, fmt.Errorf("outbox: topic of %d bytes: want 1-65535", len(m.Topic))
	}
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if ob.closed {
		return 0, ErrClosed
	}
	id := ob.nextID
	now := ob.o.Clock.Now().UTC().Truncate(time.Millisecond)
	rec := encodePut(id, m, now)
	if len(rec) > ob.o.MaxMessageBytes {
		return 0, fmt.Errorf("outbox: a message of %d bytes is above the limit of %d for one message", len(rec), ob.o.MaxMessageBytes)
	}

	var victims []*entry
	need := ob.queuedBytes + int64(len(rec)) - ob.o.MaxBytes
	for r := numClasses - 1; r >= rank(m.Class) && need > 0; r-- {
		for _, vid := range ob.queues[r] {
			e := ob.entries[vid]
			if e == nil || e.inflight {
				continue
			}
			victims = append(victims, e)
			need -= int64(e.size)
			if need <= 0 {
				break
			}
		}
	}
	if need > 0 {
		// Everything that could go outranks m, or is being sent.
		if err := ob.append(encodeDrop(id, m.Class), false); err != nil {
			return 0, err
		}
		ob.nextID++
		ob.dropped[m.Class]++
		return 0, ErrDropped
	}
	var buf []byte
	for _, e := range victims {
		buf = append(buf, encodeDrop(e.id, e.class)...)
	}
	off := ob.segs[len(ob.segs)-1].size + int64(len(buf))
	buf = append(buf, rec...)
	if err := ob.append(buf, true); err != nil {
		return 0, err
	}
	for _, e := range victims {
		ob.remove(e)
		ob.dropped[e.class]++
	}
	if len(victims) > 0 {
		ob.log.Warn("outbox full: oldest messages of the lowest class dropped", "dropped", len(victims), "class", victims[0].class)
	}
	ob.nextID++
	cur := ob.segs[len(ob.segs)-1]
	ob.index(&entry{id: id, class: m.Class, seg: cur, off: off, size: len(rec), created: now})
	if cur.size >= ob.o.SegmentBytes {
		if err := ob.cut(); err != nil {
			ob.log.Warn("outbox: starting a new segment failed; retrying at the next message", "err", err)
			ob.broken = true
		}
	} else if ob.segs[0].live == 0 && len(ob.segs) > 1 {
		ob.compact()
	}
	return id, nil
}

// append writes b at the end of the current segment, fsyncing if asked.
// On failure the segment is cut back to where it was; if even that fails,
// the next write starts a new segment.
func (ob *Outbox) append(b []byte, durable bool) error {
	if ob.broken {
		if err := ob.cut(); err != nil {
			return err
		}
	}
	cur := ob.segs[len(ob.segs)-1]
	n, err := cur.f.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err == nil && durable {
		err = ob.sync(cur.f)
	}
	if err != nil {
		if terr := cur.f.Truncate(cur.size); terr != nil {
			ob.broken = true
		}
		return fmt.Errorf("outbox: writing %s: %w: is the data partition full or failing?", cur.name, err)
	}
	cur.size += int64(len(b))
	ob.diskBytes += int64(len(b))
	return nil
}

// Lease hands out the next message to send: highest class first, oldest
// first within a class, skipping those already leased. It returns false
// when there is none. A leased message stays queued until Ack; Release
// puts it back in line.
func (ob *Outbox) Lease() (Entry, bool) {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if ob.closed {
		return Entry{}, false
	}
	for r := range ob.queues {
		q := ob.queues[r]
		for len(q) > 0 && ob.entries[q[0]] == nil {
			q = q[1:]
		}
		ob.queues[r] = q
		for _, id := range q {
			e := ob.entries[id]
			if e == nil || e.inflight {
				continue
			}
			rec, err := ob.read(e)
			if err != nil {
				// Damaged on the card since it was written: it can never
				// be sent. Count it as dropped rather than lose it silently.
				ob.log.Error("outbox: a queued message is unreadable; dropping it", "err", err)
				if werr := ob.append(encodeDrop(e.id, e.class), false); werr != nil {
					ob.log.Warn("outbox: recording the drop failed", "err", werr)
				}
				ob.remove(e)
				ob.dropped[e.class]++
				continue
			}
			e.inflight = true
			ob.inflight++
			return Entry{ID: e.id, Created: rec.created, Message: Message{
				Class: rec.class, Topic: rec.topic, Payload: rec.payload, Retained: rec.retained,
			}}, true
		}
	}
	return Entry{}, false
}

// Ack removes a delivered message. The record is written without fsync:
// after a power cut the message may be sent again.
func (ob *Outbox) Ack(id uint64) error {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	e, ok := ob.entries[id]
	if !ok || ob.closed {
		return nil
	}
	ob.remove(e)
	err := ob.append(encodeAck(id), false)
	if ob.segs[0].live == 0 && len(ob.segs) > 1 {
		ob.compact()
	}
	return err
}

// Release puts a leased message back in line, to be leased again.
func (ob *Outbox) Release(id uint64) {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if e, ok := ob.entries[id]; ok && e.inflight {
		e.inflight = false
		ob.inflight--
	}
}

// Stats describes the outbox now.
func (ob *Outbox) Stats() Stats {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	return Stats{
		Queued: ob.queued, QueuedBytes: ob.queuedBytes, InFlight: ob.inflight,
		DroppedAlert: ob.dropped[ClassAlert], DroppedEvent: ob.dropped[ClassEvent], DroppedTelemetry: ob.dropped[ClassTelemetry],
		Segments: len(ob.segs), DiskBytes: ob.diskBytes, Syncs: ob.syncs, SlowestSync: ob.slowest, Damaged: ob.damaged,
	}
}

// Close fsyncs the current segment (so that acks survive) and closes the
// files.
func (ob *Outbox) Close() error {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if ob.closed {
		return nil
	}
	ob.closed = true
	var err error
	if n := len(ob.segs); n > 0 {
		err = ob.sync(ob.segs[n-1].f)
	}
	if cerr := ob.closeFiles(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("outbox: closing: %w", err)
	}
	return nil
}

func (ob *Outbox) closeFiles() error {
	var err error
	for _, s := range ob.segs {
		if cerr := s.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// FS is the file system the outbox uses.
type FS interface {
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	ReadDir(name string) ([]fs.DirEntry, error)
	MkdirAll(path string, perm fs.FileMode) error
}

// File is an open file of an FS.
type File interface {
	io.ReadWriteCloser
	io.ReaderAt
	Sync() error
	Truncate(size int64) error
}

// OSFS is the operating system's file system.
type OSFS struct{}

// OpenFile implements FS.
func (OSFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	return os.OpenFile(name, flag, perm)
}

// Rename implements FS.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// ReadDir implements FS.
func (OSFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// MkdirAll implements FS.
func (OSFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }
