package scene

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// t0 is the start of every test's timeline.
var t0 = time.Date(2026, 6, 21, 0, 0, 0, 0, time.UTC)

// world is a street's reflectance (0-1) on a grid larger than the view, so
// that the view can be shifted or turned within it.
type world struct {
	w, h int
	r    []float64

	// The last view's reflectances, kept while its geometry stays.
	cacheKey [5]float64
	cache    []float64
}

// newWorld draws buildings, windows, a kerb and a road on a w×h grid of
// cells. Everything is at least a couple of cells wide, as at 1/8 scale.
func newWorld(w, h int, seed uint64) *world {
	rnd := rand.New(rand.NewPCG(seed, 7))
	wd := &world{w: w, h: h, r: make([]float64, w*h)}
	fill := func(x0, y0, x1, y1 int, v float64) {
		for y := max(y0, 0); y < min(y1, h); y++ {
			for x := max(x0, 0); x < min(x1, w); x++ {
				wd.r[y*w+x] = v
			}
		}
	}
	fill(0, 0, w, h*2/5, 0.75)      // sky
	fill(0, h*3/5, w, h, 0.35)      // road
	fill(0, h*3/5, w, h*3/5+2, 0.9) // kerb
	for x := 0; x < w; {
		bw := 8 + rnd.IntN(14)
		top := h/8 + rnd.IntN(h/4)
		fill(x, top, x+bw, h*3/5, 0.2+0.5*rnd.Float64())
		for wy := top + 3; wy+3 < h*3/5; wy += 6 {
			for wx := x + 2; wx+2 < x+bw; wx += 5 {
				fill(wx, wy, wx+2, wy+3, 0.05+0.9*rnd.Float64())
			}
		}
		x += bw
	}
	for x := 3; x < w; x += 17 { // road markings
		fill(x, h*4/5, x+6, h*4/5+1, 0.95)
	}
	return wd
}

// at samples the world at (x, y) in cells, bilinearly.
func (wd *world) at(x, y float64) float64 {
	x, y = math.Max(0, math.Min(x, float64(wd.w-1))), math.Max(0, math.Min(y, float64(wd.h-1)))
	x0, y0 := int(x), int(y)
	x1, y1 := min(x0+1, wd.w-1), min(y0+1, wd.h-1)
	fx, fy := x-float64(x0), y-float64(y0)
	a := wd.r[y0*wd.w+x0]*(1-fx) + wd.r[y0*wd.w+x1]*fx
	b := wd.r[y1*wd.w+x0]*(1-fx) + wd.r[y1*wd.w+x1]*fx
	return a*(1-fy) + b*fy
}

// view says how a camera looks at a world and in what light.
type view struct {
	w, h   int     // cells
	dx, dy float64 // offset of the view in the world, cells
	angle  float64 // rotation about the view's centre, radians
	gain   float64 // grey levels for reflectance 1
	offset float64 // black level
	noise  float64 // σ of a cell's noise, grey levels
	people []person
}

// person is a dark upright figure, 2×5 cells, crossing at a given speed.
type person struct {
	x0, y, speed float64 // cells, cells/second
	start        time.Time
}

// render draws v at time t as a 1/8-scale image; noise comes from rnd.
func (wd *world) render(v view, t time.Time, rnd *rand.Rand) *image.Gray {
	key := [5]float64{float64(v.w), float64(v.h), v.dx, v.dy, v.angle}
	if wd.cache == nil || key != wd.cacheKey {
		wd.cacheKey, wd.cache = key, make([]float64, v.w*v.h)
		cx, cy := float64(v.w)/2, float64(v.h)/2
		sin, cos := math.Sincos(v.angle)
		for y := 0; y < v.h; y++ {
			for x := 0; x < v.w; x++ {
				px, py := float64(x)-cx, float64(y)-cy
				wd.cache[y*v.w+x] = wd.at(cx+v.dx+px*cos-py*sin, cy+v.dy+px*sin+py*cos)
			}
		}
	}
	m := image.NewGray(image.Rect(0, 0, v.w, v.h))
	for i, r := range wd.cache {
		val := v.offset + v.gain*r + rnd.NormFloat64()*v.noise
		m.Pix[i] = uint8(math.Max(0, math.Min(255, math.Round(val))))
	}
	for _, p := range v.people {
		s := t.Sub(p.start).Seconds()
		if s < 0 {
			continue
		}
		x0 := int(math.Floor(p.x0 + p.speed*s))
		for y := max(int(p.y)-5, 0); y < min(int(p.y), v.h); y++ {
			for x := max(x0, 0); x < min(x0+2, v.w); x++ {
				val := v.offset + v.gain*0.1 + rnd.NormFloat64()*v.noise
				m.Pix[y*v.w+x] = uint8(math.Max(0, math.Min(255, math.Round(val))))
			}
		}
	}
	return m
}

// day is a day view of an 80×45-cell camera (640×360 pixels).
func day() view {
	return view{w: 80, h: 45, dx: 20, dy: 10, gain: 200, offset: 16, noise: 0.6}
}

// observer feeds frames to an analyzer and keeps what it raised.
type observer struct {
	t       *testing.T
	a       *Analyzer
	changes []Change
}

func newObserver(t *testing.T, cfg Config) *observer {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &observer{t: t, a: a}
}

func (o *observer) observe(at time.Time, img *image.Gray) {
	ch := o.a.Observe(at, img)
	for _, c := range ch {
		o.t.Logf("%s: %s %v score %.3f: %s", at.Sub(t0), c.Kind, c.Active, c.Score, c.Message)
	}
	o.changes = append(o.changes, ch...)
}

func (o *observer) active(kind string) bool {
	for _, c := range o.a.Conditions() {
		if c.Kind == kind {
			return c.Active
		}
	}
	o.t.Fatalf("no condition %q", kind)
	return false
}

// raised returns the changes of kind, in order.
func (o *observer) raised(kind string) []Change {
	var out []Change
	for _, c := range o.changes {
		if c.Kind == kind {
			out = append(out, c)
		}
	}
	return out
}

// fullScene renders a detailed w×h picture (fine texture, edges, text-like
// marks) for the focus tests, which need the JPEG's AC coefficients.
func fullScene(w, h int, seed uint64) *image.Gray {
	wd := newWorld(w/8+40, h/8+20, seed)
	rnd := rand.New(rand.NewPCG(seed, 3))
	m := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r := wd.at(float64(x)/8+20, float64(y)/8+10)
			// Brick and paving texture, and small marks.
			if (x/3+y/2)%5 == 0 {
				r *= 0.8
			}
			if (x*7+y*13)%41 < 3 {
				r = 1 - r
			}
			m.Pix[y*w+x] = uint8(math.Max(0, math.Min(255, 16+200*r+rnd.NormFloat64()*2)))
		}
	}
	return m
}

// boxBlur blurs m with a (2r+1)² box, as a lens out of focus, the edges
// repeated outwards; from a summed-area table, so any r costs the same.
func boxBlur(m *image.Gray, r int) *image.Gray {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	// sat[(y)*(w+1)+x] is the sum of the pixels above and left of x, y.
	sat := make([]int, (w+1)*(h+1))
	for y := 0; y < h; y++ {
		row := 0
		for x := 0; x < w; x++ {
			row += int(m.Pix[y*m.Stride+x])
			sat[(y+1)*(w+1)+x+1] = sat[y*(w+1)+x+1] + row
		}
	}
	sum := func(x0, y0, x1, y1 int) int { // [x0,x1) × [y0,y1)
		return sat[y1*(w+1)+x1] - sat[y0*(w+1)+x1] - sat[y1*(w+1)+x0] + sat[y0*(w+1)+x0]
	}
	out := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			x0, x1 := max(x-r, 0), min(x+r+1, w)
			y0, y1 := max(y-r, 0), min(y+r+1, h)
			out.Pix[y*w+x] = uint8(sum(x0, y0, x1, y1) / ((x1 - x0) * (y1 - y0)))
		}
	}
	return out
}

// noisy returns a copy of m with Gaussian noise of σ grey levels.
func noisy(m *image.Gray, sigma float64, rnd *rand.Rand) *image.Gray {
	out := image.NewGray(m.Rect)
	for i, p := range m.Pix {
		out.Pix[i] = uint8(math.Max(0, math.Min(255, float64(p)+rnd.NormFloat64()*sigma)))
	}
	return out
}

func encode(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 75}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
