package scene

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
)

// SinkStats counts what a Sink did with the frames it was given.
type SinkStats struct {
	// Frames is the number of frames given to WriteFrame.
	Frames uint64
	// Analysed is the number of frames decoded and analysed.
	Analysed uint64
	// Dropped counts due frames thrown away because the previous one was
	// still being analysed (the capture goroutine never waits).
	Dropped uint64
	// Undecodable counts frames that could not be read; LastError says
	// why the last one was not.
	Undecodable uint64
	LastError   string
}

// Sink runs the checks as a frame sink of the capture component and a
// supervised component ("scene"): WriteFrame passes on about one frame per
// Config.Interval without ever blocking, Run analyses them on its own
// goroutine and calls onChange when a condition is raised or cleared.
type Sink struct {
	log      *slog.Logger
	interval time.Duration
	onChange func(Change)
	frames   chan camera.Frame // capacity 1: the newest due frame

	amu sync.Mutex // guards a
	a   *Analyzer

	mu      sync.Mutex // guards the fields below
	nextDue time.Time
	stats   SinkStats
}

// NewSink returns a sink checking frames as cfg says, against ref if it
// has an image (the reference read from its file; the zero Reference
// until the unit is commissioned). onChange is called on Run's goroutine
// and must not block for long.
func NewSink(log *slog.Logger, cfg Config, ref Reference, onChange func(Change)) (*Sink, error) {
	if log == nil || onChange == nil {
		return nil, errors.New("scene: NewSink needs a logger and a change callback")
	}
	a, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if ref.Luma != nil {
		if err := a.SetReference(ref); err != nil {
			return nil, err
		}
	}
	return &Sink{
		log:      log.With("component", "scene"),
		interval: a.cfg.Interval,
		onChange: onChange,
		frames:   make(chan camera.Frame, 1),
		a:        a,
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
func (s *Sink) Name() string { return "scene" }

// WriteFrame implements the agent's FrameSink. It never blocks and never
// fails, so that the picture checks cannot stop recording.
func (s *Sink) WriteFrame(f camera.Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Frames++
	if f.Time.Before(s.nextDue) && f.Time.After(s.nextDue.Add(-2*s.interval)) {
		return nil // not due; a clock stepped back is
	}
	select {
	case s.frames <- f:
		s.nextDue = f.Time.Add(s.interval)
	default:
		s.stats.Dropped++
	}
	return nil
}

// Run analyses frames until ctx is done, then returns nil.
func (s *Sink) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case f := <-s.frames:
			if f.Codec != camera.MJPEG {
				s.undecodable(fmt.Errorf("scene: codec %q: only MJPEG frames can be checked", f.Codec))
				continue
			}
			s.amu.Lock()
			changes, err := s.a.ObserveJPEG(f.Time, f.Data)
			s.amu.Unlock()
			if err != nil {
				s.undecodable(err)
				continue
			}
			s.mu.Lock()
			s.stats.Analysed++
			s.mu.Unlock()
			for _, c := range changes {
				if c.Active {
					s.log.Warn("picture fault raised", "kind", c.Kind, "score", c.Score, "message", c.Message, "action", c.Action)
				} else {
					s.log.Info("picture fault cleared", "kind", c.Kind, "score", c.Score, "message", c.Message)
				}
				s.onChange(c)
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
	// Logged once: Stats carries the count and the last reason.
	if first {
		s.log.Warn("frame skipped by the picture checks", "err", err)
	}
}

// Stats returns the counters.
func (s *Sink) Stats() SinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Conditions returns the state of every check.
func (s *Sink) Conditions() []Condition {
	s.amu.Lock()
	defer s.amu.Unlock()
	return s.a.Conditions()
}

// Commission takes the JPEG frame f as the reference view and returns the
// reference for the caller to persist.
func (s *Sink) Commission(f camera.Frame) (Reference, error) {
	if f.Codec != camera.MJPEG {
		return Reference{}, fmt.Errorf("scene: codec %q: commission from an MJPEG frame", f.Codec)
	}
	s.amu.Lock()
	defer s.amu.Unlock()
	return s.a.CommissionJPEG(f.Time, f.Data)
}
