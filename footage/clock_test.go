package footage_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// timesIn returns the corrected times of the frames in [from, to).
func timesIn(t *testing.T, s *footage.Store, from, to time.Time) []time.Time {
	t.Helper()
	var out []time.Time
	if _, err := s.Frames(context.Background(), from, to, func(f footage.Frame) error {
		out = append(out, f.Time)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestClockSteps(t *testing.T) {
	boot := time.Unix(0, 0).Add(90 * time.Second) // a unit that booted at 1970
	cases := []struct {
		name  string
		start time.Time     // what the clock said at the first frame
		step  time.Duration // applied after 2 s of frames
	}{
		{"set from 1970", boot, t0.Sub(boot)},
		{"stepped back an hour", t0.Add(time.Hour), -time.Hour},
		{"stepped forward a minute", t0.Add(-time.Minute), time.Minute},
		{"stepped back 3 s into its own past", t0.Add(3 * time.Second), -3 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			o := smallOpts()
			o.SegmentDuration = time.Minute
			clk := clock.NewFake(t0)
			s := openStore(t, dir, o, clk)
			before := record(t, s, c.start, 25, 50)
			if err := s.NoteClockStep(c.step, c.start.Add(2*time.Second+c.step)); err != nil {
				t.Fatal(err)
			}
			after := record(t, s, t0.Add(2*time.Second), 25, 50)
			if after[0] <= before[len(before)-1] {
				t.Fatal("sequence went back across the step")
			}
			check := func(s *footage.Store) {
				t.Helper()
				ts := timesIn(t, s, t0, t0.Add(4*time.Second))
				if len(ts) != 100 {
					t.Fatalf("%d frames in the 4 s around the step, want 100", len(ts))
				}
				for i, ft := range ts {
					if want := t0.Add(time.Duration(i) * 40 * time.Millisecond); !ft.Equal(want) {
						t.Fatalf("frame %d at %v, want %v", i, ft, want)
					}
				}
				// By sequence, unaffected, and raw times kept.
				fs := allFrames(t, s)
				if len(fs) != 100 || !fs[0].RawTime.Equal(c.start) || fs[0].Seq != before[0] {
					t.Fatalf("by sequence: %d frames, first raw %v", len(fs), fs[0].RawTime)
				}
				var buf bytes.Buffer
				info, err := s.Export(context.Background(), &buf, t0, t0.Add(4*time.Second))
				if err != nil || info.Frames != 100 || info.Duration != 4*time.Second {
					t.Fatalf("export across the step: %+v %v", info, err)
				}
			}
			check(s)
			s.Close()
			check(openStore(t, dir, o, clk)) // corrections survive a restart
		})
	}
}

// TestClockCorrectionOutlivesItsSegment: the segment that carried a
// correction is evicted while older footage of the same run is held; the
// held footage keeps its corrected times, also after a restart.
func TestClockCorrectionOutlivesItsSegment(t *testing.T) {
	dir := t.TempDir()
	boot := time.Unix(0, 0).Add(time.Minute)
	clk := clock.NewFake(t0)
	tune := func(o *footage.Options) {
		o.SegmentDuration = time.Second
		o.Quota = config.SizeOrPercent{Bytes: 1}
		o.HoldCap = config.SizeOrPercent{Percent: 50}
	}
	s, _ := retentionStore(t, dir, clk, 1<<30, 1<<29, tune)
	record(t, s, boot, 25, 50) // two 1 s segments at 1970
	s.NoteClockStep(t0.Sub(boot), t0.Add(2*time.Second))
	record(t, s, t0.Add(2*time.Second), 25, 50)
	if _, err := s.AddHold(t0, t0.Add(500*time.Millisecond), "incident", "operator"); err != nil {
		t.Fatal(err)
	}
	s.Maintain(context.Background())
	segs := s.Segments()
	if len(segs) != 2 || !segs[0].Held { // the held first second, and the active one
		t.Fatalf("segments after eviction %+v", segs)
	}
	for round := 0; round < 2; round++ {
		if ts := timesIn(t, s, t0, t0.Add(time.Second)); len(ts) != 25 || !ts[0].Equal(t0) {
			t.Fatalf("round %d: held footage at %d frames from %v, want 25 from %v", round, len(ts), ts, t0)
		}
		s.Close()
		s, _ = retentionStore(t, dir, clk, 1<<30, 1<<29, tune)
	}
}
