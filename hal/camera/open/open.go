// Package open opens the camera a source string names (see package
// hal/camera/source for the forms) with the backend for it: the
// simulator, V4L2, HTTP MJPEG or file replay. Every source it returns also
// implements camera.Healther.
package open

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/hal/camera/httpcam"
	"github.com/outpost-cctv/outpost/hal/camera/replay"
	"github.com/outpost-cctv/outpost/hal/camera/sim"
	"github.com/outpost-cctv/outpost/hal/camera/source"
	"github.com/outpost-cctv/outpost/hal/camera/v4l2"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// Spec says which camera to open and how; it mirrors the config's camera
// section.
type Spec struct {
	// Source is the camera: sim, /dev/videoN, /dev/v4l/by-id/...,
	// http(s)://... or file:PATH.
	Source string
	// Width, Height and FPS: the mode negotiated with a V4L2 camera, the
	// simulator's pictures, the rate a file is replayed at. An IP camera
	// sends what it is set to.
	Width, Height, FPS int
	// Username and Password for an IP camera that asks for them.
	Username, Password string
	// FrameTimeout is how long without frames before the camera is
	// reported (camera.ErrNoFrames) and reopened; 0 means 5 s.
	FrameTimeout time.Duration
	// MaxFrameSize caps a frame; larger ones are dropped. 0 means 4 MiB.
	MaxFrameSize int
	// Buffers is the number of V4L2 driver buffers; 0 means 4.
	Buffers int
	// YUYVFPS is the rate a V4L2 camera without MJPEG is encoded at; 0
	// means 5.
	YUYVFPS int
	// Sim tunes the simulated camera (its size and rate come from
	// Width, Height and FPS).
	Sim SimSpec
	// ReplayOnce and ReplayFast: play a file once, and as fast as it
	// reads (for benchmarks), instead of looping at FPS.
	ReplayOnce, ReplayFast bool
	// Meter records health. Give the same meter to every Open of one
	// camera, so that counts, reconnects and gaps carry across reopening;
	// nil makes one for this source alone.
	Meter *camera.Meter
}

// SimSpec tunes the simulated camera.
type SimSpec struct {
	MotionEvery, MotionDuration time.Duration
	Quality                     int
}

// NewMeter returns a health meter for the camera spec names, to be given
// (as Spec.Meter) to every Open of it.
func NewMeter(spec Spec, clk clock.Clock) *camera.Meter {
	if spec.FrameTimeout <= 0 {
		spec.FrameTimeout = 5 * time.Second
	}
	return camera.NewMeter(clk, source.Redact(spec.Source), spec.FrameTimeout)
}

// Open opens the camera spec names, and waits for its first frame (the
// simulator excepted, which cannot fail to deliver). An error wrapping
// camera.ErrNeedsAttention needs a person; others may clear by retrying.
func Open(ctx context.Context, spec Spec, clk clock.Clock, log *slog.Logger) (camera.Source, error) {
	kind, target, err := source.Parse(spec.Source)
	if err != nil {
		return nil, fmt.Errorf("camera: %w", err)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if spec.FrameTimeout <= 0 {
		spec.FrameTimeout = 5 * time.Second
	}
	if spec.Meter == nil {
		spec.Meter = NewMeter(spec, clk)
	}
	switch kind {
	case source.Sim:
		c, err := sim.New(sim.Config{
			Width: spec.Width, Height: spec.Height, FPS: spec.FPS,
			MotionEvery: spec.Sim.MotionEvery, MotionDuration: spec.Sim.MotionDuration, Quality: spec.Sim.Quality,
		}, clk)
		if err != nil {
			return nil, err
		}
		spec.Meter.Connected(fmt.Sprintf("simulated MJPEG %dx%d @ %d fps", spec.Width, spec.Height, spec.FPS))
		return &metered{Source: c, m: spec.Meter}, nil
	case source.V4L2:
		return v4l2.Open(ctx, v4l2.Config{
			Path: target, Width: spec.Width, Height: spec.Height, FPS: spec.FPS,
			Buffers: spec.Buffers, YUYVFPS: spec.YUYVFPS, FrameTimeout: spec.FrameTimeout,
			MaxFrameSize: spec.MaxFrameSize, Meter: spec.Meter,
		}, clk, log)
	case source.HTTP:
		return httpcam.Open(ctx, httpcam.Config{
			URL: target, Username: spec.Username, Password: spec.Password,
			FrameTimeout: spec.FrameTimeout, MaxFrameSize: spec.MaxFrameSize, Meter: spec.Meter,
		}, clk, log)
	case source.File:
		return replay.Open(ctx, replay.Config{
			Path: target, FPS: spec.FPS, Once: spec.ReplayOnce, Fast: spec.ReplayFast,
			MaxFrameSize: spec.MaxFrameSize, Meter: spec.Meter,
		}, clk, log)
	}
	return nil, fmt.Errorf("camera: source %q: no backend", source.Redact(spec.Source))
}

// metered counts a source's frames in a Meter, for a backend that keeps
// no health of its own.
type metered struct {
	camera.Source
	m *camera.Meter
}

func (s *metered) Next(ctx context.Context) (camera.Frame, error) {
	f, err := s.Source.Next(ctx)
	if err == nil {
		s.m.Frame(f.Time, f.Width, f.Height)
	}
	return f, err
}

func (s *metered) Close() error {
	err := s.Source.Close()
	s.m.Closed()
	return err
}

// Health implements camera.Healther.
func (s *metered) Health() camera.Health { return s.m.Health() }
