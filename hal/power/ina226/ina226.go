// Package ina226 reads a TI INA226 current, voltage and power monitor on
// I²C, wired across a shunt resistor on the battery, the solar panel or the
// load.
//
// The driver sees only periph's i2c.Bus; the agent opens the bus (see
// hal/power/i2cbus). Before it writes anything it checks the chip's
// manufacturer ID (0xFE reads 0x5449, "TI") and die ID (0xFF reads 0x226x),
// and refuses any other chip at the address with an error saying what it
// found.
//
// # Measurement
//
// The chip measures the shunt voltage (2.5 µV steps, ±81.92 mV) and the bus
// voltage on VBUS (1.25 mV steps, 0-36 V), averages Config.Averages
// conversions of Config.ConversionTime each, and from its calibration
// register computes current and power itself. The calibration is computed
// from the shunt's resistance and the largest current expected
// (Config.MaxCurrentA): the current register's step is MaxCurrentA/32768
// amps, the power register's 25 times that in watts.
//
// Current is positive when it flows from the chip's IN+ to IN-, unless
// Config.Reverse is set. The power register holds a magnitude; the reading
// gives it the current's sign.
//
// A current or power the chip cannot vouch for (its math overflow flag is
// set, or the shunt voltage is at the end of its range) is reported as
// unknown, never as a number.
//
// # Recovery
//
// Every Read checks the calibration register: a chip that lost power and
// came back with its power-on settings (calibration 0, so current and power
// reading 0) is configured again, and after any bus error the next Read
// checks the chip's ID and writes its configuration again. After configuring,
// Read waits for a full conversion before it trusts the registers.
package ina226

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/hal/power/internal/ina"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// Registers.
const (
	regConfig      = 0x00
	regShunt       = 0x01
	regBus         = 0x02
	regPower       = 0x03
	regCurrent     = 0x04
	regCalibration = 0x05
	regMaskEnable  = 0x06
	regManufID     = 0xFE
	regDieID       = 0xFF
)

// Identification and flags.
const (
	manufTI = 0x5449 // "TI"
	// dieINA226 is the die ID's upper 12 bits; the low 4 are the revision.
	dieINA226 = 0x226
	// modeContinuous measures shunt and bus voltage continuously.
	modeContinuous = 0x7
	// configFixed is bits 14-12 of the configuration register, which read
	// 100 on the chip.
	configFixed = 0x4000
	// Mask/Enable flags.
	flagReady    = 1 << 3 // CVRF: a conversion finished
	flagOverflow = 1 << 2 // OVF: current or power overflowed
)

// Measurement ranges and steps.
const (
	shuntFullScaleV = 0.08192 // 32768 steps of 2.5 µV
	busStepV        = 1.25e-3
	// calibrationScale is the datasheet's 0.00512 in
	// CAL = 0.00512 / (current step × shunt ohms).
	calibrationScale = 0.00512
	maxCalibration   = 0x7FFF
)

// What the sensor measures, and where its values go in the reading.
const (
	// Battery: bus volts to BatteryV, amps to BatteryA.
	Battery = ina.Battery
	// Panel: bus volts to PanelV, watts to PanelW.
	Panel = ina.Panel
	// Load: watts to LoadW.
	Load = ina.Load
)

// ErrWrongChip is wrapped by Read's error when the chip at the address is
// not an INA226: a wiring or configuration fault, which retrying does not
// mend. Other errors from Read are bus errors, which may pass.
var ErrWrongChip = errors.New("not an INA226")

// DefaultAddr is the chip's address with A0 and A1 grounded.
const DefaultAddr = 0x40

// Defaults for Config's zero values.
const (
	DefaultAverages       = 16
	DefaultConversionTime = 1100 * time.Microsecond
)

// averages are the averaging counts the chip offers, in the order of their
// codes in the configuration register.
var averages = []int{1, 4, 16, 64, 128, 256, 512, 1024}

// conversionTimes are the conversion times the chip offers, in the order of
// their codes.
var conversionTimes = []time.Duration{
	140 * time.Microsecond, 204 * time.Microsecond, 332 * time.Microsecond, 588 * time.Microsecond,
	1100 * time.Microsecond, 2116 * time.Microsecond, 4156 * time.Microsecond, 8244 * time.Microsecond,
}

// Config describes one INA226.
type Config struct {
	// Addr is the I²C address, 0x40-0x4F; 0 means DefaultAddr.
	Addr uint16 `yaml:"addr"`
	// ShuntOhms is the shunt resistor in ohms, e.g. 0.1 on most breakout
	// boards (marked R100), 0.002 on 20 A modules (R002).
	ShuntOhms float64 `yaml:"shunt_ohms"`
	// MaxCurrentA is the largest current expected through the shunt, in
	// amps; the calibration gives the best resolution up to it. 0 means
	// the most the shunt can measure, 81.92 mV / ShuntOhms. MaxCurrentA ×
	// ShuntOhms must be 5.12-81.92 mV.
	MaxCurrentA float64 `yaml:"max_current_a"`
	// Averages is how many conversions the chip averages: 1, 4, 16, 64,
	// 128, 256, 512 or 1024; 0 means DefaultAverages.
	Averages int `yaml:"averages"`
	// ConversionTime is the time of one bus and of one shunt voltage
	// conversion: 140µs, 204µs, 332µs, 588µs, 1.1ms, 2.116ms, 4.156ms or
	// 8.244ms; 0 means DefaultConversionTime. A reading covers Averages ×
	// 2 × ConversionTime.
	ConversionTime time.Duration `yaml:"conversion_time"`
	// Measures is Battery, Panel or Load: which fields of the reading the
	// values go to.
	Measures string `yaml:"measures"`
	// Reverse flips the sign of current and power, for a shunt wired the
	// other way round (the battery's current must be positive while
	// charging).
	Reverse bool `yaml:"reverse"`
}

// Validate fills in defaults and checks c, before any I/O.
func (c *Config) Validate() error {
	if c.Addr == 0 {
		c.Addr = DefaultAddr
	}
	if c.Averages == 0 {
		c.Averages = DefaultAverages
	}
	if c.ConversionTime == 0 {
		c.ConversionTime = DefaultConversionTime
	}
	if err := ina.CheckAddr("ina226", c.Addr); err != nil {
		return err
	}
	if !(c.ShuntOhms > 0) || math.IsInf(c.ShuntOhms, 0) {
		return fmt.Errorf("ina226: shunt %g Ω: must be above 0: read it off the resistor (R100 is 0.1, R002 is 0.002)", c.ShuntOhms)
	}
	if !slices.Contains(averages, c.Averages) {
		return fmt.Errorf("ina226: averages %d: the chip averages 1, 4, 16, 64, 128, 256, 512 or 1024 conversions", c.Averages)
	}
	if !slices.Contains(conversionTimes, c.ConversionTime) {
		s := make([]string, len(conversionTimes))
		for i, d := range conversionTimes {
			s[i] = d.String()
		}
		return fmt.Errorf("ina226: conversion time %s: the chip converts in %s", c.ConversionTime, strings.Join(s, ", "))
	}
	if _, _, err := calibrate(c.ShuntOhms, c.MaxCurrentA); err != nil {
		return err
	}
	return ina.CheckMeasures("ina226", c.Measures)
}

// calibrate returns the calibration register's value for a shunt of ohms
// and a largest current of maxA (0 for the shunt's full scale), and the
// current register's step in amps that value gives. The step is computed
// back from the value written, so the rounding of the register costs no
// accuracy.
func calibrate(ohms, maxA float64) (cal uint16, currentStep float64, err error) {
	fullScaleA := shuntFullScaleV / ohms
	switch {
	case maxA == 0:
		maxA = fullScaleA
	case !(maxA > 0) || math.IsInf(maxA, 0):
		return 0, 0, fmt.Errorf("ina226: max current %g A: must be above 0, or 0 for the shunt's full scale", maxA)
	case maxA > fullScaleA*(1+1e-9):
		return 0, 0, fmt.Errorf("ina226: max current %g A through %g Ω is %.2f mV, beyond the chip's 81.92 mV shunt range: lower it to %.4g A at most or use a smaller shunt", maxA, ohms, maxA*ohms*1e3, fullScaleA)
	}
	c := math.Floor(calibrationScale / (maxA / 32768 * ohms))
	if c > maxCalibration {
		minA := calibrationScale * 32768 / maxCalibration / ohms
		// Round up to 4 significant digits, so the value suggested works.
		unit := math.Pow(10, math.Floor(math.Log10(minA))-3)
		minA = math.Ceil(minA/unit) * unit
		return 0, 0, fmt.Errorf("ina226: max current %g A through %g Ω is %.3f mV, too little for the chip's calibration (5.12 mV at least): raise it to %.4g A or more, or use a larger shunt", maxA, ohms, maxA*ohms*1e3, minA)
	}
	return uint16(c), calibrationScale / (c * ohms), nil
}

// configValue is the configuration register for c.
func configValue(c Config) uint16 {
	avg := slices.Index(averages, c.Averages)
	ct := slices.Index(conversionTimes, c.ConversionTime)
	return configFixed | uint16(avg)<<9 | uint16(ct)<<6 | uint16(ct)<<3 | modeContinuous
}

// Sensor reads one INA226.
type Sensor struct {
	cfg         Config
	cal         uint16
	currentStep float64
	cycle       time.Duration // one averaged bus and shunt conversion
	clk         clock.Clock
	log         *slog.Logger

	mu         sync.Mutex
	dev        i2c.Dev
	configured bool // the ID was checked and the chip configured since the last error
}

var _ power.Sensor = (*Sensor)(nil)

// New returns a sensor on bus. It does no I/O.
func New(bus i2c.Bus, cfg Config, clk clock.Clock, log *slog.Logger) (*Sensor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cal, step, _ := calibrate(cfg.ShuntOhms, cfg.MaxCurrentA)
	return &Sensor{
		cfg: cfg, cal: cal, currentStep: step,
		cycle: time.Duration(cfg.Averages) * 2 * cfg.ConversionTime,
		clk:   clk,
		log:   log.With("component", "ina226", "addr", fmt.Sprintf("%#x", cfg.Addr)),
		dev:   i2c.Dev{Bus: bus, Addr: cfg.Addr},
	}, nil
}

// Read returns the volts, amps and watts the chip measures. The first Read,
// and the first after an error or after the chip lost its settings, checks
// the chip's ID, configures it and waits for one conversion, up to three
// times Averages × 2 × ConversionTime.
func (s *Sensor) Read(ctx context.Context) (power.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return power.Reading{}, fmt.Errorf("ina226: %w", err)
	}
	if s.configured {
		cal, err := ina.Reg(&s.dev, regCalibration)
		if err != nil {
			return power.Reading{}, s.busErr("read calibration", err)
		}
		if cal != s.cal {
			s.log.Warn("chip lost its calibration, probably a power dip: configuring it again", "calibration", cal, "want", s.cal)
			s.configured = false
		}
	}
	var mask uint16
	if !s.configured {
		m, err := s.configure(ctx)
		if err != nil {
			return power.Reading{}, err
		}
		mask = m
		s.configured = true
	} else {
		m, err := ina.Reg(&s.dev, regMaskEnable)
		if err != nil {
			return power.Reading{}, s.busErr("read flags", err)
		}
		mask = m
	}
	r := regs{mask: mask}
	for _, x := range []struct {
		reg  byte
		dst  *uint16
		what string
	}{
		{regShunt, &r.shunt, "read shunt voltage"},
		{regBus, &r.bus, "read bus voltage"},
		{regCurrent, &r.current, "read current"},
		{regPower, &r.power, "read power"},
	} {
		v, err := ina.Reg(&s.dev, x.reg)
		if err != nil {
			return power.Reading{}, s.busErr(x.what, err)
		}
		*x.dst = v
	}
	v, a, w, overflow := decode(r, s.currentStep)
	if overflow {
		s.log.Warn("current beyond the calibrated or shunt range, reported as unknown: raise max_current_a or use a smaller shunt",
			"shunt_ohms", s.cfg.ShuntOhms, "max_current_a", s.cfg.MaxCurrentA)
	}
	if s.cfg.Reverse {
		if a != nil {
			*a = -*a
		}
		if w != nil {
			*w = -*w
		}
	}
	out := power.Reading{Time: s.clk.Now()}
	ina.Fill(&out, s.cfg.Measures, v, a, w)
	return out, nil
}

// configure checks the chip is an INA226, writes its configuration and
// calibration and waits for a conversion with them. It returns the
// Mask/Enable register read when the conversion was ready.
func (s *Sensor) configure(ctx context.Context) (uint16, error) {
	manuf, err := ina.Reg(&s.dev, regManufID)
	if err != nil {
		return 0, s.busErr("read manufacturer ID", err)
	}
	die, err := ina.Reg(&s.dev, regDieID)
	if err != nil {
		return 0, s.busErr("read die ID", err)
	}
	if manuf != manufTI || die>>4 != dieINA226 {
		return 0, fmt.Errorf("ina226: the chip at %#x is %w: its manufacturer ID reads %#04x and die ID %#04x, an INA226's read 0x5449 and 0x226x: check the address, and configure an INA219 (which has no ID registers) as one", s.cfg.Addr, ErrWrongChip, manuf, die)
	}
	if err := ina.WriteReg(&s.dev, regConfig, configValue(s.cfg)); err != nil {
		return 0, s.busErr("write configuration", err)
	}
	if err := ina.WriteReg(&s.dev, regCalibration, s.cal); err != nil {
		return 0, s.busErr("write calibration", err)
	}
	s.log.Debug("configured", "config", fmt.Sprintf("%#04x", configValue(s.cfg)), "calibration", s.cal, "current_step_a", s.currentStep)
	return s.waitReady(ctx)
}

// waitReady polls the Mask/Enable register until the chip flags a finished
// conversion, for up to three conversion cycles.
func (s *Sensor) waitReady(ctx context.Context) (uint16, error) {
	limit := 3 * s.cycle
	deadline := s.clk.Now().Add(limit)
	poll := max(s.cycle/4, time.Millisecond)
	for {
		m, err := ina.Reg(&s.dev, regMaskEnable)
		if err != nil {
			return 0, s.busErr("read flags", err)
		}
		if m&flagReady != 0 {
			return m, nil
		}
		if !s.clk.Now().Before(deadline) {
			return 0, fmt.Errorf("ina226: at %#x: no conversion finished within %s of configuring the chip: check its supply (VS) and that nothing else on the bus reconfigures it", s.cfg.Addr, limit)
		}
		t := s.clk.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("ina226: waiting for a conversion: %w", ctx.Err())
		case <-t.C():
		}
	}
}

func (s *Sensor) busErr(what string, err error) error {
	s.configured = false
	return ina.BusErr("ina226", what, s.cfg.Addr, err)
}

// regs are the registers one reading is made of.
type regs struct {
	mask, shunt, bus, current, power uint16
}

// decode turns the registers into volts, amps and watts, for a current
// register step of currentStep amps. Amps and watts are nil, and overflow
// true, when the chip flags a math overflow or the shunt voltage is at the
// end of its range.
func decode(r regs, currentStep float64) (volts float64, amps, watts *float64, overflow bool) {
	volts = float64(r.bus&0x7FFF) * busStepV
	sv := int16(r.shunt)
	if r.mask&flagOverflow != 0 || sv == math.MaxInt16 || sv == math.MinInt16 {
		return volts, nil, nil, true
	}
	a := float64(int16(r.current)) * currentStep
	w := float64(r.power) * 25 * currentStep
	if a < 0 {
		w = -w
	}
	return volts, &a, &w, false
}
