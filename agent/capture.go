package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
)

// FrameSink receives every captured frame. Sinks are called in turn on the
// capture goroutine and must not block for long.
type FrameSink interface {
	WriteFrame(f camera.Frame) error
}

// Capture is the component that reads frames from a camera and hands them
// to sinks (the recorder, the latest-frame holder, motion detection).
type Capture struct {
	log   *slog.Logger
	open  func(ctx context.Context) (camera.Source, error)
	sinks []FrameSink

	frames   atomic.Uint64
	lastNano atomic.Int64
}

// NewCapture returns a capture component. open is called at every
// (re)start, so a camera that failed is opened afresh.
func NewCapture(log *slog.Logger, open func(ctx context.Context) (camera.Source, error), sinks ...FrameSink) *Capture {
	return &Capture{log: log.With("component", "camera"), open: open, sinks: sinks}
}

// Name implements Component.
func (c *Capture) Name() string { return "camera" }

// Run implements Component.
func (c *Capture) Run(ctx context.Context) error {
	src, err := c.open(ctx)
	if err != nil {
		return fmt.Errorf("camera: open: %w", err)
	}
	defer src.Close()
	for {
		f, err := src.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("camera: %w", err)
		}
		c.frames.Add(1)
		c.lastNano.Store(f.Time.UnixNano())
		for _, s := range c.sinks {
			if err := s.WriteFrame(f); err != nil {
				c.log.Debug("frame sink refused a frame", "err", err)
			}
		}
	}
}

// Frames is the number of frames captured since start.
func (c *Capture) Frames() uint64 { return c.frames.Load() }

// LastFrame is the capture time of the newest frame, zero if none.
func (c *Capture) LastFrame() time.Time {
	n := c.lastNano.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Latest keeps the newest frame, for snapshots.
type Latest struct {
	mu sync.Mutex
	f  camera.Frame
}

// WriteFrame implements FrameSink.
func (l *Latest) WriteFrame(f camera.Frame) error {
	l.mu.Lock()
	l.f = f
	l.mu.Unlock()
	return nil
}

// Frame returns the newest frame and whether there is one.
func (l *Latest) Frame() (camera.Frame, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f, l.f.Data != nil
}
