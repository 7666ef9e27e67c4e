package v4l2

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/blackjack/webcam"
	"github.com/outpost-cctv/outpost/hal/camera"
)

// Caps is what a camera offers: its pixel formats, each with its frame
// sizes and, for each size, its frame rates.
type Caps struct {
	Formats []FormatCaps
}

// FormatCaps is one pixel format.
type FormatCaps struct {
	Format      Format
	Description string
	Sizes       []SizeCaps
}

// SizeCaps is a frame size, or a range of sizes for stepwise sizes, and
// its frame rates.
type SizeCaps struct {
	webcam.FrameSize
	// Rates are the frame rates offered at MaxWidth x MaxHeight; empty if
	// the driver does not list them.
	Rates []RateCaps
}

// RateCaps is a frame rate, or a range of rates (Min < Max), in frames
// per second.
type RateCaps struct {
	Min, Max float64
}

// stepwise reports whether the size is a range.
func (s SizeCaps) stepwise() bool {
	return s.MinWidth != s.MaxWidth || s.MinHeight != s.MaxHeight
}

// fits reports whether a width x height frame is one of the sizes.
func (s SizeCaps) fits(w, h int) bool {
	if !s.stepwise() {
		return int(s.MaxWidth) == w && int(s.MaxHeight) == h
	}
	in := func(v int, lo, hi, step uint32) bool {
		if v < int(lo) || v > int(hi) {
			return false
		}
		return step <= 1 || (v-int(lo))%int(step) == 0
	}
	return in(w, s.MinWidth, s.MaxWidth, s.StepWidth) && in(h, s.MinHeight, s.MaxHeight, s.StepHeight)
}

func (s SizeCaps) String() string {
	if !s.stepwise() {
		return fmt.Sprintf("%dx%d", s.MaxWidth, s.MaxHeight)
	}
	return fmt.Sprintf("%d-%dx%d-%d", s.MinWidth, s.MaxWidth, s.MinHeight, s.MaxHeight)
}

// offers reports whether the rate fps is offered (within 1 %); true if no
// rates are listed, since then the driver is asked and its answer checked.
func (s SizeCaps) offers(fps float64) bool {
	if len(s.Rates) == 0 {
		return true
	}
	for _, r := range s.Rates {
		if fps >= r.Min*0.99 && fps <= r.Max*1.01 {
			return true
		}
	}
	return false
}

// ratesString lists the rates, fastest first: "30, 25, 15 fps".
func (s SizeCaps) ratesString() string {
	if len(s.Rates) == 0 {
		return "rates not listed"
	}
	var parts []string
	for _, r := range s.Rates {
		if r.Min == r.Max {
			parts = append(parts, fmtFPS(r.Max))
		} else {
			parts = append(parts, fmtFPS(r.Min)+"-"+fmtFPS(r.Max))
		}
	}
	return strings.Join(parts, ", ") + " fps"
}

func fmtFPS(f float64) string { return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64) }

// String lists every mode, one format per line:
//
//	MJPG 1920x1080 @ 30, 15 fps; 1280x720 @ 30 fps
func (c Caps) String() string {
	if len(c.Formats) == 0 {
		return "no capture formats"
	}
	var b strings.Builder
	for i, f := range c.Formats {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s", f.Format)
		for j, s := range f.Sizes {
			sep := "; "
			if j == 0 {
				sep = " "
			}
			fmt.Fprintf(&b, "%s%s @ %s", sep, s, s.ratesString())
		}
	}
	return b.String()
}

// format returns the caps of f, if offered.
func (c Caps) format(f Format) (FormatCaps, bool) {
	for _, fc := range c.Formats {
		if fc.Format == f {
			return fc, true
		}
	}
	return FormatCaps{}, false
}

// size returns the caps of a width x height frame in f, if offered.
func (fc FormatCaps) size(w, h int) (SizeCaps, bool) {
	for _, s := range fc.Sizes {
		if s.fits(w, h) {
			return s, true
		}
	}
	return SizeCaps{}, false
}

// readCaps enumerates what dev offers, in a stable order: MJPEG, then
// YUYV, then the rest; sizes largest first; rates fastest first.
func readCaps(dev device) Caps {
	var c Caps
	for pf, desc := range dev.GetSupportedFormats() {
		fc := FormatCaps{Format: Format(pf), Description: desc}
		seen := map[webcam.FrameSize]bool{}
		for _, fs := range dev.GetSupportedFrameSizes(pf) {
			if seen[fs] {
				continue // drivers may list a size twice
			}
			seen[fs] = true
			sc := SizeCaps{FrameSize: fs}
			for _, fr := range dev.GetSupportedFramerates(pf, fs.MaxWidth, fs.MaxHeight) {
				if r, ok := rateCaps(fr); ok && !slices.Contains(sc.Rates, r) {
					sc.Rates = append(sc.Rates, r)
				}
			}
			slices.SortFunc(sc.Rates, func(a, b RateCaps) int { return cmp.Compare(b.Max, a.Max) })
			fc.Sizes = append(fc.Sizes, sc)
		}
		slices.SortFunc(fc.Sizes, func(a, b SizeCaps) int {
			return cmp.Or(cmp.Compare(b.MaxWidth*b.MaxHeight, a.MaxWidth*a.MaxHeight), cmp.Compare(b.MaxWidth, a.MaxWidth))
		})
		c.Formats = append(c.Formats, fc)
	}
	rank := func(f Format) int {
		switch f {
		case MJPEG:
			return 0
		case YUYV:
			return 1
		}
		return 2
	}
	slices.SortFunc(c.Formats, func(a, b FormatCaps) int {
		return cmp.Or(cmp.Compare(rank(a.Format), rank(b.Format)), cmp.Compare(a.Format, b.Format))
	})
	return c
}

// rateCaps converts a frame interval (seconds per frame, as a fraction)
// to frame rates.
func rateCaps(fr webcam.FrameRate) (RateCaps, bool) {
	if fr.MinNumerator == 0 || fr.MinDenominator == 0 || fr.MaxNumerator == 0 || fr.MaxDenominator == 0 {
		return RateCaps{}, false
	}
	// The shortest interval is the fastest rate.
	fast := float64(fr.MinDenominator) / float64(fr.MinNumerator)
	slow := float64(fr.MaxDenominator) / float64(fr.MaxNumerator)
	return RateCaps{Min: min(fast, slow), Max: max(fast, slow)}, true
}

// plan is the mode to ask the driver for.
type plan struct {
	format        Format
	width, height int
	// fps is the capture rate asked for.
	fps float64
	// encodeFPS is, for YUYV, the rate frames are encoded and delivered
	// at; 0 for MJPEG.
	encodeFPS float64
}

// String describes the plan for health: "MJPEG 1280x720 @ 25 fps".
func (p plan) String() string {
	if p.format == YUYV {
		return fmt.Sprintf("YUYV %dx%d @ %s fps, encoded to JPEG @ %s fps", p.width, p.height, fmtFPS(p.fps), fmtFPS(p.encodeFPS))
	}
	return fmt.Sprintf("MJPEG %dx%d @ %s fps", p.width, p.height, fmtFPS(p.fps))
}

// errMode builds the error for a mode the camera does not offer.
func errMode(path, problem string, c Caps) error {
	return camera.NeedsAttention(fmt.Errorf("%s; it offers:\n%s\nset camera.width, camera.height and camera.fps to one of these (outpost probe camera %s lists them)", problem, indent(c.String()), path))
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

// choose decides what to ask the driver for: MJPEG at the configured size
// and rate, or, for a camera without MJPEG, YUYV at that size at a reduced
// rate.
func choose(c Caps, cfg Config) (plan, error) {
	w, h, fps := cfg.Width, cfg.Height, float64(cfg.FPS)
	if fc, ok := c.format(MJPEG); ok {
		s, ok := fc.size(w, h)
		if !ok {
			return plan{}, errMode(cfg.Path, fmt.Sprintf("the camera does not offer MJPEG at %dx%d", w, h), c)
		}
		if !s.offers(fps) {
			return plan{}, errMode(cfg.Path, fmt.Sprintf("the camera offers MJPEG %dx%d at %s, not %d fps", w, h, s.ratesString(), cfg.FPS), c)
		}
		return plan{format: MJPEG, width: w, height: h, fps: fps}, nil
	}
	if fc, ok := c.format(YUYV); ok {
		s, ok := fc.size(w, h)
		if !ok {
			return plan{}, errMode(cfg.Path, fmt.Sprintf("the camera offers no MJPEG, and no YUYV at %dx%d", w, h), c)
		}
		enc := float64(min(cfg.YUYVFPS, cfg.FPS))
		capture := yuyvCaptureRate(s, enc)
		return plan{format: YUYV, width: w, height: h, fps: capture, encodeFPS: min(enc, capture)}, nil
	}
	return plan{}, errMode(cfg.Path, "the camera offers neither MJPEG nor YUYV", c)
}

// yuyvCaptureRate picks the slowest offered rate at or above the encode
// rate (less USB traffic, fewer frames to skip), or the fastest if none is.
func yuyvCaptureRate(s SizeCaps, enc float64) float64 {
	above, fastest := math.Inf(1), 0.0
	for _, r := range s.Rates {
		if enc >= r.Min && enc <= r.Max {
			return enc
		}
		if r.Min >= enc {
			above = min(above, r.Min)
		}
		fastest = max(fastest, r.Max)
	}
	switch {
	case !math.IsInf(above, 1):
		return above
	case fastest > 0:
		return fastest
	}
	return enc
}

// apply sets the plan on dev and checks what the driver chose.
func apply(dev device, p plan, c Caps, cfg Config) error {
	if err := dev.SetBufferCount(uint32(cfg.Buffers)); err != nil {
		return fmt.Errorf("set buffer count %d: %w", cfg.Buffers, err)
	}
	got, _, _, err := dev.SetImageFormat(webcam.PixelFormat(p.format), uint32(p.width), uint32(p.height))
	if err != nil {
		return withHint(fmt.Sprintf("set format %s %dx%d", p.format, p.width, p.height), err)
	}
	if Format(got) != p.format {
		return errMode(cfg.Path, fmt.Sprintf("asked for %s %dx%d, the driver chose %s", p.format, p.width, p.height, Format(got)), c)
	}
	if err := dev.SetFramerate(float32(p.fps)); err != nil {
		return withHint(fmt.Sprintf("set frame rate %s fps", fmtFPS(p.fps)), err)
	}
	rate, err := dev.GetFramerate()
	if err != nil {
		return withHint("read back the frame rate", err)
	}
	if d := math.Abs(float64(rate) - p.fps); d > max(0.5, p.fps*0.02) {
		if p.format == MJPEG {
			return errMode(cfg.Path, fmt.Sprintf("asked for MJPEG %dx%d at %s fps, the driver chose %s fps", p.width, p.height, fmtFPS(p.fps), fmtFPS(float64(rate))), c)
		}
		// YUYV frames are skipped down to the encode rate anyway: any
		// capture rate at or above it does.
		if float64(rate) < p.encodeFPS*0.98 {
			return errMode(cfg.Path, fmt.Sprintf("asked for YUYV %dx%d at %s fps, the driver chose %s fps", p.width, p.height, fmtFPS(p.fps), fmtFPS(float64(rate))), c)
		}
	}
	return nil
}
