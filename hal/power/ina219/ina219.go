// Package ina219 reads a TI INA219 current and voltage monitor on I²C, wired
// across a shunt resistor on the battery, the solar panel or the load.
//
// The driver sees only periph's i2c.Bus; the agent opens the bus. It does
// not use the chip's calibration register: current is the shunt voltage
// (10 µV steps, ±320 mV) divided by the shunt's resistance from config, and
// power is that current times the bus voltage (4 mV steps, up to 32 V).
// Current is positive when it flows from the chip's IN+ to IN-, unless
// Config.Reverse is set.
//
// What the volts, amps and watts fill in the reading depends on
// Config.Measures; see Battery, Panel and Load.
package ina219

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"

	"periph.io/x/conn/v3/i2c"

	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/hal/power/internal/ina"
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

// What the sensor measures, and where its values go in the reading.
const (
	// Battery: bus volts to BatteryV, amps to BatteryA.
	Battery = ina.Battery
	// Panel: bus volts to PanelV, volts × amps to PanelW.
	Panel = ina.Panel
	// Load: volts × amps to LoadW.
	Load = ina.Load
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
	// Reverse flips the sign of the current, for a shunt wired the other
	// way round (the battery's current must be positive while charging).
	Reverse bool
}

func (c *Config) validate() error {
	if c.Addr == 0 {
		c.Addr = DefaultAddr
	}
	if err := ina.CheckAddr("ina219", c.Addr); err != nil {
		return err
	}
	if !(c.ShuntOhms > 0) || math.IsInf(c.ShuntOhms, 0) {
		return fmt.Errorf("ina219: shunt %g Ω: must be above 0: read it off the resistor (R100 is 0.1)", c.ShuntOhms)
	}
	return ina.CheckMeasures("ina219", c.Measures)
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
		if err := ina.WriteReg(&s.dev, regConfig, configValue); err != nil {
			return power.Reading{}, s.busErr("write configuration", err)
		}
		s.configured = true
	}
	shunt, err := ina.Reg(&s.dev, regShunt)
	if err != nil {
		return power.Reading{}, s.busErr("read shunt voltage", err)
	}
	bus, err := ina.Reg(&s.dev, regBus)
	if err != nil {
		return power.Reading{}, s.busErr("read bus voltage", err)
	}
	v, a, overflow := decode(shunt, bus, s.cfg.ShuntOhms)
	if overflow {
		s.log.Warn("current beyond the shunt's range, reported as unknown: use a smaller shunt", "shunt_ohms", s.cfg.ShuntOhms)
	}
	var w *float64
	if a != nil {
		if s.cfg.Reverse {
			*a = -*a
		}
		w = power.F(v * *a)
	}
	r := power.Reading{Time: s.clk.Now()}
	ina.Fill(&r, s.cfg.Measures, v, a, w)
	return r, nil
}

func (s *Sensor) busErr(what string, err error) error {
	s.configured = false
	return ina.BusErr("ina219", what, s.cfg.Addr, err)
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
