package mask

import (
	"errors"
	"fmt"
	"image"
	"math"
)

// MaxSide is the largest frame width or height accepted, so a damaged
// header cannot make a Masker allocate without bound. It is above 4K UHD.
const MaxSide = 8192

// Rect is a rectangle of pixels: columns X to X+W-1, rows Y to Y+H-1.
type Rect struct {
	X, Y, W, H int
}

// Mask is a privacy mask: rectangles and polygons in the pixels of a frame
// of a reference size. A Mask is immutable and safe for concurrent use;
// mask frames with a Masker.
//
// Frames of another size than the reference size get the mask scaled to
// their size (each axis on its own), so that a change of camera
// resolution never uncovers what the mask hides.
type Mask struct {
	width, height int
	rects         []Rect
	polys         [][]image.Point
}

// New returns the mask of rects and polygons given in the pixels of a
// width×height frame. A polygon has at least 3 vertices, in order, and
// covers its interior (even-odd rule); parts of rects and polygons outside
// the frame are ignored. A mask with no rects and no polygons is valid and
// masks nothing.
func New(width, height int, rects []Rect, polygons [][]image.Point) (*Mask, error) {
	if width <= 0 || height <= 0 || width > MaxSide || height > MaxSide {
		return nil, fmt.Errorf("mask: frame size %dx%d: width and height must be 1 to %d", width, height, MaxSide)
	}
	m := &Mask{width: width, height: height}
	for i, r := range rects {
		if r.W <= 0 || r.H <= 0 {
			return nil, fmt.Errorf("mask: rectangle %d (%+v): width and height must be positive", i, r)
		}
		if r.X >= width || r.Y >= height || r.X+r.W <= 0 || r.Y+r.H <= 0 {
			return nil, fmt.Errorf("mask: rectangle %d (%+v) lies outside the %dx%d frame: fix its position", i, r, width, height)
		}
		m.rects = append(m.rects, r)
	}
	for i, p := range polygons {
		if len(p) < 3 {
			return nil, fmt.Errorf("mask: polygon %d has %d vertices: a polygon needs at least 3", i, len(p))
		}
		b := image.Rectangle{Min: p[0], Max: p[0]}
		for _, v := range p[1:] {
			b.Min.X, b.Min.Y = min(b.Min.X, v.X), min(b.Min.Y, v.Y)
			b.Max.X, b.Max.Y = max(b.Max.X, v.X), max(b.Max.Y, v.Y)
		}
		if b.Dx() == 0 || b.Dy() == 0 {
			return nil, fmt.Errorf("mask: polygon %d has no area (its vertices are on one line): fix its vertices", i)
		}
		if !b.Overlaps(image.Rect(0, 0, width, height)) {
			return nil, fmt.Errorf("mask: polygon %d lies outside the %dx%d frame: fix its vertices", i, width, height)
		}
		m.polys = append(m.polys, append([]image.Point(nil), p...))
	}
	return m, nil
}

// Empty reports whether the mask masks nothing.
func (m *Mask) Empty() bool { return len(m.rects) == 0 && len(m.polys) == 0 }

// Geometry is the size of a frame and of its MCU (minimum coded unit:
// the group of blocks the mask is snapped to).
type Geometry struct {
	Width, Height       int // frame, in pixels
	MCUWidth, MCUHeight int // 8, 16 or 32 × 8, 16 or 32 pixels
}

func (g Geometry) mcus() (int, int) {
	return (g.Width + g.MCUWidth - 1) / g.MCUWidth, (g.Height + g.MCUHeight - 1) / g.MCUHeight
}

// Snapped returns the area the mask blanks in a frame of geometry g: the
// MCUs the mask touches, as rectangles of pixels clipped to the frame,
// merged into as few rectangles as rows of equal runs allow. It is what a
// record of the masking (an evidence manifest) should state.
func (m *Mask) Snapped(g Geometry) []Rect {
	if g.Width <= 0 || g.Height <= 0 || g.MCUWidth <= 0 || g.MCUHeight <= 0 {
		return nil
	}
	cells := m.cells(g, nil)
	nx, ny := g.mcus()
	var out []Rect
	// open maps a run (x0, x1) of the previous row to its index in out,
	// so equal runs of consecutive rows merge into one rectangle.
	type run struct{ x0, x1 int }
	open := map[run]int{}
	for y := range ny {
		next := map[run]int{}
		for x := 0; x < nx; {
			if !cells[y*nx+x] {
				x++
				continue
			}
			x0 := x
			for x < nx && cells[y*nx+x] {
				x++
			}
			r := run{x0, x}
			py := y * g.MCUHeight
			ph := min(g.MCUHeight, g.Height-py)
			if i, ok := open[r]; ok {
				out[i].H += ph
				next[r] = i
				continue
			}
			px := x0 * g.MCUWidth
			out = append(out, Rect{X: px, Y: py, W: min(x*g.MCUWidth, g.Width) - px, H: ph})
			next[r] = len(out) - 1
		}
		open = next
	}
	return out
}

// cells returns, for each MCU of a frame of geometry g in raster order,
// whether the mask touches it, reusing buf.
func (m *Mask) cells(g Geometry, buf []bool) []bool {
	nx, ny := g.mcus()
	if cap(buf) < nx*ny {
		buf = make([]bool, nx*ny)
	}
	buf = buf[:nx*ny]
	clear(buf)
	sx := float64(g.Width) / float64(m.width)
	sy := float64(g.Height) / float64(m.height)
	mw, mh := float64(g.MCUWidth), float64(g.MCUHeight)
	for _, r := range m.rects {
		// Scale, then snap outward to whole MCUs, then clip.
		x0 := max(0, int(math.Floor(float64(r.X)*sx/mw)))
		y0 := max(0, int(math.Floor(float64(r.Y)*sy/mh)))
		x1 := min(nx, int(math.Ceil(float64(r.X+r.W)*sx/mw)))
		y1 := min(ny, int(math.Ceil(float64(r.Y+r.H)*sy/mh)))
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				buf[y*nx+x] = true
			}
		}
	}
	var pts []vec
	for _, p := range m.polys {
		pts = pts[:0]
		minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
		for _, v := range p {
			q := vec{float64(v.X) * sx / mw, float64(v.Y) * sy / mh} // in MCUs
			pts = append(pts, q)
			minX, minY = math.Min(minX, q.x), math.Min(minY, q.y)
			maxX, maxY = math.Max(maxX, q.x), math.Max(maxY, q.y)
		}
		x0, y0 := max(0, int(math.Floor(minX))), max(0, int(math.Floor(minY)))
		x1, y1 := min(nx, int(math.Ceil(maxX))), min(ny, int(math.Ceil(maxY)))
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				if !buf[y*nx+x] && polyTouchesCell(pts, float64(x), float64(y)) {
					buf[y*nx+x] = true
				}
			}
		}
	}
	return buf
}

type vec struct{ x, y float64 }

// cellEps shrinks a cell before testing it against a polygon, so that a
// polygon edge lying exactly on a cell's border does not mask the cell on
// the other side (outward snapping means "cells the polygon's interior
// overlaps").
const cellEps = 1e-9

// polyTouchesCell reports whether polygon p (in MCU units) overlaps the
// unit cell with top-left corner (cx, cy): either an edge of p crosses the
// cell, or the cell lies inside p.
func polyTouchesCell(p []vec, cx, cy float64) bool {
	x0, y0, x1, y1 := cx+cellEps, cy+cellEps, cx+1-cellEps, cy+1-cellEps
	for i := range p {
		a, b := p[i], p[(i+1)%len(p)]
		if segmentHitsBox(a, b, x0, y0, x1, y1) {
			return true
		}
	}
	return inside(p, cx+0.5, cy+0.5)
}

// segmentHitsBox clips segment ab to the box (Liang–Barsky) and reports
// whether any of it remains.
func segmentHitsBox(a, b vec, x0, y0, x1, y1 float64) bool {
	t0, t1 := 0.0, 1.0
	dx, dy := b.x-a.x, b.y-a.y
	clip := func(p, q float64) bool {
		if p == 0 {
			return q >= 0
		}
		t := q / p
		if p < 0 {
			if t > t1 {
				return false
			}
			t0 = math.Max(t0, t)
		} else {
			if t < t0 {
				return false
			}
			t1 = math.Min(t1, t)
		}
		return true
	}
	return clip(-dx, a.x-x0) && clip(dx, x1-a.x) && clip(-dy, a.y-y0) && clip(dy, y1-a.y) && t0 <= t1
}

// inside reports whether point (x, y) is inside polygon p (even-odd rule).
func inside(p []vec, x, y float64) bool {
	in := false
	for i, j := 0, len(p)-1; i < len(p); j, i = i, i+1 {
		a, b := p[i], p[j]
		if (a.y > y) != (b.y > y) && x < (b.x-a.x)*(y-a.y)/(b.y-a.y)+a.x {
			in = !in
		}
	}
	return in
}

var errNoFrame = errors.New("mask: no frame header (SOF) before the first scan: the image is damaged")
