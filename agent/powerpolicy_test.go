package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/hal/power"
)

func soc(v float64) power.Reading { return power.Reading{SOCPercent: &v} }
func volts(v float64) power.Reading {
	return power.Reading{BatteryV: &v}
}

func TestPowerPolicyWalksDownAndBack(t *testing.T) {
	p := newPowerPolicy(config.Default().Power.Policy) // eco 30, critical 15, shutdown 5, hysteresis 10
	var modes []string
	var reasons []string
	for _, v := range []float64{80, 50, 31, 29, 29, 28, 20, 14, 14, 10, 20, 24, 26, 30, 39, 41, 60} {
		if m, why, ok := p.observe(soc(v)); ok {
			modes = append(modes, m)
			reasons = append(reasons, why)
		}
	}
	if got := strings.Join(modes, " "); got != "eco critical eco normal" {
		t.Fatalf("modes %q, want eco critical eco normal; reasons %q", got, reasons)
	}
	if reasons[0] != "state of charge 29% is below the eco level of 30%" || !strings.Contains(reasons[2], "back above the critical level of 15% (with 10% hysteresis)") {
		t.Errorf("reasons %q", reasons)
	}
	// To shutdown, two readings in a row.
	for _, v := range []float64{10, 10, 4} {
		p.observe(soc(v))
	}
	if p.mode != ModeCritical {
		t.Fatalf("one reading below shutdown: %s", p.mode)
	}
	if m, _, ok := p.observe(soc(4)); !ok || m != ModeShutdown {
		t.Fatalf("two readings below shutdown: %s %v", m, ok)
	}
}

func TestPowerPolicyNoFlappingAtALevel(t *testing.T) {
	p := newPowerPolicy(config.Default().Power.Policy)
	changes := 0
	// A battery hovering around the eco level for a day, a reading a minute.
	for i := range 24 * 60 {
		v := 30.0 + []float64{-0.6, -0.4, 0.4, 0.8}[i%4]
		if _, _, ok := p.observe(soc(v)); ok {
			changes++
		}
	}
	if changes != 1 {
		t.Fatalf("%d mode changes for a battery hovering at the eco level, want 1 (into eco, and staying)", changes)
	}
}

func TestPowerPolicyByVoltageAndUnknown(t *testing.T) {
	p := newPowerPolicy(config.Default().Power.Policy) // eco 12.1 V, critical 11.8 V
	p.observe(volts(12.0))
	if m, why, ok := p.observe(volts(11.95)); !ok || m != ModeEco || why != "battery 11.95 V is below the eco level of 12.1 V" {
		t.Fatalf("%s %q %v", m, why, ok)
	}
	if _, _, ok := p.observe(power.Reading{}); ok || p.mode != ModeEco {
		t.Fatalf("an empty reading changed the mode to %s", p.mode)
	}
}

func TestDerive(t *testing.T) {
	c := config.Default()
	eco := derive(c, ModeEco)
	if eco.Camera.FPS != 5 || eco.Recording.Mode != config.ModeEvents || eco.Telemetry.Power.Interval.D() != 4*time.Minute {
		t.Errorf("eco: fps %d, mode %s, power interval %s", eco.Camera.FPS, eco.Recording.Mode, eco.Telemetry.Power.Interval)
	}
	crit := derive(c, ModeCritical)
	if crit.Telemetry.System.Interval != c.Telemetry.System.MaxInterval || crit.Telemetry.Power.Interval != c.Telemetry.Power.Interval {
		t.Errorf("critical: system %s, power %s", crit.Telemetry.System.Interval, crit.Telemetry.Power.Interval)
	}
	if err := eco.Validate(); err != nil {
		t.Errorf("eco config invalid: %v", err)
	}
	if err := crit.Validate(); err != nil {
		t.Errorf("critical config invalid: %v", err)
	}
}
