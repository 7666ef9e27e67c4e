// Package power defines the readings the agent takes from a unit's power
// system: battery, solar panel and load, as reported by a charge controller,
// a battery monitor, a current sensor or a simulator.
//
// Every value is a pointer: nil means the hardware does not report it, and
// it is published as null, never as a made-up zero.
package power

import (
	"context"
	"time"
)

// Reading is one observation of the power system.
type Reading struct {
	Time time.Time
	// BatteryV is the battery voltage in volts.
	BatteryV *float64
	// BatteryA is the battery current in amps; positive while charging.
	BatteryA *float64
	// SOCPercent is the battery's state of charge, 0-100.
	SOCPercent *float64
	// PanelV and PanelW are the solar panel's voltage and power.
	PanelV *float64
	PanelW *float64
	// LoadW is the power drawn by the unit.
	LoadW *float64
	// ChargeState is the charge controller's state in plain words
	// ("bulk", "absorption", "float", "off", ...), empty when unknown.
	ChargeState string
	// YieldTodayWh is the energy harvested since midnight.
	YieldTodayWh *float64
	// ControllerError is the charge controller's error in plain words
	// (VE.Direct ERR: "battery voltage too high", ...), empty when it
	// reports none or does not say.
	ControllerError string
}

// Sensor reads the power system.
type Sensor interface {
	Read(ctx context.Context) (Reading, error)
}

// F returns a pointer to v; a convenience for filling readings.
func F(v float64) *float64 { return &v }
