package outbox

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
)

var update = flag.Bool("update", false, "rewrite the seed segments in testdata")

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func open(t testing.TB, o Options) *Outbox {
	t.Helper()
	if o.Clock == nil {
		o.Clock = clock.NewFake(t0)
	}
	ob, err := Open(quiet(), o)
	if err != nil {
		t.Fatal(err)
	}
	return ob
}

func put(t testing.TB, ob *Outbox, c Class, payload string) uint64 {
	t.Helper()
	id, err := ob.Put(Message{Class: c, Topic: "outpost/u1/" + string(c), Payload: []byte(payload)})
	if err != nil {
		t.Fatalf("put %s: %v", payload, err)
	}
	return id
}

// drainAll leases and acks everything, returning the payloads in order.
func drainAll(t testing.TB, ob *Outbox) []string {
	t.Helper()
	var out []string
	for {
		e, ok := ob.Lease()
		if !ok {
			return out
		}
		out = append(out, string(e.Payload))
		if err := ob.Ack(e.ID); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPriorityThenAge(t *testing.T) {
	ob := open(t, Options{Dir: t.TempDir()})
	defer ob.Close()
	put(t, ob, ClassTelemetry, "t1")
	put(t, ob, ClassEvent, "e1")
	put(t, ob, ClassTelemetry, "t2")
	put(t, ob, ClassAlert, "a1")
	put(t, ob, ClassEvent, "e2")
	got := strings.Join(drainAll(t, ob), " ")
	if want := "a1 e1 e2 t1 t2"; got != want {
		t.Fatalf("order %q, want %q", got, want)
	}
	if st := ob.Stats(); st.Queued != 0 || st.QueuedBytes != 0 || st.InFlight != 0 {
		t.Fatalf("stats after draining: %+v", st)
	}
}

func TestLeaseSkipsInFlightAndRelease(t *testing.T) {
	ob := open(t, Options{Dir: t.TempDir()})
	defer ob.Close()
	put(t, ob, ClassEvent, "e1")
	put(t, ob, ClassEvent, "e2")
	a, _ := ob.Lease()
	b, _ := ob.Lease()
	if string(a.Payload) != "e1" || string(b.Payload) != "e2" {
		t.Fatalf("leased %q %q", a.Payload, b.Payload)
	}
	if _, ok := ob.Lease(); ok {
		t.Fatal("leased a message twice")
	}
	ob.Release(a.ID)
	c, ok := ob.Lease()
	if !ok || c.ID != a.ID {
		t.Fatalf("released message not leased again: %+v", c)
	}
	if st := ob.Stats(); st.InFlight != 2 {
		t.Errorf("in flight %d, want 2", st.InFlight)
	}
	if c.Topic != "outpost/u1/event" || c.Class != ClassEvent || !c.Created.Equal(t0) {
		t.Errorf("entry %+v", c)
	}
}

func TestReopenKeepsWhatWasNotAcked(t *testing.T) {
	dir := t.TempDir()
	ob := open(t, Options{Dir: dir})
	var ids []uint64
	for i := range 10 {
		ids = append(ids, put(t, ob, ClassTelemetry, fmt.Sprintf("m%d", i)))
	}
	for range 4 {
		e, _ := ob.Lease()
		if err := ob.Ack(e.ID); err != nil {
			t.Fatal(err)
		}
	}
	e, _ := ob.Lease() // in flight when the agent stops: sent again
	_ = e
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	ob = open(t, Options{Dir: dir})
	defer ob.Close()
	if got := strings.Join(drainAll(t, ob), " "); got != "m4 m5 m6 m7 m8 m9" {
		t.Fatalf("after reopen: %q", got)
	}
	if id := put(t, ob, ClassEvent, "new"); id <= ids[len(ids)-1] {
		t.Fatalf("id %d reused after reopen (last was %d)", id, ids[len(ids)-1])
	}
}

// A record's size in the outbox, to set limits in messages.
func recSize(c Class, payload string) int64 {
	return int64(len(encodePut(1, Message{Class: c, Topic: "outpost/u1/" + string(c), Payload: []byte(payload)}, t0)))
}

func TestFullDropsOldestOfLowestClass(t *testing.T) {
	dir := t.TempDir()
	p := strings.Repeat("x", 100)
	size := recSize(ClassTelemetry, p)
	ob := open(t, Options{Dir: dir, MaxBytes: 5 * size, MaxMessageBytes: int(size) + 10})
	for i := range 5 {
		put(t, ob, ClassTelemetry, fmt.Sprintf("%s%d", p[:99], i))
	}
	// An event makes room by dropping the oldest telemetry.
	put(t, ob, ClassEvent, p[:99]+"E")
	// Telemetry makes room among telemetry.
	put(t, ob, ClassTelemetry, p[:99]+"5")
	st := ob.Stats()
	if st.DroppedTelemetry != 2 || st.DroppedEvent != 0 || st.QueuedBytes > 5*size {
		t.Fatalf("stats %+v", st)
	}
	// Alerts push out the rest, events last.
	for i := range 5 {
		put(t, ob, ClassAlert, fmt.Sprintf("%s%d", p[:99], i))
	}
	st = ob.Stats()
	if st.DroppedTelemetry != 6 || st.DroppedEvent != 1 || st.Queued != 5 {
		t.Fatalf("after alerts: %+v", st)
	}
	// Now everything outranks telemetry: the new message is the one dropped.
	if _, err := ob.Put(Message{Class: ClassTelemetry, Topic: "t", Payload: []byte("late")}); !errors.Is(err, ErrDropped) {
		t.Fatalf("put into a queue of alerts: %v", err)
	}
	if st = ob.Stats(); st.DroppedTelemetry != 7 || st.Queued != 5 {
		t.Fatalf("after refused telemetry: %+v", st)
	}
	ob.Close()
	// Counts and content survive a restart.
	ob = open(t, Options{Dir: dir, MaxBytes: 5 * size, MaxMessageBytes: int(size) + 10})
	defer ob.Close()
	st = ob.Stats()
	if st.DroppedTelemetry != 7 || st.DroppedEvent != 1 || st.DroppedAlert != 0 || st.Queued != 5 {
		t.Fatalf("after reopen: %+v", st)
	}
	got := drainAll(t, ob)
	if len(got) != 5 || !strings.HasSuffix(got[0], "0") || !strings.HasSuffix(got[4], "4") {
		t.Fatalf("alerts after reopen: %v", got)
	}
}

func TestInFlightIsNotDropped(t *testing.T) {
	p := strings.Repeat("y", 100)
	size := recSize(ClassTelemetry, p)
	ob := open(t, Options{Dir: t.TempDir(), MaxBytes: 2 * size, MaxMessageBytes: int(size)})
	defer ob.Close()
	put(t, ob, ClassTelemetry, p)
	put(t, ob, ClassTelemetry, p)
	ob.Lease()
	ob.Lease()
	if _, err := ob.Put(Message{Class: ClassTelemetry, Topic: "outpost/u1/telemetry", Payload: []byte(p)}); !errors.Is(err, ErrDropped) {
		t.Fatalf("want the new message dropped while the others are in flight, got %v", err)
	}
}

func TestTooLargeAndBadMessages(t *testing.T) {
	ob := open(t, Options{Dir: t.TempDir(), MaxBytes: 64 << 10})
	defer ob.Close()
	for _, m := range []Message{
		{Class: ClassEvent, Topic: "t", Payload: make([]byte, 17<<10)},
		{Class: "urgent", Topic: "t"},
		{Class: ClassEvent},
	} {
		if _, err := ob.Put(m); err == nil || errors.Is(err, ErrDropped) {
			t.Errorf("put %q %q (%d bytes): %v", m.Class, m.Topic, len(m.Payload), err)
		}
	}
}

// segmentFiles lists the segments of dir, oldest first.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segExt))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// TestTornTail cuts the last record at every byte and checks recovery
// keeps every earlier message, loses only the torn one, and keeps the
// damaged bytes aside.
func TestTornTail(t *testing.T) {
	src := t.TempDir()
	ob := open(t, Options{Dir: src})
	for i := range 3 {
		put(t, ob, ClassEvent, fmt.Sprintf("event-%d", i))
	}
	ob.Close()
	segs := segmentFiles(t, src)
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	full, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	last := int(recSize(ClassEvent, "event-2"))
	start := len(full) - last
	for cut := start; cut < len(full); cut++ {
		t.Run(fmt.Sprint(cut-start), func(t *testing.T) {
			dir := t.TempDir()
			name := filepath.Join(dir, filepath.Base(segs[0]))
			if err := os.WriteFile(name, full[:cut], 0o640); err != nil {
				t.Fatal(err)
			}
			ob := open(t, Options{Dir: dir})
			got := strings.Join(drainAll(t, ob), " ")
			st := ob.Stats()
			ob.Close()
			if got != "event-0 event-1" {
				t.Fatalf("recovered %q", got)
			}
			aside, _ := filepath.Glob(name + ".damaged-*")
			if cut > start && (len(aside) != 1 || st.Damaged != 1) {
				t.Fatalf("damaged bytes not kept aside: %v, stats %+v", aside, st)
			}
			if cut > start {
				b, _ := os.ReadFile(aside[0])
				if !bytes.Equal(b, full[start:cut]) {
					t.Fatalf("kept aside %d bytes, want the %d torn ones", len(b), cut-start)
				}
			}
			// The outbox goes on working after the repair.
			ob = open(t, Options{Dir: dir})
			defer ob.Close()
			put(t, ob, ClassEvent, "after")
			if got := strings.Join(drainAll(t, ob), " "); got != "after" {
				t.Fatalf("after repair: %q", got)
			}
		})
	}
}

// A flipped bit in a middle record is caught by its CRC: the records from
// there are set aside; earlier ones and later segments are kept.
func TestCorruptRecordInAnOlderSegment(t *testing.T) {
	dir := t.TempDir()
	p := strings.Repeat("z", 200)
	ob := open(t, Options{Dir: dir, SegmentBytes: 1024})
	for i := range 12 {
		put(t, ob, ClassEvent, fmt.Sprintf("%s-%02d", p, i))
	}
	ob.Close()
	segs := segmentFiles(t, dir)
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %v", segs)
	}
	b, _ := os.ReadFile(segs[0])
	// Flip a byte in the second put of the first segment (after the header
	// and the state record).
	state := len(encodeState(1, nil))
	rec := int(recSize(ClassEvent, p+"-00"))
	b[headerSize+state+rec+rec/2] ^= 0x40
	os.WriteFile(segs[0], b, 0o640)

	ob = open(t, Options{Dir: dir, SegmentBytes: 1024})
	defer ob.Close()
	got := drainAll(t, ob)
	if st := ob.Stats(); st.Damaged != 1 {
		t.Errorf("damaged %d, want 1", st.Damaged)
	}
	if len(got) == 0 || got[0] != p+"-00" {
		t.Fatalf("first message lost: %v", got)
	}
	for _, g := range got {
		if g == p+"-01" {
			t.Fatal("a corrupt record was delivered")
		}
	}
	if last := got[len(got)-1]; last != p+"-11" {
		t.Fatalf("later segments lost: last %q", last)
	}
}

// Segments are deleted once spent, and a long-pending old message is moved
// forward so the disk stays within twice the limit.
func TestSegmentsAreReclaimed(t *testing.T) {
	dir := t.TempDir()
	p := strings.Repeat("q", 300)
	size := recSize(ClassTelemetry, p)
	max := 10 * size
	ob := open(t, Options{Dir: dir, MaxBytes: max, SegmentBytes: 3 * size})
	put(t, ob, ClassTelemetry, "pinned") // stays queued, leased and never acked
	pinned, _ := ob.Lease()
	for i := range 200 {
		put(t, ob, ClassEvent, p)
		e, ok := ob.Lease()
		if !ok {
			t.Fatal("nothing to lease")
		}
		if err := ob.Ack(e.ID); err != nil {
			t.Fatal(err)
		}
		if st := ob.Stats(); st.DiskBytes > 2*max+4*size {
			t.Fatalf("after %d messages the segments take %d bytes (limit %d)", i, st.DiskBytes, 2*max)
		}
	}
	st := ob.Stats()
	if st.Queued != 1 || st.Segments > 4 {
		t.Fatalf("stats %+v", st)
	}
	ob.Release(pinned.ID)
	ob.Close()
	ob = open(t, Options{Dir: dir, MaxBytes: max, SegmentBytes: 3 * size})
	defer ob.Close()
	if got := strings.Join(drainAll(t, ob), " "); got != "pinned" {
		t.Fatalf("after compaction and reopen: %q", got)
	}
}

// faultFS is the OS file system with failures injected into segment
// writes and syncs.
type faultFS struct {
	OSFS
	mu        sync.Mutex
	failWrite error // returned by Write (after writing shortBy fewer bytes)
	short     bool  // write half the bytes before failing
	failSync  error
}

func (f *faultFS) set(write, sync error, short bool) {
	f.mu.Lock()
	f.failWrite, f.failSync, f.short = write, sync, short
	f.mu.Unlock()
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(strings.TrimSuffix(name, ".tmp"), segExt) {
		return file, err
	}
	return &faultFile{File: file, fs: f}, nil
}

type faultFile struct {
	File
	fs *faultFS
}

func (f *faultFile) Write(b []byte) (int, error) {
	f.fs.mu.Lock()
	err, short := f.fs.failWrite, f.fs.short
	f.fs.mu.Unlock()
	if err == nil {
		return f.File.Write(b)
	}
	if short {
		n, _ := f.File.Write(b[:len(b)/2])
		return n, err
	}
	return 0, err
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	err := f.fs.failSync
	f.fs.mu.Unlock()
	if err != nil {
		return err
	}
	return f.File.Sync()
}

// A full disk, a short write or a failed fsync fails Put without leaving
// garbage: later puts work and a reopen finds exactly the messages whose
// Put succeeded.
func TestFailingDisk(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write error
		short bool
		sync  error
	}{
		{"disk full", syscall.ENOSPC, false, nil},
		{"short write", syscall.ENOSPC, true, nil},
		{"fsync fails", nil, false, syscall.EIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ffs := &faultFS{}
			ob := open(t, Options{Dir: dir, FS: ffs})
			put(t, ob, ClassEvent, "before")
			ffs.set(tc.write, tc.sync, tc.short)
			_, err := ob.Put(Message{Class: ClassEvent, Topic: "outpost/u1/event", Payload: []byte("lost")})
			if err == nil || !strings.Contains(err.Error(), "full or failing") {
				t.Fatalf("put on a failing disk: %v", err)
			}
			if tc.write != nil && !errors.Is(err, tc.write) || tc.sync != nil && !errors.Is(err, tc.sync) {
				t.Fatalf("the I/O error is not wrapped: %v", err)
			}
			ffs.set(nil, nil, false)
			put(t, ob, ClassEvent, "after")
			ob.Close()
			ob = open(t, Options{Dir: dir})
			defer ob.Close()
			if got := strings.Join(drainAll(t, ob), " "); got != "before after" {
				t.Fatalf("after reopen: %q", got)
			}
			if st := ob.Stats(); st.Damaged != 0 {
				t.Fatalf("the failed write left damage: %+v", st)
			}
		})
	}
}

// A record damaged on the card after it was written is dropped and counted
// when it comes up, not sent.
func TestDamageAfterWriteIsCounted(t *testing.T) {
	dir := t.TempDir()
	ob := open(t, Options{Dir: dir})
	defer ob.Close()
	put(t, ob, ClassEvent, "good-1")
	put(t, ob, ClassEvent, "bad")
	put(t, ob, ClassEvent, "good-2")
	seg := segmentFiles(t, dir)[0]
	b, _ := os.ReadFile(seg)
	i := bytes.Index(b, []byte("bad"))
	f, err := os.OpenFile(seg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("BAD"), int64(i))
	f.Close()
	if got := strings.Join(drainAll(t, ob), " "); got != "good-1 good-2" {
		t.Fatalf("drained %q", got)
	}
	if st := ob.Stats(); st.DroppedEvent != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHeaderlessSegmentIsSetAside(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "0000000000000001.obx"), []byte("garbage"), 0o640)
	os.WriteFile(filepath.Join(dir, "0000000000000002.obx.tmp"), []byte("half-made"), 0o640)
	ob := open(t, Options{Dir: dir})
	defer ob.Close()
	if st := ob.Stats(); st.Damaged != 1 || st.Queued != 0 {
		t.Fatalf("stats %+v", st)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
	put(t, ob, ClassEvent, "works")
}

func TestNewerFormatIsRefused(t *testing.T) {
	dir := t.TempDir()
	h := fileHeader()
	h[8] = 2
	os.WriteFile(filepath.Join(dir, "0000000000000001.obx"), h, 0o640)
	if _, err := Open(quiet(), Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "format version 2") {
		t.Fatalf("open: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	ob := open(t, Options{Dir: t.TempDir()})
	defer ob.Close()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				put(t, ob, Classes()[(w+i)%3], fmt.Sprintf("%d-%d", w, i))
			}
		}()
	}
	got := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for got < 200 {
			if e, ok := ob.Lease(); ok {
				ob.Ack(e.ID)
				got++
			}
		}
	}()
	wg.Wait()
	if st := ob.Stats(); st.Queued != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// seedSegments are the segment files the fuzz target starts from; run
// go test -run TestSeedSegments -update to rewrite them.
func TestSeedSegments(t *testing.T) {
	dir := t.TempDir()
	ob := open(t, Options{Dir: dir, MaxBytes: 4 * recSize(ClassTelemetry, "payload-0")})
	for i := range 6 {
		// The last ones make room (drop records) or are dropped.
		if _, err := ob.Put(Message{Class: Classes()[i%3], Topic: "outpost/u1/x", Payload: []byte(fmt.Sprintf("payload-%d", i))}); err != nil && !errors.Is(err, ErrDropped) {
			t.Fatal(err)
		}
	}
	e, _ := ob.Lease()
	ob.Ack(e.ID)
	ob.Close()
	segs := segmentFiles(t, dir)
	got, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "seed-1.obx")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestSeedSegments -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the segment format changed: if deliberately, raise the format version and run with -update")
	}
}

// noSyncFS skips fsync, which dominates a fuzz run's time and proves
// nothing about parsing.
type noSyncFS struct{ OSFS }

func (n noSyncFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := n.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

type noSyncFile struct{ File }

func (noSyncFile) Sync() error { return nil }

// FuzzOpen: no segment content makes Open panic or hand out a message
// that was not stored whole; whatever it recovers can be drained, and the
// outbox accepts new messages after.
func FuzzOpen(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.obx"))
	if len(seeds) == 0 {
		f.Fatal("no seed segments in testdata")
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "0000000000000001.obx"), b, 0o640); err != nil {
			t.Fatal(err)
		}
		ob, err := Open(quiet(), Options{Dir: dir, MaxBytes: 1 << 20, Clock: clock.NewFake(t0), FS: noSyncFS{}})
		if err != nil {
			return // a newer format version
		}
		defer ob.Close()
		st := ob.Stats()
		n := 0
		for {
			e, ok := ob.Lease()
			if !ok {
				break
			}
			if !ValidClass(e.Class) {
				t.Fatalf("leased %+v", e)
			}
			ob.Ack(e.ID)
			n++
		}
		if n > st.Queued {
			t.Fatalf("leased %d messages of %d queued", n, st.Queued)
		}
		if _, err := ob.Put(Message{Class: ClassEvent, Topic: "t", Payload: []byte("x")}); err != nil {
			t.Fatalf("put after recovery: %v", err)
		}
	})
}
