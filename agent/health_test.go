package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/internal/clock"
)

func TestHealthTracker(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	h := newHealthTracker(10*time.Minute, time.Minute)
	run := func(since time.Time, restarts int) []Status {
		return []Status{{Name: "uplink", State: StateRunning, Since: t0}, {Name: "capture", State: StateRunning, Since: since, Restarts: restarts}}
	}
	loop := func(at time.Time, restarts int) []Status {
		return []Status{{Name: "uplink", State: StateRunning, Since: t0}, {Name: "capture", State: StateRestarting, Since: at, Restarts: restarts}}
	}
	if u := h.update(run(t0, 0), t0); len(u) != 0 {
		t.Fatalf("healthy start: %v", u)
	}
	// capture crash-loops: running a few seconds between restarts.
	restarts := 0
	for m := 1; m <= 12; m++ {
		at := t0.Add(time.Duration(m) * time.Minute)
		restarts++
		u := h.update(loop(at, restarts), at)
		u2 := h.update(run(at.Add(5*time.Second), restarts), at.Add(10*time.Second))
		failing := m-1 >= 10 // failing since minute 1
		if (len(u) > 0 || len(u2) > 0) != failing {
			t.Fatalf("minute %d: unhealthy %v %v, want %v", m, u, u2, failing)
		}
	}
	// It recovers: running for a minute clears it.
	at := t0.Add(13 * time.Minute)
	if u := h.update(run(at, restarts), at); len(u) != 1 {
		t.Fatalf("just restarted: %v", u)
	}
	if u := h.update(run(at, restarts), at.Add(time.Minute)); len(u) != 0 {
		t.Fatalf("after a minute running: %v", u)
	}
}

// TestHardwareWatchdogFeedsAFIFO runs the watchdog component against a
// named pipe standing in for /dev/watchdog: it is fed while healthy, and
// disarmed with the magic character when the agent stops.
func TestHardwareWatchdogFeedsAFIFO(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "watchdog")
	if err := syscall.Mkfifo(dev, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	got := make(chan string, 1)
	fed := make(chan struct{})
	go func() {
		f, err := os.Open(dev)
		if err != nil {
			got <- err.Error()
			return
		}
		defer f.Close()
		var all []byte
		b := make([]byte, 1)
		for {
			if _, err := f.Read(b); err != nil {
				got <- string(all)
				return
			}
			if all = append(all, b[0]); b[0] == '\n' && len(all) == 1 {
				close(fed)
			}
		}
	}()
	clk := clock.NewFake(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	w := &HardwareWatchdog{cfg: config.Watchdog{Device: dev, Interval: config.Duration(5 * time.Second)}, clk: clk,
		log: slog.New(slog.DiscardHandler), healthy: func() bool { return true }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	// Advance the clock until the device has been fed once.
	deadline := time.Now().Add(10 * time.Second)
	for fedYet := false; !fedYet; {
		select {
		case <-fed:
			fedYet = true
		case <-time.After(time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("the watchdog was never fed")
			}
			clk.Advance(5 * time.Second)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b := <-got
	if !strings.HasPrefix(b, "\n") || !strings.HasSuffix(b, "V") {
		t.Fatalf("the device read %q: want feeds, then the magic V", b)
	}
}
