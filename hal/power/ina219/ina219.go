// Package ina219 reads a TI INA219 current and voltage monitor on I²C, wired
// across a shunt resistor on the battery, the solar panel or the load.
//
// The driver sees only periph's i2c.Bus; the agent opens the bus. It does
// not use the chip's calibration register: current is the shunt voltage
// (10 µV steps, ±320 mV) divided by the shunt's resistance from config, and
// power is that current times the bus voltage (4 mV steps, up to 32 V).
// Current is positive when it flows from the chip's IN+ to IN-.
package ina219

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"

	"periph.io/x/conn/v3/i2c"

	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// Registers and the configuration written to the chip.
const (
	regConfig = 0x00
	regShunt  = 0x01
	regBus    = 0x02
	// configValue is 32 V bus range, ±320 mV shunt range, 12-bit
	// conversions, shunt and bus continuous: the chip's power-on value,
	// written anyway so a chip left otherwise is put right.
	configValue = 0x399F
)

// What the sensor measures.
const (
	Battery = "battery"
	Panel   = "panel"
	Load    = "load"
)

// DefaultAddr is the chip's address with A0 and A1 grounded.
const DefaultAddr = 0x40

// Config describes one INA219.
type Config struct {
	// Addr is the I²C address, 0x40-0x4F; 0 means DefaultAddr.
	Addr uint16
	// ShuntOhms is the shunt resistor, e.g. 0.1 on most breakout boards.
	ShuntOhms float64
	// Measures is Battery, Panel or Load: which fields of the reading the
	// volts and amps go to.
	Measures string
}

func (c *Config) validate() error {
	if c.Addr == 0 {
		c.Addr = DefaultAddr
	}
	switch {
	case c.Addr < 0x40 || c.Addr > 0x4F:
		return fmt.Errorf("ina219: address %#x: must be 0x40-0x4f, as set by the A0/A1 pins", c.Addr)
	case !(c.ShuntOhms > 0) || math.IsInf(c.ShuntOhms, 0):
		return fmt.Errorf("ina219: shunt %g Ω: must be above 0: read it off the resistor (R100 is 0.1)", c.ShuntOhms)
	case c.Measures != Battery && c.Measures != Panel && c.Measures != Load:
		return fmt.Errorf("ina219: measures %q: use %s, %s or %s", c.Measures, Battery, Panel, Load)
	}
	return nil
}

// Sensor reads one INA219.
type Sensor struct {
	cfg Config
	clk clock.Clock
	log *slog.Logger

	mu         sync.Mutex
	dev        i2c.Dev
	configured bool // the configuration register was written since the last error
}

var _ power.Sensor = (*Sensor)(nil)

// New returns a sensor on bus. It does no I/O.
func New(bus i2c.Bus, cfg Config, clk clock.Clock, log *slog.Logger) (*Sensor, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Sensor{cfg: cfg, clk: clk, log: log.With("component", "ina219", "addr", fmt.Sprintf("%#x", cfg.Addr)),
		dev: i2c.Dev{Bus: bus, Addr: cfg.Addr}}, nil
}

// Read returns the volts, amps and watts the chip measures. After a bus
// error it writes the chip's configuration again, so a chip that lost power
// recovers on the next Read.
func (s *Sensor) Read(ctx context.Context) (power.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return power.Reading{}, fmt.Errorf("ina219: %w", err)
	}
	if !s.configured {
		if err := s.dev.Tx([]byte{regConfig, configValue >> 8, configValue & 0xFF}, nil); err != nil {
			return power.Reading{}, s.busErr("write configuration", err)
		}
		s.configured = true
	}
	shunt, err := s.reg(regShunt)
	if err != nil {
		return power.Reading{}, s.busErr("read shunt voltage", err)
	}
	bus, err := s.reg(regBus)
	if err != nil {
		return power.Reading{}, s.busErr("read bus voltage", err)
	}
	v, a, overflow := decode(shunt, bus, s.cfg.ShuntOhms)
	if overflow {
		s.log.Warn("current beyond the shunt's range, reported as unknown: use a smaller shunt", "shunt_ohms", s.cfg.ShuntOhms)
	}
	r := power.Reading{Time: s.clk.Now()}
	switch s.cfg.Measures {
	case Battery:
		r.BatteryV, r.BatteryA = power.F(v), a
	case Panel:
		r.PanelV = power.F(v)
		if a != nil {
			r.PanelW = power.F(v * *a)
		}
	case Load:
		if a != nil {
			r.LoadW = power.F(v * *a)
		}
	}
	return r, nil
}

func (s *Sensor) busErr(what string, err error) error {
	s.configured = false
	return fmt.Errorf("ina219: %s at %#x: %w: check SDA/SCL wiring, the address (A0/A1 pins) and that I²C is enabled", what, s.cfg.Addr, err)
}

func (s *Sensor) reg(r byte) (uint16, error) {
	var b [2]byte
	if err := s.dev.Tx([]byte{r}, b[:]); err != nil {
		return 0, err
	}
	return uint16(b[0])<<8 | uint16(b[1]), nil
}

// decode turns the shunt and bus voltage registers into volts and amps.
// Amps is nil, and overflow true, when the chip flags a math overflow or
// the shunt voltage is at the end of its range.
func decode(shunt, bus uint16, ohms float64) (volts float64, amps *float64, overflow bool) {
	volts = float64(bus>>3) * 0.004
	sv := int16(shunt)
	if bus&1 != 0 || sv >= 32000 || sv <= -32000 {
		return volts, nil, true
	}
	return volts, power.F(float64(sv) * 10e-6 / ohms), false
}
