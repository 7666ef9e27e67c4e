package scene

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/hal/camera/sim"
	"github.com/outpost-cctv/outpost/internal/clock"
)

type changeLog struct {
	mu      sync.Mutex
	changes []Change
}

func (l *changeLog) add(c Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes = append(l.changes, c)
}

func (l *changeLog) get() []Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Change(nil), l.changes...)
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startSink runs s until the test ends.
func startSink(t *testing.T, s *Sink) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	})
}

// waitFor polls cond for up to 10 s of real time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSink(t *testing.T) {
	clk := clock.NewFake(t0)
	cam, err := sim.New(sim.Config{Width: 320, Height: 192, FPS: 25, MotionEvery: 10 * time.Second, MotionDuration: 2 * time.Second, Quality: 75}, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	var log changeLog
	s, err := NewSink(discard(), Config{}, Reference{}, log.add)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "scene" {
		t.Fatalf("Name = %q", s.Name())
	}
	startSink(t, s)
	f, err := cam.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ref, err := s.Commission(f)
	if err != nil || ref.Sharpness <= 0 {
		t.Fatalf("commission: %v, sharpness %v", err, ref.Sharpness)
	}
	// Two minutes of the street at 25 fps, written as the capture
	// goroutine would, waiting only for each due frame to be analysed.
	analysed := uint64(0)
	for k := 0; k < 25*120; k++ {
		clk.Advance(40 * time.Millisecond)
		if f, err = cam.Next(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
		if k%25 == 0 {
			analysed++
			waitFor(t, "a frame analysed", func() bool { return s.Stats().Analysed >= analysed })
		}
	}
	st := s.Stats()
	if st.Frames != 25*120 || st.Analysed < 115 || st.Analysed > 125 {
		t.Fatalf("stats %+v: want every frame counted and about one a second analysed", st)
	}
	if c := log.get(); len(c) != 0 {
		t.Fatalf("raised on the simulated street: %+v", c[0])
	}
	// The camera repeats its last frame: frozen.
	for k := 1; k <= 40; k++ {
		f.Time = f.Time.Add(time.Second)
		s.WriteFrame(f)
		analysed++
		waitFor(t, "a frame analysed", func() bool { return s.Stats().Analysed >= analysed })
	}
	if c := log.get(); len(c) != 1 || c[0].Kind != KindFrozen || !c[0].Active {
		t.Fatalf("changes %+v, want frozen raised", c)
	}
	if c := s.Conditions()[iFrozen]; !c.Active {
		t.Fatal("Conditions does not show frozen")
	}
}

func TestSinkBadFrames(t *testing.T) {
	s, err := NewSink(discard(), Config{}, Reference{}, func(Change) {})
	if err != nil {
		t.Fatal(err)
	}
	startSink(t, s)
	s.WriteFrame(camera.Frame{Data: []byte("garbage"), Codec: camera.MJPEG, Time: t0})
	waitFor(t, "the bad frame counted", func() bool { return s.Stats().Undecodable == 1 })
	s.WriteFrame(camera.Frame{Data: []byte{0, 0, 1}, Codec: "h264", Time: t0.Add(time.Second)})
	waitFor(t, "the H.264 frame counted", func() bool { return s.Stats().Undecodable == 2 })
	if st := s.Stats(); st.Analysed != 0 || st.LastError == "" {
		t.Fatalf("stats %+v", st)
	}
	if _, err := s.Commission(camera.Frame{Codec: "h264"}); err == nil {
		t.Fatal("commissioned from an H.264 frame")
	}
}

func TestNewSinkErrors(t *testing.T) {
	if _, err := NewSink(nil, Config{}, Reference{}, func(Change) {}); err == nil {
		t.Fatal("no logger accepted")
	}
	if _, err := NewSink(discard(), Config{}, Reference{}, nil); err == nil {
		t.Fatal("no callback accepted")
	}
	if _, err := NewSink(discard(), Config{Window: -1}, Reference{}, func(Change) {}); err == nil {
		t.Fatal("bad config accepted")
	}
	if _, err := NewSink(discard(), Config{}, testReference(), func(Change) {}); err != nil {
		t.Fatal(err)
	}
}
