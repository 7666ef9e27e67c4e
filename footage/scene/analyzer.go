package scene

import (
	"fmt"
	"image"
	"math"
	"slices"
	"time"

	"github.com/outpost-cctv/outpost/footage/motion/jpegdc"
)

// The kinds of condition, stable strings for the wire and the logs.
const (
	KindFrozen       = "frozen"
	KindBlank        = "blank"
	KindSceneChanged = "scene_changed"
	KindOutOfFocus   = "out_of_focus"
)

// kinds lists the kinds in the order Conditions reports them, indexed by
// the i* constants.
var kinds = [...]string{KindFrozen, KindBlank, KindSceneChanged, KindOutOfFocus}

const (
	iFrozen = iota
	iBlank
	iScene
	iFocus
)

// Condition is the state of one check.
type Condition struct {
	// Kind is one of the Kind constants.
	Kind string
	// Active is true while the fault is raised.
	Active bool
	// Since is when the current state began: when the fault was first
	// seen if Active, when the picture was first seen good again if it
	// was cleared, zero if it was never raised.
	Since time.Time
	// Score is the kind's latest measure: the mean difference between
	// frames (frozen), the 95th percentile or the spread of the cells
	// (blank), the median correlation with the reference (scene_changed),
	// the median sharpness against the reference's (out_of_focus). NaN
	// when not measured yet.
	Score float64
	// Message says in plain words what is wrong (or that it was put
	// right); Action what to do about it, empty once cleared.
	Message, Action string
}

// Change is a condition raised (Active) or cleared by a frame.
type Change struct {
	Condition
	// At is the time of the frame that raised or cleared it.
	At time.Time
}

// verdict is what a frame says of one check.
type verdict int

const (
	unknown verdict = iota // cannot be judged in this frame
	bad                    // beyond the raise threshold
	between                // between the thresholds
	good                   // beyond the clear threshold
)

// tracker applies a check's hold times to its verdicts.
type tracker struct {
	cond    Condition
	pending time.Time // first of the current run of bad (or good, when active) frames
}

func (k *tracker) update(t time.Time, v verdict, raiseHold, clearHold time.Duration) (changed bool) {
	switch {
	case !k.cond.Active && v == bad, k.cond.Active && v == good:
		if k.pending.IsZero() {
			k.pending = t
		}
		hold := raiseHold
		if k.cond.Active {
			hold = clearHold
		}
		if t.Sub(k.pending) < hold {
			return false
		}
		k.cond.Active = !k.cond.Active
		k.cond.Since = k.pending
		k.pending = time.Time{}
		return true
	default:
		k.pending = time.Time{}
		return false
	}
}

// Analyzer runs the checks on a camera's frames. It is not safe for
// concurrent use. In steady state it allocates only for the Changes it
// returns.
type Analyzer struct {
	cfg  Config
	last time.Time // capture time of the last analysed frame

	w, h     int
	cur      []uint8 // the frame analysed, w×h
	prev     []uint8 // the one before, w×h when havePrev
	havePrev bool
	grad     []float32 // gradient magnitudes of cur, (w-1)×(h-1)
	hist     [256]int32

	ref      *Reference
	refGrad  []float32
	refW     int
	refH     int
	refDCSh  float64 // DC sharpness of the reference
	refStd   float64 // standard deviation of the reference's cells
	sceneWin []float64
	focusWin []float64
	sorted   []float64

	dec  jpegdc.EnergyDecoder
	luma *image.Gray

	tr [len(kinds)]tracker
}

// New returns an analyzer configured by cfg.
func New(cfg Config) (*Analyzer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	a := &Analyzer{cfg: cfg}
	for i, k := range kinds {
		a.tr[i].cond = Condition{Kind: k, Score: math.NaN()}
	}
	a.sceneWin = make([]float64, 0, cfg.Window)
	a.focusWin = make([]float64, 0, cfg.Window)
	a.sorted = make([]float64, 0, cfg.Window)
	return a, nil
}

// Due reports whether a frame captured at t would be analysed; a caller
// can skip decoding frames that would not.
func (a *Analyzer) Due(t time.Time) bool {
	return a.last.IsZero() || t.Sub(a.last) >= a.cfg.Interval || t.Before(a.last)
}

// Observe analyses img, the 1/8-scale luma image of a frame captured at t,
// if a frame is due (see Due), and returns the conditions it raised or
// cleared. Without the JPEG the focus is judged on img alone (see the
// package doc).
func (a *Analyzer) Observe(t time.Time, img *image.Gray) []Change {
	if img == nil || img.Rect.Empty() || !a.Due(t) {
		return nil
	}
	return a.observe(t, img, -1)
}

// ObserveJPEG decodes the JPEG frame data, captured at t, if a frame is
// due, and analyses it with the energy of its AC coefficients for the
// focus. A frame that cannot be decoded is an error and is not counted.
func (a *Analyzer) ObserveJPEG(t time.Time, data []byte) ([]Change, error) {
	if !a.Due(t) {
		return nil, nil
	}
	luma, en, err := a.dec.Decode(data, a.luma)
	if err != nil {
		return nil, fmt.Errorf("scene: %w", err)
	}
	a.luma = luma
	return a.observe(t, luma, en.PerBlock()), nil
}

// Conditions returns the state of every check, in a fixed order.
func (a *Analyzer) Conditions() []Condition {
	out := make([]Condition, len(a.tr))
	for i := range a.tr {
		out[i] = a.tr[i].cond
	}
	return out
}

// Commission takes img, captured at t, as the reference view; it is copied.
// It returns the reference for the caller to persist (Reference.Marshal).
func (a *Analyzer) Commission(t time.Time, img *image.Gray) (Reference, error) {
	r := Reference{Taken: t, Luma: copyGray(img)}
	return r, a.SetReference(r)
}

// CommissionJPEG takes the JPEG frame data, captured at t, as the reference
// view, with its AC sharpness.
func (a *Analyzer) CommissionJPEG(t time.Time, data []byte) (Reference, error) {
	var dec jpegdc.EnergyDecoder
	luma, en, err := dec.Decode(data, nil)
	if err != nil {
		return Reference{}, fmt.Errorf("scene: commissioning frame: %w", err)
	}
	r := Reference{Taken: t, Luma: luma}
	if grad := meanAbsD1(luma.Pix, luma.Rect.Dx(), luma.Rect.Dy()); grad > 0 {
		r.Sharpness = en.PerBlock() / grad
	}
	return r, a.SetReference(r)
}

// SetReference makes r, as read from its file, the reference view. The
// scene and focus scores start again.
func (a *Analyzer) SetReference(r Reference) error {
	if r.Luma == nil || r.Luma.Rect.Dx() < 3 || r.Luma.Rect.Dy() < 3 {
		return fmt.Errorf("scene: reference image too small (%v): commission from a camera frame of at least 24x24 pixels", r.Luma)
	}
	r.Luma = copyGray(r.Luma)
	w, h := r.Luma.Rect.Dx(), r.Luma.Rect.Dy()
	a.ref, a.refW, a.refH = &r, w, h
	a.refGrad = gradient(a.refGrad[:0], r.Luma.Pix, w, h)
	a.refDCSh = dcSharpness(r.Luma.Pix, w, h)
	a.refStd = stdDev(r.Luma.Pix)
	a.sceneWin, a.focusWin = a.sceneWin[:0], a.focusWin[:0]
	return nil
}

// Reference returns the reference view, if one is set.
func (a *Analyzer) Reference() (Reference, bool) {
	if a.ref == nil {
		return Reference{}, false
	}
	r := *a.ref
	r.Luma = copyGray(r.Luma)
	return r, true
}

func stdDev(pix []uint8) float64 {
	var s1, s2 float64
	for _, p := range pix {
		s1 += float64(p)
		s2 += float64(p) * float64(p)
	}
	n := float64(len(pix))
	return math.Sqrt(max(0, s2/n-(s1/n)*(s1/n)))
}

func copyGray(img *image.Gray) *image.Gray {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	out := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		o := img.PixOffset(img.Rect.Min.X, img.Rect.Min.Y+y)
		copy(out.Pix[y*w:(y+1)*w], img.Pix[o:o+w])
	}
	return out
}

// observe analyses one frame; ac is the mean AC energy per luma block, or
// negative when unknown.
func (a *Analyzer) observe(t time.Time, img *image.Gray, ac float64) []Change {
	if t.Before(a.last) {
		// The clock was stepped back: hold times restart.
		for i := range a.tr {
			a.tr[i].pending = time.Time{}
		}
	}
	a.last = t
	w, h := img.Rect.Dx(), img.Rect.Dy()
	if w != a.w || h != a.h {
		a.w, a.h, a.havePrev = w, h, false
		a.cur, a.prev = make([]uint8, w*h), make([]uint8, w*h)
	}
	a.cur, a.prev = a.prev, a.cur
	for y := 0; y < h; y++ {
		o := img.PixOffset(img.Rect.Min.X, img.Rect.Min.Y+y)
		copy(a.cur[y*w:(y+1)*w], img.Pix[o:o+w])
	}
	havePrev := a.havePrev
	a.havePrev = true
	n := float64(w * h)

	// Blank: percentiles of the cells.
	a.hist = [256]int32{}
	for _, p := range a.cur {
		a.hist[p]++
	}
	p5, p95 := a.percentile(0.05, w*h), a.percentile(0.95, w*h)
	var s1, s2 float64
	for v, k := range a.hist {
		s1 += float64(v) * float64(k)
		s2 += float64(v) * float64(v) * float64(k)
	}
	std := math.Sqrt(max(0, s2/n-(s1/n)*(s1/n)))
	spread := p95 - p5
	black := p95 <= a.cfg.BlackLevel
	blankV := between
	switch {
	case black || spread <= a.cfg.UniformSpread:
		blankV = bad
	case p95 > 1.5*a.cfg.BlackLevel && spread > 1.5*a.cfg.UniformSpread:
		blankV = good
	}
	blankScore := spread
	if black {
		blankScore = p95
	}

	// Frozen: the mean difference with the previous frame; the median
	// difference estimates the sensor noise for the detail check.
	frozenV, mad, noise := unknown, math.NaN(), 0.0
	if havePrev {
		a.hist = [256]int32{}
		var sum int
		for i, p := range a.cur {
			d := int(p) - int(a.prev[i])
			d = max(d, -d)
			sum += d
			a.hist[d]++
		}
		mad = float64(sum) / n
		// σ of one cell from the median |difference| of two frames.
		noise = 1.4826 * a.percentile(0.5, w*h) / math.Sqrt2
		switch {
		case blankV == bad:
		case mad <= a.cfg.FrozenMaxDiff:
			frozenV = bad
		case mad > 2*a.cfg.FrozenMaxDiff:
			frozenV = good
		default:
			frozenV = between
		}
	}

	// The view and the focus, against the reference.
	sceneV, focusV := unknown, unknown
	sceneScore, focusScore := math.NaN(), math.NaN()
	judge := a.ref != nil && w == a.refW && h == a.refH && blankV != bad
	if judge {
		a.grad = gradient(a.grad[:0], a.cur, w, h)
		var gsum float64
		for _, g := range a.grad {
			gsum += float64(g)
		}
		// The mean |gx| or |gy| of pure noise of σ per cell is about
		// 1.13σ; the picture must hold well more than that.
		meanGrad := 2 * gsum / float64(len(a.grad))
		judge = meanGrad >= a.cfg.MinDetail && meanGrad >= 4.5*noise
	}
	if !judge {
		a.sceneWin, a.focusWin = a.sceneWin[:0], a.focusWin[:0]
	} else {
		raw := bestNCC(a.grad, a.refGrad, w-1, h-1, a.cfg.MaxShift)
		sceneScore = a.push(&a.sceneWin, raw)
		switch {
		case sceneScore < a.cfg.SceneRaise:
			sceneV = bad
		case sceneScore > a.cfg.SceneClear:
			sceneV = good
		default:
			sceneV = between
		}
		// JPEG quantisation takes proportionally more fine detail out of
		// a low-contrast picture (dusk, fog) than out of a contrasted one,
		// so focus is judged only in pictures about as contrasted as the
		// reference; blur hardly changes the spread of the block means.
		comparable := raw > a.cfg.SceneClear && std >= a.cfg.FocusMinContrast*a.refStd
		if comparable && !a.tr[iScene].cond.Active {
			var ratio float64
			if ac >= 0 && a.ref.Sharpness > 0 {
				if g := meanAbsD1(a.cur, w, h); g > 0 {
					ratio = ac / g / a.ref.Sharpness
				}
			} else if a.refDCSh > 0 {
				ratio = dcSharpness(a.cur, w, h) / a.refDCSh
			}
			focusScore = a.push(&a.focusWin, ratio)
			switch {
			case focusScore < a.cfg.FocusRaise:
				focusV = bad
			case focusScore > a.cfg.FocusClear:
				focusV = good
			default:
				focusV = between
			}
		} else {
			a.focusWin = a.focusWin[:0]
		}
	}

	var changes []Change
	step := func(i int, v verdict, score float64, hold time.Duration) {
		k := &a.tr[i]
		if !math.IsNaN(score) {
			k.cond.Score = score
		}
		if !k.update(t, v, hold, a.cfg.ClearHold) {
			return
		}
		a.describe(&k.cond, t, black)
		changes = append(changes, Change{Condition: k.cond, At: t})
	}
	step(iFrozen, frozenV, mad, a.cfg.FrozenHold)
	step(iBlank, blankV, blankScore, a.cfg.BlankHold)
	step(iScene, sceneV, sceneScore, a.cfg.SceneHold)
	step(iFocus, focusV, focusScore, a.cfg.FocusHold)
	return changes
}

// percentile returns the smallest value of a.hist at or below which at
// least the fraction q of the n counted values lie.
func (a *Analyzer) percentile(q float64, n int) float64 {
	want := int32(math.Ceil(q * float64(n)))
	var c int32
	for v, k := range a.hist {
		c += k
		if c >= max(want, 1) {
			return float64(v)
		}
	}
	return 255
}

// push appends v to the window *win, dropping the oldest beyond
// cfg.Window, and returns the window's median.
func (a *Analyzer) push(win *[]float64, v float64) float64 {
	if len(*win) == a.cfg.Window {
		copy(*win, (*win)[1:])
		*win = (*win)[:len(*win)-1]
	}
	*win = append(*win, v)
	a.sorted = append(a.sorted[:0], *win...)
	slices.Sort(a.sorted)
	m := len(a.sorted)
	if m%2 == 1 {
		return a.sorted[m/2]
	}
	return (a.sorted[m/2-1] + a.sorted[m/2]) / 2
}

// describe fills in c's message and action after it changed at t.
func (a *Analyzer) describe(c *Condition, t time.Time, black bool) {
	held := t.Sub(c.Since).Round(time.Second)
	if !c.Active {
		c.Action = ""
		switch c.Kind {
		case KindFrozen:
			c.Message = fmt.Sprintf("the picture moves again (mean difference %.2f grey levels a frame) for %v", c.Score, held)
		case KindBlank:
			c.Message = fmt.Sprintf("the picture has detail again for %v", held)
		case KindSceneChanged:
			c.Message = fmt.Sprintf("the view matches the commissioned one again (similarity %.2f) for %v", c.Score, held)
		case KindOutOfFocus:
			c.Message = fmt.Sprintf("the picture is as sharp as at commissioning again (%.0f%% of the reference) for %v", 100*c.Score, held)
		}
		return
	}
	switch c.Kind {
	case KindFrozen:
		c.Message = fmt.Sprintf("the picture has not changed for %v (mean difference %.3f grey levels between frames %v apart, at most %.3f): the camera is sending the same image over and over", held, c.Score, a.cfg.Interval, a.cfg.FrozenMaxDiff)
		c.Action = "restart the camera (power-cycle it or its PoE port); if it freezes again, replace the camera or its cable"
	case KindBlank:
		if black {
			c.Message = fmt.Sprintf("the picture has been black for %v (95%% of it at or below grey level %.0f of 255)", held, c.Score)
			c.Action = "at night check the IR illuminator, its relay and its fuse; by day check that nothing covers the lens"
		} else {
			c.Message = fmt.Sprintf("the picture has been a uniform grey for %v (90%% of it within %.0f grey levels): something covers the lens or the sensor is blinded", held, c.Score)
			c.Action = "check the camera on site: remove any bag, tape or paint, wipe condensation off the window, check that it is not pointing into a light"
		}
	case KindSceneChanged:
		taken := ""
		if a.ref != nil {
			taken = " on " + a.ref.Taken.UTC().Format("2006-01-02 15:04 UTC")
		}
		c.Message = fmt.Sprintf("for %v the view has not matched the one commissioned%s (similarity %.2f, 1 is the same view, alert below %.2f): the camera has been knocked or turned", held, taken, c.Score, a.cfg.SceneRaise)
		c.Action = "check the mounting and re-aim the camera using the commissioning snapshot; if the new view is intended, commission the unit again"
	case KindOutOfFocus:
		c.Message = fmt.Sprintf("for %v the picture has been softer than at commissioning (sharpness %.0f%% of the reference, alert below %.0f%%): the lens is out of focus or its window is dirty, fogged or wet", held, 100*c.Score, 100*a.cfg.FocusRaise)
		c.Action = "clean the camera's window; if the picture stays soft, refocus the lens and commission the unit again"
	}
}

// gradient appends to dst the gradient magnitudes |gx| and |gy| of the
// w×h image pix, from forward differences, as two (w-1)×(h-1) images one
// after the other.
func gradient(dst []float32, pix []uint8, w, h int) []float32 {
	for y := 0; y < h-1; y++ {
		row := pix[y*w : (y+1)*w]
		for x := 0; x < w-1; x++ {
			gx := int(row[x+1]) - int(row[x])
			dst = append(dst, float32(max(gx, -gx)))
		}
	}
	for y := 0; y < h-1; y++ {
		row, next := pix[y*w:(y+1)*w], pix[(y+1)*w:(y+2)*w]
		for x := 0; x < w-1; x++ {
			gy := int(next[x]) - int(row[x])
			dst = append(dst, float32(max(gy, -gy)))
		}
	}
	return dst
}

// bestNCC compares the gradient images a and b made by gradient, of
// w×h cells each: it returns the correlation (ncc) of their horizontal
// gradients or of their vertical ones, whichever is lower, at the shift
// of b by up to s cells in each direction that makes it highest. Taking
// the lower of the two directions matters: the long horizontal edges of
// a street (roofs, kerbs) still match when the camera has been turned
// sideways, its vertical ones (walls, posts) when it has been tilted.
func bestNCC(a, b []float32, w, h, s int) float64 {
	n := w * h
	best := -1.0
	for dy := -s; dy <= s; dy++ {
		for dx := -s; dx <= s; dx++ {
			best = max(best, min(ncc(a[:n], b[:n], w, h, dx, dy), ncc(a[n:], b[n:], w, h, dx, dy)))
		}
	}
	return best
}

// ncc returns the normalised cross-correlation, means removed, of the
// w×h images a and b shifted by dx, dy, on their overlap. A flat image
// correlates 0.
func ncc(a, b []float32, w, h, dx, dy int) float64 {
	x0, x1 := max(0, -dx), min(w, w-dx)
	y0, y1 := max(0, -dy), min(h, h-dy)
	if x1-x0 < 2 || y1-y0 < 2 {
		return 0
	}
	var sa, sb, sab, saa, sbb float64
	for y := y0; y < y1; y++ {
		ra := a[y*w+x0 : y*w+x1]
		rb := b[(y+dy)*w+x0+dx : (y+dy)*w+x1+dx]
		var ta, tb, tab, taa, tbb float32
		for i, va := range ra {
			vb := rb[i]
			ta += va
			tb += vb
			tab += va * vb
			taa += va * va
			tbb += vb * vb
		}
		sa, sb, sab, saa, sbb = sa+float64(ta), sb+float64(tb), sab+float64(tab), saa+float64(taa), sbb+float64(tbb)
	}
	n := float64((x1 - x0) * (y1 - y0))
	cov := sab - sa*sb/n
	va, vb := saa-sa*sa/n, sbb-sb*sb/n
	if va <= 0 || vb <= 0 {
		return 0
	}
	return cov / math.Sqrt(va*vb)
}

// meanAbsD1 is the mean absolute difference between horizontally and
// vertically neighbouring cells: the picture's coarse contrast.
func meanAbsD1(pix []uint8, w, h int) float64 {
	var sum, n int
	for y := 0; y < h; y++ {
		row := pix[y*w : (y+1)*w]
		for x := 0; x+1 < w; x++ {
			d := int(row[x+1]) - int(row[x])
			sum += max(d, -d)
			n++
		}
		if y+1 < h {
			next := pix[(y+1)*w : (y+2)*w]
			for x := range w {
				d := int(next[x]) - int(row[x])
				sum += max(d, -d)
				n++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return float64(sum) / float64(n)
}

// dcSharpness is the sharpness of a 1/8-scale image alone, from the
// energy e1 of the differences between neighbouring cells and e2 of those
// between cells two apart: 4·e1/e2 − 1, which is 1 for an edge one cell
// wide, 0 for a smooth ramp over several cells (towards 3 for pure
// noise). Brightness cancels out.
func dcSharpness(pix []uint8, w, h int) float64 {
	var e1, e2 float64
	for y := 0; y < h; y++ {
		row := pix[y*w : (y+1)*w]
		for x := 0; x+2 < w; x++ {
			d1 := float64(int(row[x+1]) - int(row[x]))
			d2 := float64(int(row[x+2]) - int(row[x]))
			e1 += d1 * d1
			e2 += d2 * d2
		}
	}
	for y := 0; y+2 < h; y++ {
		r0, r1, r2 := pix[y*w:(y+1)*w], pix[(y+1)*w:(y+2)*w], pix[(y+2)*w:(y+3)*w]
		for x := range w {
			d1 := float64(int(r1[x]) - int(r0[x]))
			d2 := float64(int(r2[x]) - int(r0[x]))
			e1 += d1 * d1
			e2 += d2 * d2
		}
	}
	if e2 == 0 {
		return 0
	}
	return max(0, 4*e1/e2-1)
}
