package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fakeComponent is a Component whose behaviour is set by function fields.
type fakeComponent struct {
	name  string
	run   func(ctx context.Context, n int) error
	runs  atomic.Int32
	ready chan struct{}
}

func (f *fakeComponent) Name() string { return f.name }
func (f *fakeComponent) Run(ctx context.Context) error {
	n := int(f.runs.Add(1))
	return f.run(ctx, n)
}

type readyComponent struct{ *fakeComponent }

func (r readyComponent) Ready() <-chan struct{} { return r.ready }

func fastOpts() SupervisorOptions {
	return SupervisorOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, ReadyTimeout: 5 * time.Second}
}

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

func TestFailingComponentRestartsOthersKeepRunning(t *testing.T) {
	s := NewSupervisor(quietLog(), fastOpts())
	var ticks atomic.Int64
	camera := &fakeComponent{name: "camera", run: func(ctx context.Context, n int) error {
		if n == 3 {
			panic("driver bug")
		}
		return errors.New("no frames: device unplugged")
	}}
	telemetry := &fakeComponent{name: "telemetry", run: func(ctx context.Context, n int) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			default:
				ticks.Add(1)
				time.Sleep(time.Millisecond)
			}
		}
	}}
	must(t, s.Add(camera))
	must(t, s.Add(telemetry))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, 5*time.Second) }()

	waitFor(t, "camera to be restarted 5 times", func() bool { return camera.runs.Load() >= 6 })
	before := ticks.Load()
	waitFor(t, "telemetry to keep working", func() bool { return ticks.Load() > before+5 })

	st := statusOf(t, s, "camera")
	if st.Restarts < 5 || st.LastError == "" {
		t.Errorf("camera status %+v: want restarts and the last error", st)
	}
	if tel := statusOf(t, s, "telemetry"); tel.State != StateRunning || tel.Restarts != 0 || telemetry.runs.Load() != 1 {
		t.Errorf("telemetry was disturbed: %+v, runs %d", tel, telemetry.runs.Load())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, st := range s.Statuses() {
		if st.State != StateStopped {
			t.Errorf("%s: state %s after shutdown", st.Name, st.State)
		}
	}
}

func TestPanicBecomesError(t *testing.T) {
	s := NewSupervisor(quietLog(), fastOpts())
	c := &fakeComponent{name: "c", run: func(ctx context.Context, n int) error {
		if n == 1 {
			panic("boom")
		}
		<-ctx.Done()
		return nil
	}}
	must(t, s.Add(c))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, time.Second) }()
	waitFor(t, "restart after panic", func() bool { return c.runs.Load() == 2 })
	if st := statusOf(t, s, "c"); st.LastError != "panic: boom" {
		t.Errorf("last error %q", st.LastError)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestShutdownOrder: dependents stop before what they depend on, so a
// recorder can flush into a store that is still open.
func TestShutdownOrderAndDependencies(t *testing.T) {
	s := NewSupervisor(quietLog(), fastOpts())
	var mu sync.Mutex
	var events []string
	record := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	store := readyComponent{&fakeComponent{name: "store", ready: make(chan struct{})}}
	store.run = func(ctx context.Context, n int) error {
		record("store started")
		close(store.ready)
		<-ctx.Done()
		record("store stopped")
		return nil
	}
	recorder := &fakeComponent{name: "recorder", run: func(ctx context.Context, n int) error {
		record("recorder started")
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // flushing
		record("recorder flushed")
		return nil
	}}
	must(t, s.Add(store))
	must(t, s.Add(recorder, "store"))
	if err := s.Add(&fakeComponent{name: "x"}, "missing"); err == nil {
		t.Error("unknown dependency accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, 5*time.Second) }()
	waitFor(t, "recorder to start", func() bool { return recorder.runs.Load() == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []string{"store started", "recorder started", "recorder flushed", "store stopped"}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != len(want) {
		t.Fatalf("events %v, want %v", events, want)
	}
	for i := range want {
		if events[i] != want[i] {
			t.Fatalf("events %v, want %v", events, want)
		}
	}
}

func TestShutdownIsBounded(t *testing.T) {
	s := NewSupervisor(quietLog(), fastOpts())
	release := make(chan struct{})
	defer close(release)
	stuck := &fakeComponent{name: "stuck", run: func(ctx context.Context, n int) error {
		<-release // ignores ctx, like a driver blocked in a syscall
		return nil
	}}
	must(t, s.Add(stuck))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, 100*time.Millisecond) }()
	waitFor(t, "start", func() bool { return stuck.runs.Load() == 1 })
	start := time.Now()
	cancel()
	err := <-done
	if !errors.Is(err, ErrShutdownTimeout) {
		t.Fatalf("got %v, want ErrShutdownTimeout", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("shutdown took %s despite a 100ms bound", el)
	}
	if ExitCode(err) != ExitTimeout {
		t.Errorf("exit code %d", ExitCode(err))
	}
}

func statusOf(t *testing.T, s *Supervisor, name string) Status {
	t.Helper()
	for _, st := range s.Statuses() {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("no component %q", name)
	return Status{}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
