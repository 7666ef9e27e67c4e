// Package ina holds what the TI INA219 and INA226 drivers share: the
// chips' 16-bit big-endian register access over I²C, what a sensor measures
// (the battery, the solar panel or the load) and how its volts, amps and
// watts fill a power.Reading, and the wording of bus errors.
package ina

import (
	"fmt"

	"periph.io/x/conn/v3/i2c"

	"github.com/outpost-cctv/outpost/hal/power"
)

// What a sensor measures.
const (
	Battery = "battery"
	Panel   = "panel"
	Load    = "load"
)

// CheckMeasures returns an error naming chip unless m is Battery, Panel or
// Load.
func CheckMeasures(chip, m string) error {
	switch m {
	case Battery, Panel, Load:
		return nil
	}
	return fmt.Errorf("%s: measures %q: use %s, %s or %s", chip, m, Battery, Panel, Load)
}

// CheckAddr returns an error naming chip unless addr is one the A0/A1 pins
// can select, 0x40-0x4F.
func CheckAddr(chip string, addr uint16) error {
	if addr < 0x40 || addr > 0x4F {
		return fmt.Errorf("%s: address %#x: must be 0x40-0x4f, as set by the A0/A1 pins", chip, addr)
	}
	return nil
}

// Fill puts what a sensor measures into r:
//
//   - Battery: volts to BatteryV, amps to BatteryA (watts are not used:
//     the battery's power is not the load's);
//   - Panel: volts to PanelV, watts to PanelW;
//   - Load: watts to LoadW (the load's voltage is the battery's, reported
//     by whatever measures the battery).
//
// amps and watts may be nil (unknown); they stay nil in r.
func Fill(r *power.Reading, measures string, volts float64, amps, watts *float64) {
	switch measures {
	case Battery:
		r.BatteryV, r.BatteryA = power.F(volts), amps
	case Panel:
		r.PanelV, r.PanelW = power.F(volts), watts
	case Load:
		r.LoadW = watts
	}
}

// Reg reads the 16-bit big-endian register reg of dev.
func Reg(dev *i2c.Dev, reg byte) (uint16, error) {
	var b [2]byte
	if err := dev.Tx([]byte{reg}, b[:]); err != nil {
		return 0, err
	}
	return uint16(b[0])<<8 | uint16(b[1]), nil
}

// WriteReg writes v to the 16-bit big-endian register reg of dev.
func WriteReg(dev *i2c.Dev, reg byte, v uint16) error {
	return dev.Tx([]byte{reg, byte(v >> 8), byte(v)}, nil)
}

// BusErr wraps an I²C error met doing what with the chip at addr, and says
// what to check.
func BusErr(chip, what string, addr uint16, err error) error {
	return fmt.Errorf("%s: %s at %#x: %w: check SDA/SCL wiring, the address (A0/A1 pins) and that I²C is enabled", chip, what, addr, err)
}
