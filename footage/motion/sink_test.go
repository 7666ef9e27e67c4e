package motion

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/hal/camera/sim"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// eventLog collects the events a Sink reports.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) get() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestSinkDetectsCrossings(t *testing.T) {
	clk := clock.NewFake(t0)
	cam, err := sim.New(sim.Config{Width: 640, Height: 360, FPS: 25, MotionEvery: 4 * time.Second, MotionDuration: 1500 * time.Millisecond, Quality: 75}, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	var log eventLog
	s, err := NewSink(discard(), clk, Config{}, log.add)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "motion" {
		t.Fatalf("Name = %q", s.Name())
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	var crossings int
	var in bool
	for k := 0; k < 25*15; k++ {
		f, err := cam.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m := cam.InMotion(f.Time); m && !in {
			crossings++
		}
		in = cam.InMotion(f.Time)
		// Wait until the sink has taken the frame, as a real camera's
		// pace would allow; the drop path is tested below.
		before := s.Stats().Analysed + s.Stats().Undecodable
		if err := s.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
		for s.Stats().Analysed+s.Stats().Undecodable == before {
			time.Sleep(50 * time.Microsecond) // real time: the sink's goroutine works in real time
		}
		clk.Advance(40 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if crossings < 2 {
		t.Fatalf("only %d crossings scripted", crossings)
	}
	events := log.get()
	starts := 0
	for _, e := range events {
		if !e.Ended() {
			starts++
		}
	}
	if starts != crossings || len(events) != 2*starts {
		t.Fatalf("%d crossings, %d events started, %d reports: %+v", crossings, starts, len(events), events)
	}
	st := s.Stats()
	if st.Events != uint64(starts) || st.Dropped != 0 || st.Undecodable != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSinkNeverBlocks(t *testing.T) {
	clk := clock.NewFake(t0)
	s, err := NewSink(discard(), clk, Config{Every: 2}, func(Event) {})
	if err != nil {
		t.Fatal(err)
	}
	// Run is not running: the first frame waits, the rest are dropped or
	// skipped, and WriteFrame returns at once.
	f := camera.Frame{Data: []byte{0xFF, 0xD8}, Codec: camera.MJPEG, Time: t0}
	for range 10 {
		if err := s.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.Frames != 10 || st.Skipped != 5 || st.Dropped != 4 {
		t.Fatalf("stats %+v: want 10 frames, 5 skipped, 4 dropped", st)
	}
}

func TestSinkCountsBadFrames(t *testing.T) {
	clk := clock.NewFake(t0)
	s, err := NewSink(discard(), clk, Config{}, func(Event) {})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for _, f := range []camera.Frame{
		{Data: []byte("not a jpeg"), Codec: camera.MJPEG},
		{Data: []byte{0xFF, 0xD8, 0xFF}, Codec: camera.MJPEG},
		{Data: []byte{0, 0, 0, 1}, Codec: "h264"},
	} {
		s.WriteFrame(f)
		for deadline := time.Now().Add(5 * time.Second); s.Stats().Frames != s.Stats().Undecodable; {
			if time.Now().After(deadline) {
				t.Fatal("frame not handled")
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	cancel()
	<-done
	if st := s.Stats(); st.Undecodable != 3 || st.LastError == "" {
		t.Fatalf("stats %+v", st)
	}
}

func TestNewSinkErrors(t *testing.T) {
	clk := clock.NewFake(t0)
	if _, err := NewSink(discard(), clk, Config{MinArea: 3}, func(Event) {}); err == nil {
		t.Fatal("bad config accepted")
	}
	if _, err := NewSink(discard(), clk, Config{}, nil); err == nil {
		t.Fatal("nil callback accepted")
	}
}
