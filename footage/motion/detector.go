// Package motion detects motion in a camera's MJPEG frames in the
// compressed domain: each frame is reduced to the mean of its 8×8 luma
// blocks by the DC-only decoder in jpegdc (no inverse DCT, no colour
// conversion), and a background model on that 1/8-scale image decides
// which cells changed. Motion is what the unit records in `events` mode
// and what the control room is told about; identifying what moved is out
// of scope.
//
// The detector keeps, per cell, a running mean and variance of the
// background. A cell has changed when it differs from its mean by more
// than Threshold standard deviations and by at least MinDiff grey levels,
// after the frame's global brightness shift (a cloud, dusk, the IR
// illuminator switching on) has been taken out. A frame is active when
// the changed cells cover at least MinArea of the cells watched (inside a
// zone and outside every ignore zone). An event starts after StartFrames
// consecutive active frames and ends once no frame has been active for
// EndQuiet.
//
// Detector is the synchronous core; Sink wraps it as a frame sink of the
// capture component with its own goroutine.
package motion

import (
	"fmt"
	"image"
	"time"
)

// Rect is a rectangle in normalised picture coordinates: 0,0 is the top
// left corner and 1,1 the bottom right, whatever the resolution.
type Rect struct {
	X0 float64 `yaml:"x0"`
	Y0 float64 `yaml:"y0"`
	X1 float64 `yaml:"x1"`
	Y1 float64 `yaml:"y1"`
}

// Polygon returns the rectangle as a polygon, for a zone.
func (r Rect) Polygon() Polygon {
	return Polygon{{r.X0, r.Y0}, {r.X1, r.Y0}, {r.X1, r.Y1}, {r.X0, r.Y1}}
}

// Point is a point in normalised picture coordinates: {x, y}.
type Point [2]float64

// Polygon is an area of the picture (a detection or ignore zone): its
// corners in order, at least three, in normalised coordinates. It may be
// concave; its edges should not cross.
type Polygon []Point

// Contains reports whether x, y is inside p (even-odd rule).
func (p Polygon) Contains(x, y float64) bool {
	in := false
	for i, j := 0, len(p)-1; i < len(p); j, i = i, i+1 {
		xi, yi, xj, yj := p[i][0], p[i][1], p[j][0], p[j][1]
		if (yi > y) != (yj > y) && x < (xj-xi)*(y-yi)/(yj-yi)+xi {
			in = !in
		}
	}
	return in
}

func (p Polygon) validate() error {
	if len(p) < 3 {
		return fmt.Errorf("%v: a zone needs at least three corners", p)
	}
	for _, pt := range p {
		if pt[0] < 0 || pt[0] > 1 || pt[1] < 0 || pt[1] > 1 {
			return fmt.Errorf("corner %v: coordinates must be fractions of the picture, 0-1 (0,0 top left, 1,1 bottom right)", pt)
		}
	}
	area := 0.0
	for i, j := 0, len(p)-1; i < len(p); j, i = i, i+1 {
		area += p[j][0]*p[i][1] - p[i][0]*p[j][1]
	}
	if area == 0 {
		return fmt.Errorf("%v: the zone has no area", p)
	}
	return nil
}

// Config tunes the detector. The zero value of a field means its default
// (see DefaultConfig).
type Config struct {
	// Zones are where motion counts; none means the whole picture.
	Zones []Polygon `yaml:"zones"`
	// Ignore are areas never watched (a road, a tree, a private garden),
	// overriding Zones.
	Ignore []Polygon `yaml:"ignore"`
	// Threshold is how many standard deviations of a cell's own noise a
	// change must exceed. Default 4.
	Threshold float64 `yaml:"threshold"`
	// MinDiff is the smallest change, in grey levels of the block mean,
	// that can count whatever the cell's noise. Default 12.
	MinDiff float64 `yaml:"min_diff"`
	// MinArea is the fraction (0-1) of watched cells that must change for
	// a frame to be active. Default 0.004 (about 130 cells of a 1080p
	// frame, a person at 20 m).
	MinArea float64 `yaml:"min_area"`
	// StartFrames is how many consecutive active frames start an event.
	// Default 3.
	StartFrames int `yaml:"start_frames"`
	// EndQuiet is how long without an active frame ends an event.
	// Default 2 s.
	EndQuiet time.Duration `yaml:"end_quiet"`
	// Learn is the background's learning rate per analysed frame (0-1)
	// in cells that have not changed. Default 0.05.
	Learn float64 `yaml:"learn"`
	// Absorb is how many consecutive analysed frames a cell may stay
	// changed before what is there becomes background (something that
	// stopped: a parked van, a skip). Default 750 (30 s at 25 fps).
	Absorb int `yaml:"absorb"`
	// WarmUp is how many frames build the background before detection
	// starts. Default 10.
	WarmUp int `yaml:"warm_up"`
	// Every analyses one frame in Every (1 = all). Default 1. Used by Sink.
	Every int `yaml:"every"`
	// UpdateEvery is how often an event going on is reported again (an
	// update, with its score and box so far). Default 30 s; negative: never.
	UpdateEvery time.Duration `yaml:"update_every"`
	// MaxDuration caps an event: motion going on longer is reported as an
	// event ending there and a new one starting (a market stall, a crowd).
	// Default 5 min; negative: no cap.
	MaxDuration time.Duration `yaml:"max_duration"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Threshold: 4, MinDiff: 12, MinArea: 0.004, StartFrames: 3, EndQuiet: 2 * time.Second, Learn: 0.05, WarmUp: 10, Every: 1, Absorb: 750,
		UpdateEvery: 30 * time.Second, MaxDuration: 5 * time.Minute}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.UpdateEvery == 0 {
		c.UpdateEvery = d.UpdateEvery
	}
	if c.MaxDuration == 0 {
		c.MaxDuration = d.MaxDuration
	}
	if c.Threshold == 0 {
		c.Threshold = d.Threshold
	}
	if c.MinDiff == 0 {
		c.MinDiff = d.MinDiff
	}
	if c.MinArea == 0 {
		c.MinArea = d.MinArea
	}
	if c.StartFrames == 0 {
		c.StartFrames = d.StartFrames
	}
	if c.EndQuiet == 0 {
		c.EndQuiet = d.EndQuiet
	}
	if c.Learn == 0 {
		c.Learn = d.Learn
	}
	if c.Absorb == 0 {
		c.Absorb = d.Absorb
	}
	if c.WarmUp == 0 {
		c.WarmUp = d.WarmUp
	}
	if c.Every == 0 {
		c.Every = d.Every
	}
	return c
}

// Validate checks c (zero fields standing for their defaults).
func (c Config) Validate() error {
	for i, z := range c.Zones {
		if err := z.validate(); err != nil {
			return fmt.Errorf("motion: zones[%d]: %w", i, err)
		}
	}
	for i, z := range c.Ignore {
		if err := z.validate(); err != nil {
			return fmt.Errorf("motion: ignore[%d]: %w", i, err)
		}
	}
	switch {
	case c.Threshold < 0:
		return fmt.Errorf("motion: threshold %v: must be positive (standard deviations), e.g. 4", c.Threshold)
	case c.MinDiff < 0 || c.MinDiff > 255:
		return fmt.Errorf("motion: min_diff %v: must be 0-255 grey levels, e.g. 12", c.MinDiff)
	case c.MinArea < 0 || c.MinArea > 1:
		return fmt.Errorf("motion: min_area %v: must be a fraction 0-1 of the watched area, e.g. 0.004", c.MinArea)
	case c.StartFrames < 0 || c.StartFrames > 1000:
		return fmt.Errorf("motion: start_frames %d: must be 1-1000", c.StartFrames)
	case c.EndQuiet < 0:
		return fmt.Errorf("motion: end_quiet %v: must be positive, e.g. 2s", c.EndQuiet)
	case c.Learn < 0 || c.Learn >= 1:
		return fmt.Errorf("motion: learn %v: must be a rate between 0 and 1, e.g. 0.05", c.Learn)
	case c.Absorb < 0 || c.Absorb > 60000:
		return fmt.Errorf("motion: absorb %d: must be 1-60000 frames", c.Absorb)
	case c.WarmUp < 0:
		return fmt.Errorf("motion: warm_up %d: must not be negative", c.WarmUp)
	case c.Every < 0:
		return fmt.Errorf("motion: every %d: must be 1 (every frame) or more", c.Every)
	}
	return nil
}

// Event is a period of motion. The detector reports it when it starts (End
// zero), every UpdateEvery while it goes on (Update true), and when it
// ends.
type Event struct {
	// Start is the capture time of the first active frame; End that of
	// the last one, zero while the event goes on.
	Start, End time.Time
	// Update marks a report of an event going on.
	Update bool
	// Score is the largest fraction of watched cells changed in one frame
	// so far (0-1).
	Score float64
	// Box is the bounding box of the changed cells in the frame with the
	// highest score, in normalised coordinates.
	Box Rect
	// Peak is the 1/8-scale luma image of the frame with the highest
	// score, owned by the receiver: the picture for a thumbnail (see
	// Thumbnail).
	Peak *image.Gray
}

// Ended reports whether e is the end of the event.
func (e Event) Ended() bool { return !e.End.IsZero() }

// Started reports whether e is the start of the event.
func (e Event) Started() bool { return e.End.IsZero() && !e.Update }

// Detector finds motion in a sequence of 1/8-scale luma images. It is not
// safe for concurrent use. In steady state Process allocates nothing.
type Detector struct {
	cfg Config

	w, h    int
	mask    []bool
	watched int
	mean    []float32
	vari    []float32
	held    []uint16 // consecutive frames a cell has been changed
	hist    [511]int32
	absorb  int
	frames  int

	peak       *image.Gray // copy of the highest-scoring frame so far
	run        int         // consecutive active frames
	runStart   time.Time
	inEvent    bool
	lastReport time.Time
	ev         Event
	lastActive time.Time
}

// NewDetector returns a detector configured by cfg.
func NewDetector(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Detector{cfg: cfg, absorb: min(int(cfg.Absorb), 60000)}, nil
}

func (d *Detector) resize(w, h int) {
	d.w, d.h = w, h
	d.mask = make([]bool, w*h)
	d.mean = make([]float32, w*h)
	d.vari = make([]float32, w*h)
	d.held = make([]uint16, w*h)
	d.watched, d.frames = 0, 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			cx, cy := (float64(x)+0.5)/float64(w), (float64(y)+0.5)/float64(h)
			in := len(d.cfg.Zones) == 0
			for _, z := range d.cfg.Zones {
				in = in || z.Contains(cx, cy)
			}
			for _, z := range d.cfg.Ignore {
				in = in && !z.Contains(cx, cy)
			}
			d.mask[y*w+x] = in
			if in {
				d.watched++
			}
		}
	}
}

// initialVariance is the noise assumed of a cell before it is learnt:
// a standard deviation of 3 grey levels.
const initialVariance = 9

// Process analyses img, captured at t, and returns an event and true when
// an event starts or ends with this frame. Images of a new size restart
// the background model.
func (d *Detector) Process(t time.Time, img *image.Gray) (Event, bool) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	if w != d.w || h != d.h {
		d.resize(w, h)
	}
	d.frames++
	if d.frames == 1 {
		for y := 0; y < h; y++ {
			row := rowOf(img, y, w)
			for x, p := range row {
				d.mean[y*w+x] = float32(p)
				d.vari[y*w+x] = initialVariance
			}
		}
		return d.quiet(t)
	}
	// The global brightness shift (a cloud, the IR illuminator): the
	// median difference over the watched cells, which motion covering
	// less than half of the picture does not move.
	d.hist = [511]int32{}
	for y := 0; y < h; y++ {
		row := rowOf(img, y, w)
		for x, p := range row {
			if d.mask[y*w+x] {
				diff := int(p) - int(d.mean[y*w+x]+0.5) + 255
				d.hist[max(0, min(510, diff))]++
			}
		}
	}
	shift := float32(0)
	for i, n := 0, int32(0); i < len(d.hist); i++ {
		n += d.hist[i]
		if 2*int(n) >= d.watched {
			shift = float32(i - 255)
			break
		}
	}
	k2 := float32(d.cfg.Threshold * d.cfg.Threshold)
	minDiff2 := float32(d.cfg.MinDiff * d.cfg.MinDiff)
	learn := float32(d.cfg.Learn)
	changed := 0
	x0, y0, x1, y1 := w, h, -1, -1
	for y := 0; y < h; y++ {
		row := rowOf(img, y, w)
		for x, p := range row {
			i := y*w + x
			m := d.mean[i] + shift
			diff := float32(p) - m
			d2 := diff * diff
			if d.mask[i] && d2 > minDiff2 && d2 > k2*d.vari[i] {
				changed++
				x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
				// A changed cell does not teach the background, so a
				// passing object leaves no trace; one that stays
				// (a parked van) joins it after absorbFrames.
				d.held[i]++
				if int(d.held[i]) < d.absorb {
					d.mean[i] = m
					continue
				}
				d.mean[i], d.held[i] = float32(p), 0
				continue
			}
			d.held[i] = 0
			d.vari[i] += learn * (d2 - d.vari[i])
			d.mean[i] = m + learn*diff
		}
	}
	if d.frames <= d.cfg.WarmUp || d.watched == 0 {
		return d.quiet(t)
	}
	score := float64(changed) / float64(d.watched)
	if score < d.cfg.MinArea {
		return d.quiet(t)
	}
	box := Rect{float64(x0) / float64(w), float64(y0) / float64(h), float64(x1+1) / float64(w), float64(y1+1) / float64(h)}
	return d.active(t, score, box, img)
}

func (d *Detector) active(t time.Time, score float64, box Rect, img *image.Gray) (Event, bool) {
	if d.run == 0 {
		d.runStart = t
	}
	d.run++
	d.lastActive = t
	if score > d.ev.Score || (!d.inEvent && d.run == 1) {
		d.ev.Score, d.ev.Box = score, box
		d.keepPeak(img)
	}
	if d.inEvent {
		switch {
		case d.cfg.MaxDuration > 0 && t.Sub(d.ev.Start) >= d.cfg.MaxDuration:
			// The cap: this event ends here, and the next active frame
			// starts the next one at once.
			e := d.report()
			e.End = t
			d.inEvent, d.ev = false, Event{}
			d.run, d.runStart = d.cfg.StartFrames-1, t
			return e, true
		case d.cfg.UpdateEvery > 0 && t.Sub(d.lastReport) >= d.cfg.UpdateEvery:
			d.lastReport = t
			e := d.report()
			e.Update = true
			return e, true
		}
		return Event{}, false
	}
	if d.run < d.cfg.StartFrames {
		return Event{}, false
	}
	d.inEvent = true
	d.ev.Start, d.lastReport = d.runStart, t
	return d.report(), true
}

// keepPeak copies img into the detector's peak buffer.
func (d *Detector) keepPeak(img *image.Gray) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	if d.peak == nil || d.peak.Rect.Dx() != w || d.peak.Rect.Dy() != h {
		d.peak = image.NewGray(image.Rect(0, 0, w, h))
	}
	for y := 0; y < h; y++ {
		copy(d.peak.Pix[y*d.peak.Stride:y*d.peak.Stride+w], rowOf(img, y, w))
	}
}

// report returns the current event with its own copy of the peak image.
func (d *Detector) report() Event {
	e := d.ev
	if d.peak != nil {
		p := *d.peak
		p.Pix = append([]byte(nil), d.peak.Pix...)
		e.Peak = &p
	}
	return e
}

func (d *Detector) quiet(t time.Time) (Event, bool) {
	d.run = 0
	if !d.inEvent {
		d.ev = Event{}
		return Event{}, false
	}
	return d.Tick(t)
}

// Tick ends the current event if nothing has moved for EndQuiet before
// now; it lets an event end when frames stop arriving.
func (d *Detector) Tick(now time.Time) (Event, bool) {
	if !d.inEvent || now.Sub(d.lastActive) < d.cfg.EndQuiet {
		return Event{}, false
	}
	return d.Flush()
}

// Flush ends the current event, if any, at its last active frame: for
// shutting down.
func (d *Detector) Flush() (Event, bool) {
	if !d.inEvent {
		return Event{}, false
	}
	e := d.report()
	e.End = d.lastActive
	d.inEvent, d.run, d.ev = false, 0, Event{}
	return e, true
}

// rowOf returns row y (counted from the top of img's bounds) of w pixels.
func rowOf(img *image.Gray, y, w int) []uint8 {
	i := img.PixOffset(img.Rect.Min.X, img.Rect.Min.Y+y)
	return img.Pix[i : i+w]
}
