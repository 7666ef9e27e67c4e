package sim

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/hal/gpio"
	"github.com/outpost-cctv/outpost/internal/clock"
)

var t0 = time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)

type runner interface {
	Run(ctx context.Context, out chan<- gpio.Event) error
}

// run starts r and returns its events; the test's end cancels it and waits
// for it to return.
func run(t *testing.T, r runner) <-chan gpio.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan gpio.Event)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, events) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return events
}

func next(t *testing.T, events <-chan gpio.Event) gpio.Event {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return gpio.Event{}
}

func none(t *testing.T, events <-chan gpio.Event) {
	t.Helper()
	select {
	case ev := <-events:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(20 * time.Millisecond):
	}
}

// waitTimers waits until n timers or tickers are pending on clk.
func waitTimers(t *testing.T, clk *clock.Fake, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for clk.Waiters() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d timers pending, want %d", clk.Waiters(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func TestPIRFire(t *testing.T) {
	clk := clock.NewFake(t0)
	p, err := NewPIR(PIRConfig{Hold: 5 * time.Second}, clk)
	if err != nil {
		t.Fatal(err)
	}
	events := run(t, p)
	if ev := next(t, events); ev != (gpio.Event{Time: t0, Initial: true}) {
		t.Fatalf("initial %+v", ev)
	}
	p.Fire()
	if ev := next(t, events); ev != (gpio.Event{Time: t0, Active: true}) {
		t.Fatalf("event %+v, want motion", ev)
	}
	waitTimers(t, clk, 1)
	clk.Advance(3 * time.Second)
	p.Fire() // motion goes on: no event, the hold starts again
	none(t, events)
	clk.Advance(3 * time.Second)
	none(t, events)
	clk.Advance(2 * time.Second)
	if ev := next(t, events); ev != (gpio.Event{Time: t0.Add(8 * time.Second)}) {
		t.Fatalf("event %+v, want motion ended 5 s after the last trigger", ev)
	}
}

func TestPIRSchedule(t *testing.T) {
	clk := clock.NewFake(t0)
	p, err := NewPIR(PIRConfig{Every: time.Minute}, clk)
	if err != nil {
		t.Fatal(err)
	}
	events := run(t, p)
	next(t, events)
	for i := range 2 {
		waitTimers(t, clk, 1)
		clk.Advance(t0.Add(time.Duration(i+1) * time.Minute).Sub(clk.Now()))
		start := t0.Add(time.Duration(i+1) * time.Minute)
		if ev := next(t, events); ev != (gpio.Event{Time: start, Active: true}) {
			t.Fatalf("event %+v, want motion at %v", ev, start)
		}
		waitTimers(t, clk, 2)
		clk.Advance(DefaultHold)
		if ev := next(t, events); ev != (gpio.Event{Time: start.Add(DefaultHold)}) {
			t.Fatalf("event %+v, want motion ended", ev)
		}
	}
}

func TestPIRConfig(t *testing.T) {
	if _, err := NewPIR(PIRConfig{Hold: -time.Second}, clock.NewFake(t0)); err == nil {
		t.Error("NewPIR accepted a negative hold")
	}
}

func TestTamper(t *testing.T) {
	clk := clock.NewFake(t0)
	tm := NewTamper(clk, false)
	tm.SetOpen(true) // before Run: part of the initial state
	events := run(t, tm)
	if ev := next(t, events); ev != (gpio.Event{Time: t0, Active: true, Initial: true}) {
		t.Fatalf("initial %+v", ev)
	}
	clk.Advance(time.Second)
	tm.SetOpen(false)
	tm.SetOpen(false) // no change
	clk.Advance(time.Second)
	tm.Toggle()
	for i, want := range []gpio.Event{{Time: t0.Add(time.Second)}, {Time: t0.Add(2 * time.Second), Active: true}} {
		if ev := next(t, events); ev != want {
			t.Fatalf("event %d: %+v, want %+v", i, ev, want)
		}
	}
	none(t, events)
	if open, known := tm.Active(); !open || !known {
		t.Errorf("Active = %v, %v", open, known)
	}
	if err := tm.Run(context.Background(), nil); !errors.Is(err, errRunning) {
		t.Errorf("second Run = %v", err)
	}
}

func TestRelay(t *testing.T) {
	clk := clock.NewFake(t0)
	r := NewRelay(clk)
	if r.On() {
		t.Fatal("a new relay is on")
	}
	if err := r.Set(true); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	broken := errors.New("gpio: output GPIO27: set off: device or resource busy")
	r.FailWith(broken)
	if err := r.Set(false); !errors.Is(err, broken) {
		t.Fatalf("Set = %v", err)
	}
	r.FailWith(nil)
	if err := r.Set(false); err != nil {
		t.Fatal(err)
	}
	want := []RelayChange{{t0, true}, {t0.Add(time.Minute), false}}
	got := r.History()
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || r.On() {
		t.Errorf("history %+v, on %v; want %+v, off", got, r.On(), want)
	}
}

func TestCancelWhileSending(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p, _ := NewPIR(PIRConfig{}, clock.NewFake(t0))
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, make(chan gpio.Event)) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}
