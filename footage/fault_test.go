package footage_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/footage/footagetest"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// failWhile returns a failure function that fails op on files matching
// name (a suffix; "" for any) with ENOSPC while *on is set.
func failWhile(on *atomic.Bool, op footagetest.Op, suffix string) func(footagetest.Op, string) error {
	return func(o footagetest.Op, name string) error {
		if on.Load() && o == op && strings.HasSuffix(name, suffix) {
			return footagetest.ErrNoSpace
		}
		return nil
	}
}

func TestDiskFullOnWrite(t *testing.T) {
	for _, short := range []bool{false, true} {
		t.Run(map[bool]string{false: "nothing written", true: "short write"}[short], func(t *testing.T) {
			dir := t.TempDir()
			var full atomic.Bool
			ffs := &footagetest.FaultFS{ShortWrite: short}
			ffs.SetFail(failWhile(&full, footagetest.OpWrite, ".seg"))
			o := smallOpts()
			o.FS = ffs
			var faults []footage.Fault
			o.OnFault = func(f footage.Fault) { faults = append(faults, f) }
			clk := clock.NewFake(t0)
			s := openStore(t, dir, o, clk)
			synced := record(t, s, t0, 25, 10)

			full.Store(true)
			for i := 0; i < 5; i++ {
				_, err := s.Append(frame(t0.Add(time.Second+time.Duration(i)*40*time.Millisecond), testPics[1]), 0)
				if !footage.IsDiskFull(err) {
					t.Fatalf("append on a full disk: %v, want ENOSPC", err)
				}
			}
			if !hasFault(s.Faults(), footage.FaultDiskFull) {
				t.Fatalf("faults %v, want %s", s.Faults(), footage.FaultDiskFull)
			}
			full.Store(false)
			more := record(t, s, t0.Add(2*time.Second), 25, 5)
			if hasFault(s.Faults(), footage.FaultDiskFull) {
				t.Fatalf("fault not cleared once writes succeed: %v", s.Faults())
			}
			if len(faults) != 2 || !faults[0].Active || faults[1].Active {
				t.Fatalf("fault notifications %v, want raised then cleared", faults)
			}
			s.Close()
			s = openStore(t, dir, smallOpts(), clk)
			if got := seqsOf(allFrames(t, s)); !equalSeqs(got, append(synced, more...)) {
				t.Fatalf("frames %v, want %v", got, append(synced, more...))
			}
			if rep, err := s.Verify(context.Background()); err != nil || !rep.OK() {
				t.Fatalf("a failed write left damage: %+v %v", rep, err)
			}
		})
	}
}

func TestDiskFullOnSync(t *testing.T) {
	dir := t.TempDir()
	var full atomic.Bool
	ffs := &footagetest.FaultFS{}
	ffs.SetFail(failWhile(&full, footagetest.OpSync, ".seg"))
	o := smallOpts()
	o.FS = ffs
	clk := clock.NewFake(t0)
	s := openStore(t, dir, o, clk)
	synced := record(t, s, t0, 25, 10)
	for i := 0; i < 4; i++ {
		if _, err := s.Append(frame(t0.Add(time.Second+time.Duration(i)*40*time.Millisecond), testPics[2]), 0); err != nil {
			t.Fatal(err)
		}
	}
	full.Store(true)
	got, err := s.Sync()
	if !footage.IsDiskFull(err) || got != synced[len(synced)-1] {
		t.Fatalf("sync on a full disk: synced %d, %v; want %d and ENOSPC", got, err, synced[len(synced)-1])
	}
	if st := s.Stats(); st.FramesLost != 4 {
		t.Fatalf("frames lost %d, want the 4 unsynced", st.FramesLost)
	}
	full.Store(false)
	more := record(t, s, t0.Add(2*time.Second), 25, 3)
	if got := seqsOf(allFrames(t, s)); !equalSeqs(got, append(synced, more...)) {
		t.Fatalf("frames %v, want %v (the unsynced frames are cut)", got, append(synced, more...))
	}
	s.Close()
	s = openStore(t, dir, smallOpts(), clk)
	if rep, err := s.Verify(context.Background()); err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

func TestDiskFullOnRename(t *testing.T) {
	dir := t.TempDir()
	var full atomic.Bool
	ffs := &footagetest.FaultFS{}
	ffs.SetFail(failWhile(&full, footagetest.OpRename, ".seg"))
	o := smallOpts()
	o.FS = ffs
	clk := clock.NewFake(t0)
	s := openStore(t, dir, o, clk)
	first := record(t, s, t0, 25, 10)
	full.Store(true)
	// 3 s later: the segment rotates, and the new one cannot be created.
	_, err := s.Append(frame(t0.Add(3*time.Second), testPics[0]), 0)
	if !footage.IsDiskFull(err) {
		t.Fatalf("append needing a new segment: %v, want ENOSPC", err)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmps) != 0 {
		t.Fatalf("failed creation left %v", tmps)
	}
	full.Store(false)
	more := record(t, s, t0.Add(3*time.Second), 25, 5)
	segs := s.Segments()
	if len(segs) != 2 || !segs[0].Sealed {
		t.Fatalf("segments %+v", segs)
	}
	if got := seqsOf(allFrames(t, s)); !equalSeqs(got, append(first, more...)) {
		t.Fatalf("frames %v", got)
	}
}

// TestSealFailure: when the footer cannot be written the segment stays
// readable from memory and is sealed by a later retention pass.
func TestSealFailure(t *testing.T) {
	dir := t.TempDir()
	var full atomic.Bool
	ffs := &footagetest.FaultFS{ShortWrite: true}
	ffs.SetFail(failWhile(&full, footagetest.OpWrite, "0000000000000001.seg"))
	o := smallOpts()
	o.FS = ffs
	clk := clock.NewFake(t0)
	s := openStore(t, dir, o, clk)
	first := record(t, s, t0, 25, 10)
	full.Store(true)
	more := record(t, s, t0.Add(3*time.Second), 25, 5) // rotates; sealing the first fails
	if segs := s.Segments(); len(segs) != 2 || segs[0].Sealed {
		t.Fatalf("segments %+v: the first must be unsealed", segs)
	}
	if got := seqsOf(allFrames(t, s)); !equalSeqs(got, append(first, more...)) {
		t.Fatalf("frames %v", got)
	}
	full.Store(false)
	clk.Advance(3200 * time.Millisecond) // the active segment is not idle
	rep, err := s.Maintain(context.Background())
	if err != nil || rep.Sealed != 1 {
		t.Fatalf("maintain: %+v %v", rep, err)
	}
	if segs := s.Segments(); !segs[0].Sealed {
		t.Fatal("not sealed by maintain")
	}
	s.Close()
	s = openStore(t, dir, smallOpts(), clk)
	if rep, err := s.Verify(context.Background()); err != nil || !rep.OK() || rep.Frames != 15 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// TestOtherWriteError: an I/O error that is not a full disk raises the
// storage fault.
func TestOtherWriteError(t *testing.T) {
	var bad atomic.Bool
	ffs := &footagetest.FaultFS{}
	ffs.SetFail(func(op footagetest.Op, name string) error {
		if bad.Load() && op == footagetest.OpWrite {
			return errors.New("input/output error")
		}
		return nil
	})
	o := smallOpts()
	o.FS = ffs
	s := openStore(t, t.TempDir(), o, clock.NewFake(t0))
	bad.Store(true)
	if _, err := s.Append(frame(t0, testPics[0]), 0); err == nil || footage.IsDiskFull(err) {
		t.Fatalf("append: %v", err)
	}
	if !hasFault(s.Faults(), footage.FaultStorage) {
		t.Fatalf("faults %v", s.Faults())
	}
	bad.Store(false)
	if _, err := s.Append(frame(t0, testPics[0]), 0); err != nil || len(s.Faults()) != 0 {
		t.Fatalf("after recovery: %v, faults %v", err, s.Faults())
	}
}

func TestRefusedFrames(t *testing.T) {
	s := openStore(t, t.TempDir(), smallOpts(), clock.NewFake(t0))
	if _, err := s.Append(frame(t0, nil), 0); !errors.Is(err, footage.ErrEmptyFrame) {
		t.Fatalf("empty frame: %v", err)
	}
	if _, err := s.Append(frame(t0, make([]byte, 300<<10)), 0); !errors.Is(err, footage.ErrFrameTooLarge) {
		t.Fatalf("large frame: %v", err)
	}
	if st := s.Stats(); st.FramesRefused != 2 || st.FramesWritten != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSecondWriterRefused(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir, smallOpts(), clock.NewFake(t0))
	_, err := footage.Open(dir, smallOpts(), nil, clock.NewFake(t0))
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second writer: %v", err)
	}
	ro := smallOpts()
	ro.ReadOnly = true
	r, err := footage.Open(dir, ro, nil, clock.NewFake(t0))
	if err != nil {
		t.Fatalf("read-only open beside the writer: %v", err)
	}
	r.Close()
	if _, err := os.Stat(filepath.Join(dir, "LOCK")); err != nil {
		t.Fatal(err)
	}
}
