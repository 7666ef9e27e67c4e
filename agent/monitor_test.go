package agent

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/hal/modem"
	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// rig is a monitor over inputs the test sets, with a fake clock and the
// events it publishes.
type monRig struct {
	t      *testing.T
	clk    *clock.Fake
	m      *Monitor
	faults *Faults

	mu       sync.Mutex
	events   []wire.Event
	last     time.Time
	store    []footage.Fault
	stats    footage.Stats
	pw       power.Reading
	pwErr    error
	sig      modem.Signal
	policy   wire.DataPolicy
	statuses []Status
	tamper   bool
	mode     string
	synced   bool
	mono     time.Time // the monotonic clock, advanced with the fake one unless the test steps the wall clock
}

func newMonRig(t *testing.T) *monRig {
	r := &monRig{t: t, clk: clock.NewFake(time.Date(2026, 12, 1, 8, 0, 0, 0, time.Local)), mode: ModeNormal, synced: true}
	r.last = r.clk.Now()
	r.faults = NewFaults(r.clk, slog.New(slog.DiscardHandler), func(_ context.Context, _ uplink.Priority, e wire.Event) {
		r.mu.Lock()
		r.events = append(r.events, e)
		r.mu.Unlock()
	})
	in := MonitorInputs{
		LastFrame:   func() time.Time { return r.last },
		StoreFaults: func() []footage.Fault { return r.store },
		StoreStats:  func() footage.Stats { return r.stats },
		Power:       func() (power.Reading, error) { return r.pw, r.pwErr },
		Signal:      func() (modem.Signal, error) { return r.sig, nil },
		Policy:      func() wire.DataPolicy { return r.policy },
		Statuses:    func() []Status { return r.statuses },
		Tamper:      func() (bool, bool) { return r.tamper, true },
		Synced:      func() (bool, bool) { return r.synced, true },
		PowerMode:   func() string { return r.mode },
	}
	rsrp := -90.0
	r.sig = modem.Signal{Registered: true, RSRPdBm: &rsrp}
	r.pw = soc(80)
	r.m = NewMonitor(config.Default().Faults, config.Default().Retention, in, r.faults, r.clk, slog.New(slog.DiscardHandler))
	r.mono = r.clk.Now()
	r.m.mono = func() time.Time { return r.mono }
	return r
}

// run advances the clock by d in check intervals, frames arriving unless
// the camera is down, and returns the kinds raised and cleared meanwhile.
func (r *monRig) run(d time.Duration, framesArrive bool) (raised, cleared []string) {
	r.mu.Lock()
	n := len(r.events)
	r.mu.Unlock()
	step := 5 * time.Second
	for el := time.Duration(0); el < d; el += step {
		r.clk.Advance(step)
		r.mono = r.mono.Add(step)
		if framesArrive {
			r.last = r.clk.Now()
		}
		r.m.Check(r.clk.Now())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events[n:] {
		switch e.Kind {
		case KindFault:
			raised = append(raised, e.Data["fault"].(string))
		case KindFaultCleared:
			cleared = append(cleared, e.Data["fault"].(string))
		}
	}
	return raised, cleared
}

func expectKinds(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s: %v, want %v", what, got, want)
	}
}

func TestMonitorCameraNoFrames(t *testing.T) {
	r := newMonRig(t)
	raised, _ := r.run(20*time.Second, false)
	expectKinds(t, "20 s without frames", raised)
	raised, _ = r.run(15*time.Second, false)
	expectKinds(t, "35 s without frames", raised, FaultCameraNoFrames)
	f := r.faults.List()
	if len(f) != 1 || f[0].Severity != wire.FaultCritical || !strings.Contains(f[0].Message, "nothing is being recorded") {
		t.Fatalf("faults %+v", f)
	}
	_, cleared := r.run(30*time.Second, true)
	expectKinds(t, "frames back", cleared, FaultCameraNoFrames)
}

func TestMonitorNoFlappingOnANormalDay(t *testing.T) {
	r := newMonRig(t)
	r.stats = footage.Stats{ProjectedRetentionDays: 40}
	raised, _ := r.run(24*time.Hour, true)
	expectKinds(t, "a normal day", raised)
}

func TestMonitorStorageAndRetention(t *testing.T) {
	r := newMonRig(t)
	r.store = []footage.Fault{{Code: footage.FaultStorage, Message: "write failed: input/output error", Active: true}}
	r.stats = footage.Stats{ProjectedRetentionDays: 12}
	raised, _ := r.run(10*time.Second, true)
	expectKinds(t, "storage error", raised, storageFaultKindPrefix+footage.FaultStorage)
	raised, _ = r.run(time.Hour, true)
	expectKinds(t, "an hour at 12 days of retention", raised, FaultRetentionShort)
	for _, f := range r.faults.List() {
		if f.Kind == FaultRetentionShort && f.Message != "storage: 12 days of footage at the current rate; target 28" {
			t.Errorf("retention message %q", f.Message)
		}
	}
	r.store = nil
	_, cleared := r.run(10*time.Second, true)
	expectKinds(t, "storage error gone", cleared, storageFaultKindPrefix+footage.FaultStorage)
}

func TestMonitorLink(t *testing.T) {
	r := newMonRig(t)
	weak := -115.0
	r.sig.RSRPdBm = &weak
	raised, _ := r.run(29*time.Minute, true)
	expectKinds(t, "29 min of weak signal", raised)
	raised, _ = r.run(2*time.Minute, true)
	expectKinds(t, "31 min of weak signal", raised, FaultWeakSignal)
	// Back a little above the threshold: within the hysteresis, stays.
	edge := -108.0
	r.sig.RSRPdBm = &edge
	_, cleared := r.run(time.Hour, true)
	expectKinds(t, "at -108 dBm", cleared)
	good := -95.0
	r.sig.RSRPdBm = &good
	_, cleared = r.run(11*time.Minute, true)
	expectKinds(t, "at -95 dBm", cleared, FaultWeakSignal)
	r.policy = wire.PolicyExhausted
	raised, _ = r.run(5*time.Second, true)
	expectKinds(t, "budget used up", raised, FaultDataBudget)
}

func TestMonitorPowerAndAgent(t *testing.T) {
	r := newMonRig(t)
	r.mode = ModeEco
	raised, _ := r.run(5*time.Second, true)
	expectKinds(t, "eco", raised, FaultBatteryLow)
	r.mode = ModeCritical
	raised, cleared := r.run(5*time.Second, true)
	expectKinds(t, "critical", raised, FaultBatteryCritical)
	expectKinds(t, "critical clears low", cleared, FaultBatteryLow)
	r.mode = ModeNormal
	r.pwErr = errors.New("vedirect: nothing received")
	r.tamper = true
	raised, _ = r.run(11*time.Minute, true)
	expectKinds(t, "power unreadable and tamper", raised, FaultTamper, FaultPowerUnreadable)
	t0 := r.clk.Now()
	r.statuses = []Status{{Name: "camera", State: StateRestarting, Since: t0, Restarts: 3}}
	raised, _ = r.run(11*time.Minute, true)
	expectKinds(t, "a component failing for 11 min", raised, FaultComponentFailing)
	r.synced = false
	raised, _ = r.run(31*time.Minute, true)
	expectKinds(t, "clock unsynchronised for 31 min", raised, FaultClockUnsynced)
}

func TestMonitorClockStep(t *testing.T) {
	r := newMonRig(t)
	r.run(time.Minute, true)
	r.clk.Advance(-time.Hour) // NTP steps the wall clock back an hour
	raised, _ := r.run(5*time.Second, true)
	expectKinds(t, "a step of an hour", raised, FaultClockStepped)
	if f := r.faults.List(); len(f) != 1 || !strings.Contains(f[0].Message, "stepped by 1h0m0s") {
		t.Fatalf("faults %+v", f)
	}
	_, cleared := r.run(9*time.Minute, true)
	expectKinds(t, "9 min steady", cleared)
	_, cleared = r.run(2*time.Minute, true)
	expectKinds(t, "11 min steady", cleared, FaultClockStepped)
}

func TestMonitorChargeControllerError(t *testing.T) {
	r := newMonRig(t)
	r.pw.ControllerError = "battery voltage too high"
	raised, _ := r.run(time.Minute+5*time.Second, true)
	expectKinds(t, "controller error", raised, FaultChargeController)
	r.pw.ControllerError = ""
	_, cleared := r.run(5*time.Minute+5*time.Second, true)
	expectKinds(t, "controller error gone", cleared, FaultChargeController)
}
