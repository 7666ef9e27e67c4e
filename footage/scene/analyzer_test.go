package scene

import (
	"image"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/footage/motion/jpegdc"
	"github.com/outpost-cctv/outpost/hal/camera/sim"
	"github.com/outpost-cctv/outpost/internal/clock"
)

func TestFrozen(t *testing.T) {
	wd := newWorld(120, 65, 1)
	night := day()
	night.gain, night.noise = 60, 0.5
	tests := []struct {
		name string
		// frame k, one a second; nil repeats the previous frame.
		frame   func(k int, rnd *rand.Rand) *image.Gray
		seconds int
		// When frozen is raised and since when; 0: never raised.
		raiseAt, since time.Duration
	}{
		{"camera repeats its last buffer", func(k int, rnd *rand.Rand) *image.Gray {
			if k > 10 {
				return nil
			}
			return wd.render(day(), t0, rnd)
		}, 60, 41 * time.Second, 11 * time.Second},
		{"camera re-encodes its last buffer, a few cells flicker", func(k int, rnd *rand.Rand) *image.Gray {
			if k <= 10 {
				return wd.render(day(), t0, rnd)
			}
			// Ten of 3600 cells one level off: well under 0.02 a cell.
			img := wd.render(day(), t0, rand.New(rand.NewPCG(99, 99)))
			for i := range 10 {
				img.Pix[rnd.IntN(len(img.Pix))] += uint8(i % 2)
			}
			return img
		}, 60, 42 * time.Second, 12 * time.Second},
		{"static scene at night, noisy sensor", func(k int, rnd *rand.Rand) *image.Gray {
			return wd.render(night, t0, rnd)
		}, 600, 0, 0},
		{"static scene by day, quiet sensor", func(k int, rnd *rand.Rand) *image.Gray {
			v := day()
			v.noise = 0.3
			return wd.render(v, t0, rnd)
		}, 600, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newObserver(t, Config{})
			rnd := rand.New(rand.NewPCG(2, 2))
			var img *image.Gray
			for k := 0; k <= tc.seconds; k++ {
				if m := tc.frame(k, rnd); m != nil {
					img = m
				}
				o.observe(t0.Add(time.Duration(k)*time.Second), img)
			}
			got := o.raised(KindFrozen)
			if tc.raiseAt == 0 {
				if len(got) != 0 {
					t.Fatalf("frozen raised: %+v", got[0])
				}
				return
			}
			if len(got) != 1 || !got[0].Active || got[0].At.Sub(t0) != tc.raiseAt {
				t.Fatalf("frozen changes %+v, want raised once at %v", got, tc.raiseAt)
			}
			if got[0].Since.Sub(t0) != tc.since || got[0].Action == "" {
				t.Fatalf("raised since %v with action %q, want since %v and an action", got[0].Since.Sub(t0), got[0].Action, tc.since)
			}
			// The picture moves again: cleared after the clear hold.
			start := tc.seconds + 1
			for k := start; k <= start+40; k++ {
				o.observe(t0.Add(time.Duration(k)*time.Second), wd.render(day(), t0, rnd))
			}
			got = o.raised(KindFrozen)
			if len(got) != 2 || got[1].Active || got[1].At.Sub(got[1].Since) != 30*time.Second {
				t.Fatalf("frozen changes %+v, want raised then cleared after 30s of moving picture", got)
			}
		})
	}
}

// TestHysteresis drives one tracker through verdicts a second apart: a
// raise needs the hold without a break, a clear the clear hold of good
// frames, and frames between the thresholds neither raise nor clear.
func TestHysteresis(t *testing.T) {
	const B, M, G, U = bad, between, good, unknown
	tests := []struct {
		name     string
		verdicts []verdict
		want     []bool // Active after each verdict
	}{
		{"raised after the hold", []verdict{B, B, B, B}, []bool{false, false, false, true}},
		{"a frame between restarts the hold", []verdict{B, B, M, B, B, B, B}, []bool{false, false, false, false, false, false, true}},
		{"an unknown frame restarts the hold", []verdict{B, B, U, B, B}, []bool{false, false, false, false, false}},
		{"between thresholds keeps it raised", []verdict{B, B, B, B, M, M, M, M, M, M}, []bool{false, false, false, true, true, true, true, true, true, true}},
		{"cleared after the clear hold of good frames", []verdict{B, B, B, B, G, G, G, G, G, G}, []bool{false, false, false, true, true, true, true, true, true, false}},
		{"a bad frame restarts the clear hold", []verdict{B, B, B, B, G, G, B, G, G, G, G, G, G}, []bool{false, false, false, true, true, true, true, true, true, true, true, true, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var k tracker
			for i, v := range tc.verdicts {
				k.update(t0.Add(time.Duration(i)*time.Second), v, 3*time.Second, 5*time.Second)
				if i < len(tc.want) && k.cond.Active != tc.want[i] {
					t.Fatalf("after verdict %d (%v): active %v, want %v", i, v, k.cond.Active, tc.want[i])
				}
			}
		})
	}
}

func TestBlank(t *testing.T) {
	wd := newWorld(120, 65, 3)
	tests := []struct {
		name  string
		view  func(v view) view
		lamp  bool // a street lamp lights 3% of the picture
		raise bool
	}{
		{"lens covered, black", func(v view) view { v.gain, v.offset, v.noise = 0, 16, 1; return v }, false, true},
		{"IR failed at night, a street lamp in view", func(v view) view { v.gain, v.offset, v.noise = 8, 16, 1.5; return v }, true, true},
		{"bag over the lens, uniform grey", func(v view) view { v.gain, v.offset, v.noise = 0, 120, 0.8; return v }, false, true},
		{"blinded by a light, white", func(v view) view { v.gain, v.offset, v.noise = 0, 250, 0.5; return v }, false, true},
		{"dim night scene lit by IR", func(v view) view { v.gain, v.offset, v.noise = 50, 16, 1.5; return v }, false, false},
		{"fog by day", func(v view) view { v.gain, v.offset, v.noise = 30, 140, 0.8; return v }, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newObserver(t, Config{})
			rnd := rand.New(rand.NewPCG(4, 4))
			k := 0
			run := func(v view, seconds int) {
				for end := k + seconds; k < end; k++ {
					img := wd.render(v, t0, rnd)
					if tc.lamp {
						for y := 5; y < 9; y++ {
							for x := 30; x < 57; x++ {
								img.Pix[y*img.Stride+x] = 230
							}
						}
					}
					o.observe(t0.Add(time.Duration(k)*time.Second), img)
				}
			}
			run(day(), 10)
			run(tc.view(day()), 60)
			got := o.raised(KindBlank)
			if !tc.raise {
				if len(got) != 0 {
					t.Fatalf("blank raised: %s", got[0].Message)
				}
				return
			}
			if len(got) != 1 || got[0].At.Sub(got[0].Since) != 20*time.Second {
				t.Fatalf("blank changes %+v, want raised after 20s", got)
			}
			if len(o.raised(KindFrozen)) != 0 {
				t.Fatal("a blank picture was also reported frozen")
			}
			tc.lamp = false
			run(day(), 40)
			if got = o.raised(KindBlank); len(got) != 2 || got[1].Active {
				t.Fatalf("blank changes %+v, want cleared once the picture is back", got)
			}
		})
	}
}

// TestDay runs a whole day, one frame every 10 s (every minute under the
// race detector): night lit by IR, dawn and
// dusk ramps, clouds passing as steps of brightness, people crossing all
// the time. Nothing may be raised.
func TestDay(t *testing.T) {
	if testing.Short() {
		t.Skip("a day of frames")
	}
	wd := newWorld(120, 65, 5)
	rnd := rand.New(rand.NewPCG(6, 6))
	o := newObserver(t, Config{})
	if _, err := o.a.Commission(t0.Add(12*time.Hour), wd.render(day(), t0, rnd)); err != nil {
		t.Fatal(err)
	}
	var people []person
	cloudUntil, cloudy := time.Time{}, false
	minScene, minFocus := 1.0, math.Inf(1)
	step := 10
	if raceEnabled {
		// The analyzer has no goroutines for the race detector to
		// watch; a coarser day keeps the run short.
		step = 60
	}
	for s := 0; s < 24*3600; s += step {
		at := t0.Add(time.Duration(s) * time.Second)
		h := float64(s) / 3600
		v := day()
		// Light: the IR illuminator by night, daylight ramping up from
		// 5:00 to 7:00 and down from 19:00 to 21:00, through a dim
		// twilight when the IR has switched off.
		sun := math.Max(0, math.Min(1, math.Min(h-5, 21-h)/2))
		switch {
		case sun == 0:
			v.gain, v.noise = 70, 1.5
		default:
			v.gain, v.noise = 30+170*sun, 1.5-0.9*sun
		}
		// Clouds by day: the brightness steps down and up.
		if sun == 1 && at.After(cloudUntil) {
			cloudy = !cloudy
			cloudUntil = at.Add(time.Duration(1+rnd.IntN(10)) * time.Minute)
		}
		if cloudy && sun == 1 {
			v.gain *= 0.55
		}
		// Someone sets off every 20 s or so, walking or cycling.
		for range rnd.IntN(2) {
			speed := 0.3 + rnd.Float64()*1.5
			x0 := -2.0
			if rnd.IntN(2) == 0 {
				x0, speed = 80, -speed
			}
			people = append(people, person{x0: x0, y: 30 + float64(rnd.IntN(14)), speed: speed, start: at})
		}
		live := people[:0]
		for _, p := range people {
			if at.Sub(p.start).Seconds()*math.Abs(p.speed) < 90 {
				live = append(live, p)
			}
		}
		people = live
		v.people = people
		o.observe(at, wd.render(v, at, rnd))
		for _, c := range o.a.Conditions() {
			switch {
			case math.IsNaN(c.Score):
			case c.Kind == KindSceneChanged:
				minScene = math.Min(minScene, c.Score)
			case c.Kind == KindOutOfFocus:
				minFocus = math.Min(minFocus, c.Score)
			}
		}
	}
	t.Logf("lowest median scene score %.3f, focus score %.3f", minScene, minFocus)
	if len(o.changes) != 0 {
		t.Fatalf("%d changes in a normal day, first: %s %s", len(o.changes), o.changes[0].Kind, o.changes[0].Message)
	}
}

func TestSceneChanged(t *testing.T) {
	wd := newWorld(120, 65, 7)
	tests := []struct {
		name  string
		moved func(v view) view
		raise bool
	}{
		{"knocked sideways by 6 cells", func(v view) view { v.dx += 6; return v }, true},
		{"knocked down by 4 cells", func(v view) view { v.dy += 4; return v }, true},
		{"turned 6 degrees", func(v view) view { v.angle = 6 * math.Pi / 180; return v }, true},
		{"swaying by a cell", func(v view) view { v.dx += 1; return v }, false},
		{"darker and dimmer, same view", func(v view) view { v.gain, v.offset = 70, 30; return v }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(8, 8))
			o := newObserver(t, Config{})
			if _, err := o.a.Commission(t0, wd.render(day(), t0, rnd)); err != nil {
				t.Fatal(err)
			}
			k := 0
			run := func(v view, seconds int) {
				for end := k + seconds; k < end; k++ {
					o.observe(t0.Add(time.Duration(k)*time.Second), wd.render(v, t0, rnd))
				}
			}
			run(day(), 120)
			run(tc.moved(day()), 7*60)
			got := o.raised(KindSceneChanged)
			if !tc.raise {
				if len(got) != 0 {
					t.Fatalf("scene_changed raised: %s", got[0].Message)
				}
				return
			}
			if len(got) != 1 || !got[0].Active || got[0].Score >= 0.5 || got[0].At.Sub(got[0].Since) != 5*time.Minute {
				t.Fatalf("scene_changed changes %+v, want raised after 5 min with a score below 0.5", got)
			}
			run(day(), 90)
			if got = o.raised(KindSceneChanged); len(got) != 2 || got[1].Active {
				t.Fatalf("scene_changed changes %+v, want cleared once the camera is re-aimed", got)
			}
			if len(o.raised(KindOutOfFocus)) != 0 {
				t.Fatal("a moved view was also reported out of focus")
			}
		})
	}
}

// focusFrames encodes noisy copies of a detailed 640×360 picture
// changed by f.
func focusFrames(t *testing.T, base *image.Gray, f func(*image.Gray) *image.Gray) [][]byte {
	t.Helper()
	m := f(base)
	rnd := rand.New(rand.NewPCG(10, 10))
	var out [][]byte
	for range 4 {
		out = append(out, encode(t, noisy(m, 2, rnd)))
	}
	return out
}

// decoded is a frame's 1/8-scale image and AC energy per block.
type decoded struct {
	luma *image.Gray
	ac   float64
}

func decodeAll(t *testing.T, frames [][]byte) []decoded {
	t.Helper()
	var out []decoded
	for _, f := range frames {
		luma, en, err := jpegdc.DecodeEnergy(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, decoded{luma, en.PerBlock()})
	}
	return out
}

func blur(r int) func(*image.Gray) *image.Gray {
	return func(m *image.Gray) *image.Gray { return boxBlur(m, r) }
}

// dim lowers the contrast of a picture to f, as dusk would.
func dim(f float64) func(*image.Gray) *image.Gray {
	return func(m *image.Gray) *image.Gray {
		out := image.NewGray(m.Rect)
		for i, p := range m.Pix {
			out.Pix[i] = uint8(16 + f*float64(int(p)-16))
		}
		return out
	}
}

func TestOutOfFocus(t *testing.T) {
	base := fullScene(640, 360, 9)
	sharp := focusFrames(t, base, func(m *image.Gray) *image.Gray { return m })
	tests := []struct {
		name   string
		frames [][]byte
		dcOnly bool // the analyzer sees the 1/8-scale image only
		raise  bool
	}{
		{"defocused, 7-pixel blur", focusFrames(t, base, blur(3)), false, true},
		{"softened, 3-pixel blur", focusFrames(t, base, blur(1)), false, true},
		{"as sharp, 75% of the contrast", focusFrames(t, base, dim(0.75)), false, false},
		{"as sharp, dusk, 40% of the contrast", focusFrames(t, base, dim(0.4)), false, false},
		{"badly defocused, 25-pixel blur, without the JPEG", focusFrames(t, base, blur(12)), true, true},
		{"defocused, 7-pixel blur, without the JPEG: not seen", focusFrames(t, base, blur(3)), true, false},
		{"as sharp, dusk, without the JPEG", focusFrames(t, base, dim(0.4)), true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A shorter hold than the default 5 min, which the
			// scene_changed tests exercise, to keep the test quick.
			o := newObserver(t, Config{FocusHold: 2 * time.Minute})
			var err error
			if tc.dcOnly {
				luma, derr := jpegdc.Decode(sharp[0])
				if derr != nil {
					t.Fatal(derr)
				}
				_, err = o.a.Commission(t0, luma)
			} else {
				_, err = o.a.CommissionJPEG(t0, sharp[0])
			}
			if err != nil {
				t.Fatal(err)
			}
			k := 0
			run := func(frames []decoded, seconds int) {
				for end := k + seconds; k < end; k++ {
					at := t0.Add(time.Duration(k) * time.Second)
					f := frames[k%len(frames)]
					ac := f.ac
					if tc.dcOnly {
						ac = -1
					}
					// What Observe and ObserveJPEG do after decoding;
					// each frame is decoded once to keep the test quick.
					if !o.a.Due(at) {
						t.Fatalf("frame at %v not due", at)
					}
					o.changes = append(o.changes, o.a.observe(at, f.luma, ac)...)
				}
			}
			run(decodeAll(t, sharp), 60)
			run(decodeAll(t, tc.frames), 3*60)
			c := o.a.Conditions()[iFocus]
			t.Logf("sharpness against the reference: %.2f", c.Score)
			got := o.raised(KindOutOfFocus)
			if len(o.raised(KindSceneChanged)) != 0 || len(o.raised(KindFrozen)) != 0 {
				t.Fatalf("other conditions raised: %+v", o.changes)
			}
			if !tc.raise {
				if len(got) != 0 {
					t.Fatalf("out_of_focus raised: %s", got[0].Message)
				}
				return
			}
			if len(got) != 1 || !got[0].Active || got[0].At.Sub(got[0].Since) != 2*time.Minute {
				t.Fatalf("out_of_focus changes %+v, want raised after 5 min", got)
			}
			t.Log(got[0].Message)
			run(decodeAll(t, sharp), 90)
			if got = o.raised(KindOutOfFocus); len(got) != 2 || got[1].Active {
				t.Fatalf("out_of_focus changes %+v, want cleared once refocused", got)
			}
		})
	}
}

// TestSimCamera watches the simulated camera's street, a van crossing it
// every 30 s, for ten minutes: nothing is raised; then the camera repeats
// one frame and frozen is.
func TestSimCamera(t *testing.T) {
	clk := clock.NewFake(t0)
	cam, err := sim.New(sim.Config{Width: 640, Height: 360, FPS: 25, MotionEvery: 30 * time.Second, MotionDuration: 4 * time.Second, Quality: 75}, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	o := newObserver(t, Config{})
	f, err := cam.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.a.CommissionJPEG(f.Time, f.Data); err != nil {
		t.Fatal(err)
	}
	for range 600 {
		clk.Advance(time.Second)
		if f, err = cam.Next(t.Context()); err != nil {
			t.Fatal(err)
		}
		ch, err := o.a.ObserveJPEG(f.Time, f.Data)
		if err != nil {
			t.Fatal(err)
		}
		o.changes = append(o.changes, ch...)
	}
	if len(o.changes) != 0 {
		t.Fatalf("raised on the simulated street: %+v", o.changes[0])
	}
	for _, c := range o.a.Conditions() {
		t.Logf("%s: score %.3f", c.Kind, c.Score)
	}
	for k := range 40 {
		ch, err := o.a.ObserveJPEG(f.Time.Add(time.Duration(k+1)*time.Second), f.Data)
		if err != nil {
			t.Fatal(err)
		}
		o.changes = append(o.changes, ch...)
	}
	if !o.active(KindFrozen) {
		t.Fatal("a repeated frame was not reported frozen")
	}
}

func TestDueAndClockSteps(t *testing.T) {
	a, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewGray(image.Rect(0, 0, 10, 10))
	if !a.Due(t0) {
		t.Fatal("first frame not due")
	}
	a.Observe(t0, img)
	if a.Due(t0.Add(500*time.Millisecond)) || !a.Due(t0.Add(time.Second)) {
		t.Fatal("frames must be analysed once a second")
	}
	if !a.Due(t0.Add(-time.Hour)) {
		t.Fatal("a frame from before the last one (clock stepped back) must be analysed")
	}
	// A blank picture held across a step back of the clock starts its
	// hold again rather than raising at once or never.
	for k := range 10 {
		a.Observe(t0.Add(time.Duration(k)*time.Second), img)
	}
	for k := range 25 {
		if ch := a.Observe(t0.Add(time.Duration(k-3600)*time.Second), img); len(ch) != 0 && k < 20 {
			t.Fatalf("raised %d s after the clock stepped back", k)
		}
	}
	if c := a.Conditions()[iBlank]; !c.Active {
		t.Fatal("blank not raised after the clock stepped back")
	}
}

func TestResolutionChange(t *testing.T) {
	wd := newWorld(120, 65, 11)
	rnd := rand.New(rand.NewPCG(12, 12))
	o := newObserver(t, Config{})
	if _, err := o.a.Commission(t0, wd.render(day(), t0, rnd)); err != nil {
		t.Fatal(err)
	}
	v := day()
	v.w, v.h = 60, 40
	for k := range 600 {
		o.observe(t0.Add(time.Duration(k)*time.Second), wd.render(v, t0, rnd))
	}
	if len(o.changes) != 0 {
		t.Fatalf("raised after a change of resolution: %+v", o.changes[0])
	}
	if c := o.a.Conditions()[iScene]; !math.IsNaN(c.Score) {
		t.Fatalf("scene scored %v against a reference of another size", c.Score)
	}
}
