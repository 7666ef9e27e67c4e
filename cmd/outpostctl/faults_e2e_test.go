package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/control"
	"github.com/outpost-cctv/outpost/internal/testbroker"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// watchEvents collects a unit's events until the test ends.
type eventLog struct {
	mu sync.Mutex
	ev []wire.Event
}

func watchEvents(t *testing.T, c *control.Client, unit string) *eventLog {
	t.Helper()
	l := &eventLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Watch(ctx, unit, func(e control.Event) {
			if e.Topic != "events" {
				return
			}
			var ev wire.Event
			if json.Unmarshal(e.Payload, &ev) == nil {
				l.mu.Lock()
				l.ev = append(l.ev, ev)
				l.mu.Unlock()
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

// waitEvent waits for an event satisfying ok and returns it.
func (l *eventLog) wait(t *testing.T, d time.Duration, what string, ok func(wire.Event) bool) wire.Event {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for _, e := range l.ev {
			if ok(e) {
				l.mu.Unlock()
				return e
			}
		}
		l.mu.Unlock()
		time.Sleep(50 * time.Millisecond) // polling the collected events, not waiting for an outcome
	}
	t.Fatalf("no %s event within %s", what, d)
	return wire.Event{}
}

// TestBatteryDrainWalksThePowerModes drains the simulated battery fast:
// the unit goes to eco, then critical (camera off, heartbeat only), then
// stops cleanly at the shutdown level with exit code 5, reporting each
// step.
func TestBatteryDrainWalksThePowerModes(t *testing.T) {
	t.Parallel()
	b := testbroker.Start(t, testbroker.Options{})
	drain := `power:
  sim:
    capacity_wh: 20
    panel_peak_w: 0
    load_w: 8
    initial_soc: 40
    time_scale: 100
  policy:
    shutdown_soc: 2
telemetry:
  power:
    interval: 1s
    max_interval: 5s
`
	_, cmd, _ := runUnit(t, b, "batt-1", drain)
	c := dialControl(t, b)
	events := watchEvents(t, c, "batt-1")
	mode := func(m string) func(wire.Event) bool {
		return func(e wire.Event) bool { return e.Kind == "power_mode" && e.Data["mode"] == m }
	}
	eco := events.wait(t, 60*time.Second, "power_mode eco", mode("eco"))
	t.Logf("%s", eco.Message)
	if !strings.Contains(eco.Message, "below the eco level of 30%") || eco.Severity != wire.SeverityWarning {
		t.Errorf("eco event %+v", eco)
	}
	crit := events.wait(t, 60*time.Second, "power_mode critical", mode("critical"))
	t.Logf("%s", crit.Message)
	// The health says so, and outpostctl shows it.
	deadline := time.Now().Add(20 * time.Second)
	var out string
	for time.Now().Before(deadline) {
		out, _, _ = ctl(t, b, "health", "batt-1")
		if strings.Contains(out, "power mode critical") && strings.Contains(out, "battery_critical") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("outpostctl health:\n%s", out)
	if !strings.Contains(out, "power mode critical") || !strings.Contains(out, "battery_critical") || !strings.Contains(out, "what to do: charge or replace the battery") {
		t.Fatalf("health does not show the critical mode")
	}
	// The shutdown level: a clean stop, exit code 5.
	events.wait(t, 90*time.Second, "power_mode shutdown", mode("shutdown"))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not stop at the shutdown level")
	}
	if code := cmd.ProcessState.ExitCode(); code != 5 {
		t.Fatalf("exit code %d, want 5", code)
	}
}

// TestCameraFaultsRaisedAndCleared freezes, then blacks out, the demo's
// simulated camera (sim.camera) and watches the unit's retained health:
// each fault is raised within a minute and cleared when the picture is
// back.
func TestCameraFaultsRaisedAndCleared(t *testing.T) {
	t.Parallel() // mostly waiting out the faults' hold times
	b := testbroker.Start(t, testbroker.Options{})
	// Holds shorter than the defaults (30 s and 20 s): the test waits less.
	cfg := filepath.Join(t.TempDir(), "outpost.yaml")
	if err := os.WriteFile(cfg, []byte("faults:\n  camera_frozen: 10s\n  camera_black: 10s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unit(t, b, "cam-faults", "--camera", "sim", "--config", cfg)
	waitOnline(t, b, "cam-faults")
	c := dialControl(t, b)
	health := func(kind string, want bool, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for time.Since(start) < within {
			h, err := c.Health(context.Background(), "cam-faults")
			if err == nil {
				has := false
				for _, f := range h.Faults {
					has = has || f.Kind == kind
				}
				if has == want {
					return time.Since(start)
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Fatalf("%s %s within %s", kind, map[bool]string{true: "not raised", false: "not cleared"}[want], within)
		return 0
	}
	inject := func(fault string) {
		t.Helper()
		if err := c.Call(context.Background(), "cam-faults", "sim.camera", map[string]string{"fault": fault}, nil); err != nil {
			t.Fatal(err)
		}
	}
	inject("frozen")
	took := health("camera_frozen", true, 60*time.Second)
	t.Logf("camera_frozen raised on health %s after the camera froze", took.Round(time.Second))
	inject("none")
	took = health("camera_frozen", false, 60*time.Second)
	t.Logf("camera_frozen cleared %s after the picture came back", took.Round(time.Second))
	inject("black")
	took = health("camera_black", true, 60*time.Second)
	t.Logf("camera_black raised %s after the picture went black", took.Round(time.Second))
	if out, _, _ := ctl(t, b, "units"); !strings.Contains(out, "camera_black") {
		t.Errorf("outpostctl units does not show the worst fault:\n%s", out)
	}
	inject("none")
	health("camera_black", false, 60*time.Second)
}
