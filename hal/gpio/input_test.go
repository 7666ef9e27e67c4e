package gpio

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/outpost-cctv/outpost/internal/clock"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// syncPin is a fake pin that counts the edges Run has finished with: an
// edge is done with when Run waits for the next one, having read the clock.
type syncPin struct {
	*gpiotest.Pin
	mu        sync.Mutex
	got       bool
	processed int
	calls     int
}

func (p *syncPin) WaitForEdge(d time.Duration) bool {
	p.mu.Lock()
	p.calls++
	if p.got {
		p.processed++
		p.got = false
	}
	p.mu.Unlock()
	ok := p.Pin.WaitForEdge(d)
	if ok {
		p.mu.Lock()
		p.got = true
		p.mu.Unlock()
	}
	return ok
}

func (p *syncPin) done() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.processed
}

func (p *syncPin) waits() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// rig is an input on a fake pin, running.
type rig struct {
	t      *testing.T
	pin    *syncPin
	clk    *clock.Fake
	in     *Input
	events chan Event
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg InputConfig, level pgpio.Level) *rig {
	t.Helper()
	// An unbuffered channel: each edge sent has been taken by WaitForEdge
	// when the send returns.
	pin := &syncPin{Pin: &gpiotest.Pin{N: cfg.Pin, L: level, EdgesChan: make(chan pgpio.Level)}}
	clk := clock.NewFake(t0)
	in, err := NewInput(pin, cfg, clk, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	in.poll = 2 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, pin: pin, clk: clk, in: in, events: make(chan Event), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- in.Run(ctx, r.events) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

func (r *rig) next() Event {
	r.t.Helper()
	select {
	case ev := <-r.events:
		return ev
	case err := <-r.done:
		r.t.Fatalf("Run returned %v, want an event", err)
	case <-time.After(5 * time.Second):
		r.t.Fatal("no event")
	}
	return Event{}
}

// settle waits until Run has looked at the clock after the last Advance
// and come back to wait for edges without sending an event: a wait begun
// after the Advance has ended and the next begun.
func (r *rig) settle() {
	r.t.Helper()
	want := r.pin.waits() + 2
	deadline := time.Now().Add(5 * time.Second)
	for r.pin.waits() < want {
		select {
		case ev := <-r.events:
			r.t.Fatalf("unexpected event %+v", ev)
		case <-time.After(100 * time.Microsecond):
		}
		if time.Now().After(deadline) {
			r.t.Fatal("Run never came back to wait for edges")
		}
	}
}

func (r *rig) none(d time.Duration) {
	r.t.Helper()
	select {
	case ev := <-r.events:
		r.t.Fatalf("unexpected event %+v", ev)
	case <-time.After(d):
	}
}

// edges sends edges to the pin, each once Run is done with the last.
func (r *rig) edges(levels ...pgpio.Level) {
	r.t.Helper()
	for _, l := range levels {
		want := r.pin.done() + 1
		r.pin.EdgesChan <- l
		deadline := time.Now().Add(5 * time.Second)
		for r.pin.done() < want {
			if time.Now().After(deadline) {
				r.t.Fatal("Run never came back for the next edge")
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
}

func TestDebounce(t *testing.T) {
	pir := InputConfig{Pin: "GPIO17", Pull: PullDown, Debounce: 50 * time.Millisecond}
	r := start(t, pir, pgpio.Low)
	if ev := r.next(); ev != (Event{Time: t0, Active: false, Initial: true}) {
		t.Fatalf("first event %+v, want the initial inactive state", ev)
	}
	if a, known := r.in.Active(); a || !known {
		t.Fatalf("Active = %v, %v", a, known)
	}

	// A burst of bounces, then quiet: one event, at the first edge.
	r.edges(pgpio.High, pgpio.Low, pgpio.High, pgpio.Low, pgpio.High)
	r.settle() // the level has not held for the debounce: no event
	r.clk.Advance(50 * time.Millisecond)
	if ev := r.next(); ev != (Event{Time: t0, Active: true}) {
		t.Fatalf("event %+v, want one active event at the first edge", ev)
	}
	if a, _ := r.in.Active(); !a {
		t.Error("Active = false after the change")
	}
	r.none(20 * time.Millisecond)

	// Bounces that come back to the level held: no event.
	r.clk.Advance(time.Second)
	r.edges(pgpio.Low, pgpio.High)
	r.clk.Advance(50 * time.Millisecond)
	r.settle()

	// Edges spread over longer than the debounce, each before the level
	// held: still one event, once it holds.
	r.edges(pgpio.Low)
	r.clk.Advance(30 * time.Millisecond)
	r.edges(pgpio.High)
	r.clk.Advance(30 * time.Millisecond)
	r.edges(pgpio.Low)
	r.settle()
	r.clk.Advance(50 * time.Millisecond)
	want := Event{Time: t0.Add(time.Second + 100*time.Millisecond), Active: false}
	if ev := r.next(); ev != want {
		t.Fatalf("event %+v, want %+v", ev, want)
	}
}

func TestActiveLow(t *testing.T) {
	// A tamper switch read active-low: the pin pulled up reads high while
	// the cabinet is closed.
	r := start(t, InputConfig{Pin: "GPIO22", Pull: PullUp, ActiveLow: true}, pgpio.Low)
	if ev := r.next(); ev.Active || !ev.Initial {
		t.Fatalf("initial %+v, want inactive (pulled up: high)", ev)
	}
	r.edges(pgpio.Low)
	r.clk.Advance(DefaultDebounce)
	if ev := r.next(); !ev.Active || ev.Initial {
		t.Fatalf("event %+v, want active on low", ev)
	}
	r.edges(pgpio.High)
	r.clk.Advance(DefaultDebounce)
	if ev := r.next(); ev.Active {
		t.Fatalf("event %+v, want inactive on high", ev)
	}
}

// TestMissedEdge checks a change with no edge reported is caught by
// sampling.
func TestMissedEdge(t *testing.T) {
	r := start(t, InputConfig{Pin: "GPIO17", Pull: PullNone}, pgpio.Low)
	r.next()
	if err := r.pin.Out(pgpio.High); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-r.events:
			if !ev.Active {
				t.Fatalf("event %+v, want active", ev)
			}
			return
		case <-deadline:
			t.Fatal("the change was never seen")
		case <-time.After(5 * time.Millisecond):
			r.clk.Advance(10 * time.Millisecond)
		}
	}
}

func TestCancel(t *testing.T) {
	t.Run("waiting for edges", func(t *testing.T) {
		r := start(t, InputConfig{Pin: "GPIO17"}, pgpio.Low)
		r.next()
		r.cancel()
		select {
		case err := <-r.done:
			r.done <- err // for the cleanup
			if err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return")
		}
	})
	t.Run("blocked sending", func(t *testing.T) {
		r := start(t, InputConfig{Pin: "GPIO17"}, pgpio.Low)
		time.Sleep(10 * time.Millisecond) // Run is blocked sending the initial event
		r.cancel()
		select {
		case err := <-r.done:
			r.done <- err
			if err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return")
		}
	})
}

func TestRunTwice(t *testing.T) {
	r := start(t, InputConfig{Pin: "GPIO17"}, pgpio.Low)
	r.next()
	err := r.in.Run(context.Background(), make(chan Event))
	if err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second Run = %v", err)
	}
}

// brokenPin fails to be set up, as a pin claimed by another driver does.
type brokenPin struct{ gpiotest.Pin }

func (p *brokenPin) In(pgpio.Pull, pgpio.Edge) error { return errors.New("device or resource busy") }
func (p *brokenPin) Out(pgpio.Level) error           { return errors.New("device or resource busy") }

func TestSetupFails(t *testing.T) {
	in, err := NewInput(&brokenPin{}, InputConfig{Pin: "GPIO4"}, clock.NewFake(t0), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	err = in.Run(context.Background(), make(chan Event, 1))
	if err == nil || !strings.Contains(err.Error(), "input GPIO4") || !strings.Contains(err.Error(), "busy") || !strings.Contains(err.Error(), "gpio group") {
		t.Fatalf("Run = %v", err)
	}
}

func TestInputConfig(t *testing.T) {
	tests := []struct {
		cfg     InputConfig
		wantErr string
	}{
		{InputConfig{Pin: "GPIO17"}, ""},
		{InputConfig{Pin: "P1_11", Pull: PullUp, ActiveLow: true, Debounce: time.Second}, ""},
		{InputConfig{}, "no pin"},
		{InputConfig{Pin: "GPIO17", Pull: "high"}, `pull "high"`},
		{InputConfig{Pin: "GPIO17", Debounce: -time.Millisecond}, "debounce -1ms"},
		{InputConfig{Pin: "GPIO17", Debounce: time.Minute}, "must be 0-10s"},
	}
	for _, tt := range tests {
		cfg := tt.cfg
		err := cfg.Validate()
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.cfg, err, tt.wantErr)
		}
		if err == nil && cfg.Debounce <= 0 {
			t.Errorf("Validate left debounce %s", cfg.Debounce)
		}
	}
	if _, err := NewInput(nil, InputConfig{Pin: "GPIO99"}, clock.NewFake(t0), slog.New(slog.DiscardHandler)); err == nil {
		t.Error("NewInput accepted a nil pin")
	}
}
