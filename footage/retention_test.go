package footage_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/footage/footagetest"
	"github.com/outpost-cctv/outpost/internal/clock"
)

const day = 24 * time.Hour

// retentionStore is a store on a FaultFS reporting a disk of total bytes
// with free bytes free.
func retentionStore(t *testing.T, dir string, clk clock.Clock, total, free int64, tune func(*footage.Options)) (*footage.Store, *footagetest.FaultFS) {
	t.Helper()
	ffs := &footagetest.FaultFS{}
	ffs.SetUsage(total, free)
	o := smallOpts()
	o.FS = ffs
	o.Quota = config.SizeOrPercent{Percent: 100}
	o.MinFree = config.SizeOrPercent{}
	if tune != nil {
		tune(&o)
	}
	return openStore(t, dir, o, clk), ffs
}

// daily records one second of frames on each day from days ago to 0 days
// ago, each day in its own segment.
func daily(t *testing.T, s *footage.Store, days int) {
	t.Helper()
	for d := days; d >= 0; d-- {
		record(t, s, t0.Add(-time.Duration(d)*day), 10, 10)
	}
}

func names(segs []footage.SegmentInfo) map[string]bool {
	m := map[string]bool{}
	for _, s := range segs {
		m[s.Name] = true
	}
	return m
}

func TestRetentionMaxAge(t *testing.T) {
	clk := clock.NewFake(t0)
	s, _ := retentionStore(t, t.TempDir(), clk, 1<<40, 1<<39, nil)
	daily(t, s, 40)
	rep, err := s.Maintain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	oldest, _ := s.Span()
	if rep.ByAge != 12 || oldest.Before(t0.Add(-28*day)) {
		t.Fatalf("evicted %d by age (want 12: days 40-29), oldest now %v", rep.ByAge, oldest)
	}
	if _, err := s.Export(context.Background(), io.Discard, t0.Add(-41*day), t0.Add(-28*day-time.Hour)); !errors.Is(err, footage.ErrNoFootage) {
		t.Fatalf("footage past retention still exported: %v", err)
	}
}

// TestRetentionUnsetClock: footage stamped before the clock was set ages
// with the next footage stamped by a set clock.
func TestRetentionUnsetClock(t *testing.T) {
	dir := t.TempDir()
	boot := time.Unix(100, 0)
	clk := clock.NewFake(boot)
	s, _ := retentionStore(t, dir, clk, 1<<40, 1<<39, nil)
	record(t, s, boot, 10, 10) // a run that never learnt the time
	s.Close()
	s, _ = retentionStore(t, dir, clk, 1<<40, 1<<39, nil)
	clk.Advance(t0.Sub(boot))
	record(t, s, t0, 10, 10)
	clk.Advance(10 * day)
	if rep, _ := s.Maintain(context.Background()); rep.Evicted != 0 {
		t.Fatalf("evicted %d segments that may be 10 days old", rep.Evicted)
	}
	record(t, s, t0.Add(10*day), 10, 10)
	clk.Advance(20 * day) // the 1970 run is now older than 30 days
	rep, _ := s.Maintain(context.Background())
	if rep.ByAge != 2 {
		t.Fatalf("evicted %d by age, want the 1970 segment and the one of t0", rep.ByAge)
	}
	if segs := s.Segments(); len(segs) != 1 || !segs[0].ClockSet {
		t.Fatalf("left %+v", segs)
	}
}

func TestRetentionQuotaAndMinFree(t *testing.T) {
	cases := []struct {
		name        string
		total, free int64
		tune        func(*footage.Options)
		check       func(t *testing.T, used, free int64)
	}{
		{"quota bytes", 1 << 30, 1 << 29, func(o *footage.Options) { o.Quota = config.SizeOrPercent{Bytes: 100 << 10} },
			func(t *testing.T, used, _ int64) {
				if used > 100<<10 {
					t.Errorf("used %d above the 100 KiB quota", used)
				}
			}},
		{"quota percent", 1 << 20, 1 << 19, func(o *footage.Options) { o.Quota = config.SizeOrPercent{Percent: 10} },
			func(t *testing.T, used, _ int64) {
				if used > (1<<20)/10 {
					t.Errorf("used %d above 10%% of 1 MiB", used)
				}
			}},
		{"min free", 1 << 30, 50 << 10, func(o *footage.Options) { o.MinFree = config.SizeOrPercent{Bytes: 200 << 10} },
			func(t *testing.T, _, free int64) {
				if free < 200<<10 {
					t.Errorf("free %d below min_free 200 KiB", free)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			s, _ := retentionStore(t, t.TempDir(), clk, c.total, c.free, c.tune)
			daily(t, s, 20)
			before := s.Segments()
			rep, err := s.Maintain(context.Background())
			if err != nil || rep.Evicted == 0 || rep.Blocked {
				t.Fatalf("maintain: %+v %v", rep, err)
			}
			c.check(t, rep.UsedBytes, rep.DiskFreeBytes+rep.EvictedBytes)
			// Oldest first: what is left is the newest.
			after := s.Segments()
			if after[0].Name != before[rep.Evicted].Name || after[len(after)-1].Name != before[len(before)-1].Name {
				t.Fatalf("evicted out of order: %d evicted, first left %s", rep.Evicted, after[0].Name)
			}
			if st := s.Stats(); st.EvictedSegments != uint64(rep.Evicted) {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestHoldsNeverEvicted(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(t0)
	tune := func(o *footage.Options) {
		o.Quota = config.SizeOrPercent{Bytes: 1}
		o.HoldCap = config.SizeOrPercent{Percent: 50}
	}
	s, _ := retentionStore(t, dir, clk, 1<<30, 1<<29, tune)
	daily(t, s, 40)
	h, err := s.AddHold(t0.Add(-40*day), t0.Add(-38*day), "incident 2025/0412", "PC 1234")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Maintain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Everything unheld is gone (age and a 1-byte quota) but the active
	// segment; the three held days stay, and retention says it is blocked.
	segs := s.Segments()
	if len(segs) != 4 || !segs[0].Held || !segs[2].Held || segs[3].Held || !rep.Blocked {
		t.Fatalf("left %d segments, blocked %v: %+v", len(segs), rep.Blocked, segs)
	}
	if !hasFault(s.Faults(), footage.FaultRetentionBlocked) {
		t.Fatalf("faults %v", s.Faults())
	}

	// Holds survive a restart.
	s.Close()
	s, _ = retentionStore(t, dir, clk, 1<<30, 1<<29, tune)
	if hs := s.Holds(); len(hs) != 1 || hs[0] != h {
		t.Fatalf("holds after restart %+v, want %+v", hs, h)
	}
	s.Maintain(context.Background()) // the segment sealed at close goes
	held := 0
	for _, sg := range s.Segments() {
		if sg.Held {
			held++
		}
	}
	if held != 3 {
		t.Fatalf("%d held segments after restart, want 3", held)
	}
	if err := s.ReleaseHold(h.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseHold(h.ID); err == nil {
		t.Fatal("released twice")
	}
	if rep, _ := s.Maintain(context.Background()); rep.Evicted != 3 {
		t.Fatalf("evicted %d after release, want 3", rep.Evicted)
	}
}

func TestHoldCap(t *testing.T) {
	clk := clock.NewFake(t0)
	var faults []footage.Fault
	s, ffs := retentionStore(t, t.TempDir(), clk, 1<<20, 1<<19, func(o *footage.Options) {
		o.HoldCap = config.SizeOrPercent{Bytes: 30 << 10}
		o.OnFault = func(f footage.Fault) { faults = append(faults, f) }
	})
	daily(t, s, 10)
	h, err := s.AddHold(t0.Add(-10*day), t0.Add(-5*day), "case 77", "control room")
	if err != nil {
		t.Fatalf("a hold over the cap is still made: %v", err)
	}
	if len(faults) != 1 || faults[0].Code != footage.FaultHoldCap || !faults[0].Active {
		t.Fatalf("faults %+v, want %s raised", faults, footage.FaultHoldCap)
	}
	clk.Advance(60 * day) // everything is past max_age
	s.Maintain(context.Background())
	for _, sg := range s.Segments() {
		if sg.Start.Before(t0.Add(-5*day)) && !sg.Held {
			t.Fatalf("segment %s of the held days not held", sg.Name)
		}
	}
	if n := len(s.Segments()); n != 6 {
		t.Fatalf("%d segments left, want the 6 held days", n)
	}
	if !hasFault(s.Faults(), footage.FaultHoldCap) {
		t.Fatalf("faults %v: the cap is still exceeded", s.Faults())
	}
	ffs.SetUsage(1<<30, 1<<29) // a bigger card: the cap (a size) is unchanged
	s.ReleaseHold(h.ID)
	if hasFault(s.Faults(), footage.FaultHoldCap) {
		t.Fatalf("hold cap fault not cleared on release: %v", s.Faults())
	}
}

func TestHoldsFileDamaged(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(t0)
	s, _ := retentionStore(t, dir, clk, 1<<30, 1<<29, nil)
	daily(t, s, 40)
	s.AddHold(t0.Add(-40*day), t0.Add(-39*day), "r", "b")
	s.Close()
	os.WriteFile(filepath.Join(dir, "holds.json"), []byte(`{"schema": 1, "holds": [{"id": "h-1", "fr`), 0o644)
	s, _ = retentionStore(t, dir, clk, 1<<30, 1<<29, nil)
	if !hasFault(s.Faults(), footage.FaultHoldsUnreadable) {
		t.Fatalf("faults %v", s.Faults())
	}
	if rep, _ := s.Maintain(context.Background()); rep.Evicted != 0 {
		t.Fatalf("evicted %d segments with the holds unreadable", rep.Evicted)
	}
	if _, err := s.AddHold(t0.Add(-time.Hour), t0, "r", "b"); err == nil {
		t.Fatal("a new hold would overwrite the damaged file")
	}
}

func TestHoldValidation(t *testing.T) {
	s := openStore(t, t.TempDir(), smallOpts(), clock.NewFake(t0))
	for _, c := range []struct {
		from, to   time.Time
		reason, by string
	}{
		{t0, t0, "r", "b"},
		{t0, t0.Add(-time.Hour), "r", "b"},
		{t0, t0.Add(time.Hour), "", "b"},
		{t0, t0.Add(time.Hour), "r", ""},
	} {
		if _, err := s.AddHold(c.from, c.to, c.reason, c.by); err == nil {
			t.Errorf("hold %+v accepted", c)
		}
	}
}

// blockingWriter lets the first write through and then waits.
type blockingWriter struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
	n       int64
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() {
		close(w.started)
		<-w.release
	})
	w.n += int64(len(p))
	return len(p), nil
}

// TestExportDuringEviction: segments being exported are not deleted under
// the export; they go at the next pass after it.
func TestExportDuringEviction(t *testing.T) {
	clk := clock.NewFake(t0)
	s, _ := retentionStore(t, t.TempDir(), clk, 1<<30, 1<<29, nil)
	daily(t, s, 5)
	segs := len(s.Segments())
	w := &blockingWriter{started: make(chan struct{}), release: make(chan struct{})}
	type result struct {
		info footage.ExportInfo
		err  error
	}
	done := make(chan result)
	go func() {
		info, err := s.Export(context.Background(), w, t0.Add(-6*day), t0.Add(time.Hour))
		done <- result{info, err}
	}()
	<-w.started
	clk.Advance(40 * day) // all of it is past retention now
	rep, err := s.Maintain(context.Background())
	if err != nil || rep.Evicted != 0 || len(s.Segments()) != segs {
		t.Fatalf("evicted %d segments under an export (%v)", rep.Evicted, err)
	}
	close(w.release)
	r := <-done
	if r.err != nil || r.info.Frames != 60 {
		t.Fatalf("export: %+v %v", r.info, r.err)
	}
	// The idle segment being written is sealed, and everything goes.
	if rep, _ := s.Maintain(context.Background()); rep.Evicted != segs {
		t.Fatalf("after the export, evicted %d of %d", rep.Evicted, segs)
	}
}

// TestConcurrentReadWriteEvict runs a writer, readers and retention at
// once (for the race detector), checking readers only ever see intact,
// ordered frames.
func TestConcurrentReadWriteEvict(t *testing.T) {
	clk := clock.NewFake(t0)
	s, _ := retentionStore(t, t.TempDir(), clk, 1<<30, 1<<29, func(o *footage.Options) {
		o.Quota = config.SizeOrPercent{Bytes: 200 << 10}
		o.SegmentDuration = 500 * time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		for i, f := range footagetest.Frames(t0, 25, 1500, testPics, 64, 48) {
			if _, err := s.Append(f, 0); err != nil {
				errs <- err
				return
			}
			if i%25 == 0 {
				s.Sync()
			}
		}
	}()
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				var prev uint64
				_, err := s.Frames(ctx, t0, t0.Add(time.Hour), func(f footage.Frame) error {
					if f.Seq <= prev || len(f.Data) == 0 {
						return errors.New("frames out of order or empty")
					}
					prev = f.Seq
					return nil
				})
				if err != nil && !errors.Is(err, context.Canceled) {
					errs <- err
					return
				}
				if _, err := s.Export(ctx, io.Discard, t0, t0.Add(time.Hour)); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, footage.ErrNoFootage) {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if _, err := s.Maintain(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
				return
			}
			s.Stats()
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := s.Stats(); st.EvictedSegments == 0 {
		t.Fatalf("nothing evicted: %+v", st)
	}
}
