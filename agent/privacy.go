package agent

import (
	"context"
	"fmt"
	"image"
	"log/slog"
	"math"
	"time"

	"github.com/outpost-cctv/outpost/footage/mask"
	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// NewPrivacyMask compiles the configured privacy masks (polygons in
// fractions of the picture) for a picture of width x height; nil when
// there are none.
func NewPrivacyMask(polys [][][2]float64, width, height int) (*mask.Mask, error) {
	if len(polys) == 0 {
		return nil, nil
	}
	var pts [][]image.Point
	for _, p := range polys {
		var q []image.Point
		for _, c := range p {
			q = append(q, image.Point{X: int(math.Round(c[0] * float64(width))), Y: int(math.Round(c[1] * float64(height)))})
		}
		pts = append(pts, q)
	}
	m, err := mask.New(width, height, nil, pts)
	if err != nil {
		return nil, fmt.Errorf("privacy.masks: %w", err)
	}
	return m, nil
}

// maskCamera wraps the camera so that the privacy masks are blanked in
// every frame before anything else sees it: the recorder, the live
// picture, snapshots, motion detection and its thumbnails. A frame that
// cannot be masked is replaced by a grey one, never passed on as it
// came.
func maskCamera(open func(ctx context.Context) (camera.Source, error), m *mask.Mask, clk clock.Clock, log *slog.Logger) func(ctx context.Context) (camera.Source, error) {
	if m == nil {
		return open
	}
	return func(ctx context.Context) (camera.Source, error) {
		src, err := open(ctx)
		if err != nil {
			return nil, err
		}
		return &maskedSource{Source: src, mk: mask.NewMasker(m), clk: clk, log: log}, nil
	}
}

// maskedSource is a camera whose frames are masked.
type maskedSource struct {
	camera.Source
	mk  *mask.Masker
	clk clock.Clock
	log *slog.Logger

	blank       []byte
	blankW      int
	blankH      int
	failed      int
	lastWarning time.Time
}

// Next implements camera.Source.
func (s *maskedSource) Next(ctx context.Context) (camera.Frame, error) {
	f, err := s.Source.Next(ctx)
	if err != nil || f.Codec != camera.MJPEG {
		// Only MJPEG frames reach the store; others are the camera's
		// own business (and there are none today).
		return f, err
	}
	// A new buffer per frame: the sinks keep frames after Next returns.
	out, err := s.mk.Apply(nil, f.Data)
	if err == nil {
		f.Data = out
		return f, nil
	}
	s.failed++
	if now := s.clk.Now(); now.Sub(s.lastWarning) >= time.Minute {
		s.log.Warn("a frame could not be masked and was replaced by a grey one", "err", err, "replaced_since_last_warning", s.failed)
		s.lastWarning, s.failed = now, 0
	}
	if s.blank == nil || s.blankW != f.Width || s.blankH != f.Height {
		w, h := f.Width, f.Height
		if w <= 0 || h <= 0 {
			w, h = 16, 16
		}
		b, berr := mask.Blank(w, h)
		if berr != nil {
			return camera.Frame{}, fmt.Errorf("camera: a frame could not be masked (%v), nor a grey one made (%v)", err, berr)
		}
		s.blank, s.blankW, s.blankH = b, f.Width, f.Height
	}
	f.Data = s.blank
	return f, nil
}
