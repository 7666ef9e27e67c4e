package footage_test

import (
	"context"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/footage/footagetest"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// segments28Days is 28 days of 60 s segments.
const segments28Days = 28 * 24 * 60

// buildManySegments fills dir with n sealed segments of two small frames
// each, one a minute as the default config makes them, through the store
// with syncs turned off (building, not testing durability).
func buildManySegments(t testing.TB, dir string, n int) {
	t.Helper()
	o := footage.DefaultOptions()
	o.FS = footagetest.NoSyncFS{}
	s, err := footage.Open(dir, o, nil, clock.NewFake(t0))
	if err != nil {
		t.Fatal(err)
	}
	pic := testPics[0][:200]
	start := t0.Add(-time.Duration(n) * time.Minute)
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * time.Minute)
		for j := 0; j < 2; j++ {
			if _, err := s.Append(frame(at.Add(time.Duration(j)*time.Second), pic), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOpen28Days opens a store of 28 days of 60 s segments (40,320
// files): it must take under 2 s (the goal, on this machine;
// twice that with the race detector's slowdown, which the benchmark does
// not have).
func TestOpen28Days(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 40,320 segments; run without -short")
	}
	dir := t.TempDir()
	buildManySegments(t, dir, segments28Days)
	limit := 2 * time.Second
	if raceEnabled {
		limit *= 2
	}
	for _, ro := range []bool{false, true} {
		o := footage.DefaultOptions()
		o.ReadOnly = ro
		start := time.Now()
		s, err := footage.Open(dir, o, nil, clock.NewFake(t0))
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		n := len(s.Segments())
		if n != segments28Days {
			t.Fatalf("%d segments, want %d", n, segments28Days)
		}
		// Look-up still works at the far ends.
		if _, err := s.Nearest(context.Background(), t0.Add(-time.Duration(segments28Days)*time.Minute), time.Second); err != nil {
			t.Fatal(err)
		}
		s.Close()
		t.Logf("read-only %v: opened %d segments in %s", ro, n, took)
		if took > limit {
			t.Errorf("opening %d segments took %s, want under %s", n, took, limit)
		}
	}
}
