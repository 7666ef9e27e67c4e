package agent

import (
	"fmt"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/hal/power"
)

// Power modes, from the battery's state of charge (or voltage).
const (
	ModeNormal   = "normal"
	ModeEco      = "eco"      // lower frame rate, events-only recording, less telemetry, no thumbnails
	ModeCritical = "critical" // heartbeat only: no capture, footage kept
	ModeShutdown = "shutdown" // a clean stop before the battery's own cut-off
)

// KindPowerMode is the event of a power mode change.
const KindPowerMode = "power_mode"

var modeRank = map[string]int{ModeNormal: 0, ModeEco: 1, ModeCritical: 2, ModeShutdown: 3}

// powerPolicy walks the power modes with hysteresis: a mode is entered
// when the battery is below its level on two readings in a row (a voltage
// dip under a momentary load is not a flat battery), and left once it is
// its hysteresis above the level.
type powerPolicy struct {
	cfg  config.PowerPolicy
	mode string
	// below counts consecutive readings calling for a lower mode.
	below int
}

func newPowerPolicy(cfg config.PowerPolicy) *powerPolicy {
	return &powerPolicy{cfg: cfg, mode: ModeNormal}
}

// observe takes a reading and returns the new mode and why, when the mode
// changes.
func (p *powerPolicy) observe(r power.Reading) (mode, reason string, changed bool) {
	var v float64
	var levels [3]float64 // eco, critical, shutdown
	var hyst float64
	var unit string
	switch {
	case r.SOCPercent != nil:
		v, levels, hyst, unit = *r.SOCPercent, [3]float64{p.cfg.EcoSOC, p.cfg.CriticalSOC, p.cfg.ShutdownSOC}, p.cfg.HysteresisSOC, "%"
	case r.BatteryV != nil:
		v, levels, hyst, unit = *r.BatteryV, [3]float64{p.cfg.EcoV, p.cfg.CriticalV, p.cfg.ShutdownV}, p.cfg.HysteresisV, " V"
	default:
		return p.mode, "", false // nothing to go by: stay
	}
	// The mode the value calls for going down, and the one it allows going up.
	down := ModeNormal
	for i, m := range []string{ModeEco, ModeCritical, ModeShutdown} {
		if v < levels[i] {
			down = m
		}
	}
	var up string
	switch {
	case v >= levels[0]+hyst:
		up = ModeNormal
	case v >= levels[1]+hyst:
		up = ModeEco
	case v >= levels[2]+hyst:
		up = ModeCritical
	default:
		up = ModeShutdown
	}
	what := "state of charge"
	if unit == " V" {
		what = "battery"
	}
	cur := modeRank[p.mode]
	switch {
	case modeRank[down] > cur:
		p.below++
		if p.below < 2 {
			return p.mode, "", false
		}
		p.below = 0
		level := levels[modeRank[down]-1]
		reason = fmt.Sprintf("%s %.4g%s is below the %s level of %.4g%s", what, v, unit, down, level, unit)
		p.mode = down
		return down, reason, true
	case modeRank[up] < cur:
		p.below = 0
		left := p.mode
		level := levels[cur-1]
		reason = fmt.Sprintf("%s %.4g%s is back above the %s level of %.4g%s (with %.4g%s hysteresis)", what, v, unit, left, level, unit, hyst, unit)
		p.mode = up
		return up, reason, true
	}
	p.below = 0
	return p.mode, "", false
}

// derive returns the configuration the unit runs in mode: eco lowers the
// frame rate, records only around events and samples telemetry four times
// less often; critical samples telemetry at its longest intervals (and the
// unit runs without its camera).
func derive(cfg config.Config, mode string) config.Config {
	scale := func(s *config.Stream, f int) {
		s.Interval = config.Duration(min(time.Duration(s.Interval)*time.Duration(f), time.Duration(s.MaxInterval)))
	}
	streams := []*config.Stream{&cfg.Telemetry.Power, &cfg.Telemetry.Signal, &cfg.Telemetry.System, &cfg.Telemetry.Storage, &cfg.Telemetry.Link}
	switch mode {
	case ModeEco:
		cfg.Camera.FPS = min(cfg.Camera.FPS, cfg.Power.Policy.EcoFPS)
		cfg.Camera.YUYVFPS = min(cfg.Camera.YUYVFPS, cfg.Camera.FPS)
		if cfg.Recording.Mode == config.ModeContinuous {
			cfg.Recording.Mode = config.ModeEvents
		}
		for _, s := range streams {
			scale(s, 4)
		}
	case ModeCritical, ModeShutdown:
		pw := cfg.Telemetry.Power
		for _, s := range streams {
			s.Interval = s.MaxInterval
		}
		// The power stream keeps its pace: it is how the unit sees the
		// battery recover (or reach the shutdown level).
		cfg.Telemetry.Power = pw
	}
	return cfg
}
