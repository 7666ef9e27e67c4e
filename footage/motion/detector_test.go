package motion

import (
	"fmt"
	"image"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/footage/motion/jpegdc"
	"github.com/outpost-cctv/outpost/hal/camera/sim"
	"github.com/outpost-cctv/outpost/internal/clock"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// interval is a crossing, from the first to the last frame showing it.
type interval struct{ start, end time.Time }

// runSim plays d seconds of a simulated camera through a Detector and
// returns the events and the crossings the camera showed.
func runSim(t *testing.T, cfg sim.Config, dcfg Config, d time.Duration) (events []Event, crossings []interval) {
	t.Helper()
	clk := clock.NewFake(t0)
	cam, err := sim.New(cfg, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	det, err := NewDetector(dcfg)
	if err != nil {
		t.Fatal(err)
	}
	var dec jpegdc.Decoder
	var img *image.Gray
	step := time.Second / time.Duration(cfg.FPS)
	var in bool
	for k := 0; k < int(d/step); k++ {
		f, err := cam.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if m := cam.InMotion(f.Time); m && !in {
			crossings = append(crossings, interval{start: f.Time})
			in = true
		} else if m {
			crossings[len(crossings)-1].end = f.Time
		} else {
			in = false
		}
		if img, err = dec.Decode(f.Data, img); err != nil {
			t.Fatal(err)
		}
		if e, ok := det.Process(f.Time, img); ok {
			events = append(events, e)
		}
		clk.Advance(step)
	}
	if e, ok := det.Flush(); ok {
		events = append(events, e)
	}
	return events, crossings
}

func TestSimCrossings(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  sim.Config
		dcfg Config
	}{
		{"360p every 8s", sim.Config{Width: 640, Height: 360, FPS: 15, MotionEvery: 8 * time.Second, MotionDuration: 3 * time.Second, Quality: 75}, Config{}},
		{"360p every 6s, fast crossing", sim.Config{Width: 640, Height: 360, FPS: 10, MotionEvery: 6 * time.Second, MotionDuration: time.Second, Quality: 60}, Config{}},
		{"zone on the road", sim.Config{Width: 640, Height: 360, FPS: 10, MotionEvery: 7 * time.Second, MotionDuration: 3 * time.Second, Quality: 75}, Config{Zones: []Polygon{Rect{0, 0.5, 1, 1}.Polygon()}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, crossings := runSim(t, tc.cfg, tc.dcfg, 36*time.Second)
			if len(crossings) < 4 {
				t.Fatalf("only %d crossings scripted", len(crossings))
			}
			starts := 0
			matched := make([]bool, len(crossings))
			for _, e := range events {
				if e.Ended() {
					continue
				}
				starts++
				hit := false
				for i, c := range crossings {
					// An event belongs to a crossing if it starts within it.
					if !e.Start.Before(c.start) && !e.Start.After(c.end) {
						if matched[i] {
							t.Errorf("crossing %d: second event %v", i, e.Start.Sub(t0))
						}
						matched[i], hit = true, true
					}
				}
				if !hit {
					t.Errorf("false event at %v (score %.3f)", e.Start.Sub(t0), e.Score)
				}
			}
			for i, ok := range matched {
				if !ok {
					t.Errorf("crossing %d at %v not detected", i, crossings[i].start.Sub(t0))
				}
			}
			for _, e := range events {
				if !e.Ended() {
					continue
				}
				for _, c := range crossings {
					if !e.Start.Before(c.start) && !e.Start.After(c.end) && (e.End.Before(c.start) || e.End.After(c.end)) {
						t.Errorf("event %v-%v ends outside its crossing %v-%v", e.Start.Sub(t0), e.End.Sub(t0), c.start.Sub(t0), c.end.Sub(t0))
					}
				}
			}
			if starts*2 != len(events) {
				t.Errorf("%d events started, %d reports: every start must end", starts, len(events))
			}
			t.Logf("%d crossings, %d events", len(crossings), starts)
			for _, c := range crossings {
				t.Logf("crossing %v-%v", c.start.Sub(t0), c.end.Sub(t0))
			}
			for _, e := range events {
				t.Logf("event %v-%v score %.4f box %+v", e.Start.Sub(t0), e.End.Sub(t0), e.Score, e.Box)
			}
		})
	}
}

func TestSimStaticNoFalseEvents(t *testing.T) {
	events, _ := runSim(t, sim.Config{Width: 640, Height: 360, FPS: 25, Quality: 75}, Config{}, 15*time.Second)
	if len(events) > 0 {
		t.Fatalf("%d events on a static scene, first %+v", len(events), events[0])
	}
}

// synthetic returns frame k of a 1/8-scale scene: a textured background
// with per-frame noise, changed by fn.
func synthetic(w, h int, seed uint64, fn func(x, y int, v float64) float64) *image.Gray {
	r := rand.New(rand.NewPCG(seed, 3))
	m := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := 60 + float64((x*7+y*13)%90) + r.NormFloat64()*2
			v = fn(x, y, v)
			m.Pix[y*m.Stride+x] = uint8(max(0, min(255, v)))
		}
	}
	return m
}

func TestDetectorScenes(t *testing.T) {
	const w, h = 80, 45 // 640×360 at 1/8
	square := func(k, x0, size int, dv float64) func(x, y int, v float64) float64 {
		return func(x, y int, v float64) float64 {
			if k >= 40 && k < 80 {
				cx := x0 + (k - 40)
				if x >= cx && x < cx+size && y >= 20 && y < 20+size {
					return v + dv
				}
			}
			return v
		}
	}
	tests := []struct {
		name   string
		cfg    Config
		frame  func(k int) func(x, y int, v float64) float64
		events int
	}{
		{"noise only", Config{}, func(int) func(int, int, float64) float64 {
			return func(_, _ int, v float64) float64 { return v }
		}, 0},
		{"brightness ramp (cloud)", Config{}, func(k int) func(int, int, float64) float64 {
			return func(_, _ int, v float64) float64 { return v + float64(k)*0.5 }
		}, 0},
		{"brightness step (IR illuminator)", Config{}, func(k int) func(int, int, float64) float64 {
			return func(_, _ int, v float64) float64 {
				if k >= 50 {
					return v + 40
				}
				return v
			}
		}, 0},
		{"object crossing", Config{}, func(k int) func(int, int, float64) float64 { return square(k, 10, 6, 60) }, 1},
		{"dark object crossing", Config{}, func(k int) func(int, int, float64) float64 { return square(k, 10, 6, -60) }, 1},
		{"object too small for min_area", Config{MinArea: 0.01}, func(k int) func(int, int, float64) float64 { return square(k, 10, 3, 60) }, 0},
		{"object in an ignore zone", Config{Ignore: []Polygon{Rect{0, 0.3, 1, 0.7}.Polygon()}}, func(k int) func(int, int, float64) float64 { return square(k, 10, 6, 60) }, 0},
		{"object outside the zone", Config{Zones: []Polygon{Rect{0, 0, 1, 0.3}.Polygon()}}, func(k int) func(int, int, float64) float64 { return square(k, 10, 6, 60) }, 0},
		{"object inside the zone", Config{Zones: []Polygon{Rect{0, 0.3, 1, 0.8}.Polygon()}}, func(k int) func(int, int, float64) float64 { return square(k, 10, 6, 60) }, 1},
		{"flicker shorter than start_frames", Config{StartFrames: 3}, func(k int) func(int, int, float64) float64 {
			return func(x, y int, v float64) float64 {
				if (k == 40 || k == 41 || k == 60) && x < 10 && y < 10 {
					return v + 80
				}
				return v
			}
		}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			det, err := NewDetector(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var reports []Event
			for k := 0; k < 160; k++ {
				at := t0.Add(time.Duration(k) * 40 * time.Millisecond)
				if e, ok := det.Process(at, synthetic(w, h, uint64(k), tc.frame(k))); ok {
					reports = append(reports, e)
				}
			}
			if e, ok := det.Flush(); ok {
				reports = append(reports, e)
			}
			if len(reports) != 2*tc.events {
				t.Fatalf("%d reports %+v, want %d events", len(reports), reports, tc.events)
			}
			if tc.events == 1 {
				start, end := reports[0], reports[1]
				if start.Ended() || !end.Ended() || !end.Start.Equal(start.Start) {
					t.Fatalf("reports %+v: want a start then its end", reports)
				}
				if s := start.Start.Sub(t0); s != 40*40*time.Millisecond {
					t.Errorf("start at %v, want 1.6s (the first frame with the object)", s)
				}
				if e := end.End.Sub(t0); e != 79*40*time.Millisecond {
					t.Errorf("end at %v, want 3.16s (the last frame with the object)", e)
				}
				if end.Score <= 0 || end.Box.X1 <= end.Box.X0 {
					t.Errorf("score %v box %+v", end.Score, end.Box)
				}
			}
		})
	}
}

func TestEndsWhenFramesStop(t *testing.T) {
	det, _ := NewDetector(Config{StartFrames: 1, WarmUp: 1})
	flat := synthetic(40, 30, 1, func(_, _ int, v float64) float64 { return v })
	det.Process(t0, flat)
	det.Process(t0.Add(40*time.Millisecond), flat)
	moved := synthetic(40, 30, 1, func(x, _ int, v float64) float64 { return v + float64(x%2)*100 })
	if e, ok := det.Process(t0.Add(80*time.Millisecond), moved); !ok || e.Ended() {
		t.Fatalf("no start: %+v %v", e, ok)
	}
	if _, ok := det.Tick(t0.Add(time.Second)); ok {
		t.Fatal("ended before end_quiet")
	}
	e, ok := det.Tick(t0.Add(3 * time.Second))
	if !ok || !e.Ended() || !e.End.Equal(t0.Add(80*time.Millisecond)) {
		t.Fatalf("Tick = %+v %v: want the end at the last active frame", e, ok)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero means defaults", Config{}, true},
		{"defaults", DefaultConfig(), true},
		{"zone outside the picture", Config{Zones: []Polygon{Rect{0, 0, 1.5, 1}.Polygon()}}, false},
		{"empty zone", Config{Ignore: []Polygon{Rect{0.5, 0, 0.5, 1}.Polygon()}}, false},
		{"min_area above 1", Config{MinArea: 2}, false},
		{"negative threshold", Config{Threshold: -1}, false},
		{"learn 1", Config{Learn: 1}, false},
		{"negative end_quiet", Config{EndQuiet: -time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok %v", err, tc.ok)
			}
			if err != nil && err.Error()[:8] != "motion: " {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestLongMotionUpdatedAndCapped: motion going on for 20 s is reported
// every 3 s and cut into events of at most 8 s.
func TestLongMotionUpdatedAndCapped(t *testing.T) {
	det, err := NewDetector(Config{UpdateEvery: 3 * time.Second, MaxDuration: 8 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewGray(image.Rect(0, 0, 80, 45))
	var kinds []string
	for k := 0; k < 260; k++ {
		at := t0.Add(time.Duration(k) * 100 * time.Millisecond)
		for i := range img.Pix {
			img.Pix[i] = 100
		}
		if k >= 40 && k < 240 { // 20 s of a square wandering about
			x, y := 10+(k*7)%55, 10+(k*3)%20
			for yy := y; yy < y+8; yy++ {
				for xx := x; xx < x+8; xx++ {
					img.Pix[yy*80+xx] = 220
				}
			}
		}
		e, ok := det.Process(at, img)
		if !ok {
			continue
		}
		switch {
		case e.Update:
			kinds = append(kinds, "update")
		case e.Started():
			kinds = append(kinds, "start")
		default:
			kinds = append(kinds, fmt.Sprintf("end(%.0fs)", e.End.Sub(e.Start).Seconds()))
		}
	}
	got := strings.Join(kinds, " ")
	want := "start update update end(8s) start update update end(8s) start update end(4s)"
	if got != want {
		t.Errorf("reports:\n %s\nwant\n %s", got, want)
	}
}
