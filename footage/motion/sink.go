package motion

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/footage/motion/jpegdc"
	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// Stats counts what a Sink did with the frames it was given.
type Stats struct {
	// Frames is the number of frames given to WriteFrame.
	Frames uint64
	// Skipped counts frames passed over by Config.Every.
	Skipped uint64
	// Dropped counts frames thrown away because the detector was still
	// busy with an earlier one (the capture goroutine never waits).
	Dropped uint64
	// Analysed is the number of frames decoded and analysed.
	Analysed uint64
	// Undecodable counts frames the decoder could not read (damaged,
	// progressive, not MJPEG); LastError says why the last one was not.
	Undecodable uint64
	LastError   string
	// Events counts events started.
	Events uint64
}

// Sink is motion detection as a frame sink of the capture component and a
// supervised component ("motion"): WriteFrame hands frames over without
// ever blocking, Run analyses them on its own goroutine and calls OnEvent
// when an event starts or ends.
type Sink struct {
	log     *slog.Logger
	clk     clock.Clock
	cfg     Config
	onEvent func(Event)

	frames chan camera.Frame // capacity 1: the newest frame waiting

	mu    sync.Mutex // guards stats and n
	stats Stats
	n     uint64
}

// NewSink returns a sink that detects motion as cfg says and calls
// onEvent, on Run's goroutine, when an event starts (End zero) or ends.
// onEvent must not block for long: frames arriving meanwhile are dropped.
func NewSink(log *slog.Logger, clk clock.Clock, cfg Config, onEvent func(Event)) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clk == nil || onEvent == nil || log == nil {
		return nil, errors.New("motion: NewSink needs a logger, a clock and an event callback")
	}
	return &Sink{
		log:     log.With("component", "motion"),
		clk:     clk,
		cfg:     cfg.withDefaults(),
		onEvent: onEvent,
		frames:  make(chan camera.Frame, 1),
	}, nil
}

// Sink is what the agent's capture and supervisor expect (agent.FrameSink
// and agent.Component), asserted here without importing agent.
var (
	_ interface{ WriteFrame(camera.Frame) error } = (*Sink)(nil)
	_ interface {
		Name() string
		Run(ctx context.Context) error
	} = (*Sink)(nil)
)

// Name implements the agent's Component.
func (s *Sink) Name() string { return "motion" }

// WriteFrame implements the agent's FrameSink. It never blocks: if the
// detector is busy the frame is dropped and counted. It never fails, so
// that motion detection cannot stop recording.
func (s *Sink) WriteFrame(f camera.Frame) error {
	s.mu.Lock()
	s.stats.Frames++
	s.n++
	skip := (s.n-1)%uint64(s.cfg.Every) != 0
	if skip {
		s.stats.Skipped++
	}
	s.mu.Unlock()
	if skip {
		return nil
	}
	select {
	case s.frames <- f:
	default:
		s.mu.Lock()
		s.stats.Dropped++
		s.mu.Unlock()
	}
	return nil
}

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Run analyses frames until ctx is done, then ends any event in progress
// and returns ctx's error.
func (s *Sink) Run(ctx context.Context) error {
	det, err := NewDetector(s.cfg)
	if err != nil {
		return err
	}
	var dec jpegdc.Decoder
	var img *image.Gray
	// The ticker ends an event when frames stop arriving (the camera was
	// lost mid-event).
	tick := s.clk.NewTicker(max(s.cfg.EndQuiet/2, 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if e, ok := det.Flush(); ok {
				s.onEvent(e)
			}
			return ctx.Err()
		case now := <-tick.C():
			if e, ok := det.Tick(now); ok {
				s.onEvent(e)
			}
		case f := <-s.frames:
			if f.Codec != camera.MJPEG {
				s.undecodable(fmt.Errorf("motion: codec %q: only MJPEG frames can be analysed", f.Codec))
				continue
			}
			out, err := dec.Decode(f.Data, img)
			if err != nil {
				s.undecodable(err)
				continue
			}
			img = out
			e, ok := det.Process(f.Time, img)
			s.mu.Lock()
			s.stats.Analysed++
			if ok && e.Started() {
				s.stats.Events++
			}
			s.mu.Unlock()
			if ok {
				s.onEvent(e)
			}
		}
	}
}

func (s *Sink) undecodable(err error) {
	s.mu.Lock()
	s.stats.Undecodable++
	first := s.stats.Undecodable == 1
	s.stats.LastError = err.Error()
	s.mu.Unlock()
	// Logged once: a camera sending bad frames would otherwise write a
	// line per frame. Stats carries the count and the last reason.
	if first {
		s.log.Warn("frame skipped by motion detection", "err", err)
	}
}
