package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/hal/gpio"
	"github.com/outpost-cctv/outpost/hal/gpio/board"
	"github.com/outpost-cctv/outpost/hal/modem"
	modemat "github.com/outpost-cctv/outpost/hal/modem/at"
	"github.com/outpost-cctv/outpost/hal/modem/mmcli"
	modemsim "github.com/outpost-cctv/outpost/hal/modem/sim"
	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/hal/power/i2cbus"
	"github.com/outpost-cctv/outpost/hal/power/ina219"
	"github.com/outpost-cctv/outpost/hal/power/ina226"
	powersim "github.com/outpost-cctv/outpost/hal/power/sim"
	"github.com/outpost-cctv/outpost/hal/power/sysfs"
	"github.com/outpost-cctv/outpost/hal/power/vedirect"
	"github.com/outpost-cctv/outpost/hal/watchdog"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
	"periph.io/x/conn/v3/i2c"
)

// newDevices builds the power sensor and the modem of cfg.
func newDevices(cfg config.Config, clk clock.Clock, log *slog.Logger) (power.Sensor, modem.Modem, error) {
	pw, err := NewPower(cfg, clk, log)
	if err != nil {
		return nil, nil, err
	}
	md, err := NewModem(cfg, clk, log)
	if err != nil {
		return nil, nil, err
	}
	return pw, md, nil
}

// NewPower builds the configured power sensor. It opens no device: a
// VE.Direct port is opened for each reading, an I²C bus at the first.
func NewPower(cfg config.Config, clk clock.Clock, log *slog.Logger) (power.Sensor, error) {
	p := cfg.Power
	switch p.Source {
	case "sim":
		s := p.Sim
		return powersim.New(powersim.Config{CapacityWh: s.CapacityWh, PanelPeakW: s.PanelPeakW, LoadW: s.LoadW, InitialSOC: s.InitialSOC, TimeScale: s.TimeScale}, clk)
	case "vedirect":
		return vedirect.Open(p.VEDirect.Port, p.VEDirect.Timeout.D(), clk, log), nil
	case "ina219", "ina226":
		return &i2cSensor{bus: p.INA.Bus, log: log, build: inaBuilder(p.Source, p.INA, clk, log)}, nil
	case "sysfs":
		return sysfs.New(sysfs.Config{Root: p.Sysfs.Root, Name: p.Sysfs.Name, CurrentSign: p.Sysfs.CurrentSign}, clk, log)
	}
	return nil, fmt.Errorf("power: source %q is not supported", p.Source)
}

func inaBuilder(chip string, c config.PowerINA, clk clock.Clock, log *slog.Logger) func(i2c.Bus) (power.Sensor, error) {
	return func(bus i2c.Bus) (power.Sensor, error) {
		if chip == "ina219" {
			return ina219.New(bus, ina219.Config{Addr: uint16(c.Address), ShuntOhms: c.ShuntOhms, Measures: c.Measures, Reverse: c.Reverse}, clk, log)
		}
		return ina226.New(bus, ina226.Config{Addr: uint16(c.Address), ShuntOhms: c.ShuntOhms, MaxCurrentA: c.MaxCurrentA, Measures: c.Measures, Reverse: c.Reverse}, clk, log)
	}
}

// i2cSensor opens its I²C bus at the first reading (and again after the
// bus could not be opened), so that building the unit touches no device.
type i2cSensor struct {
	bus   string
	log   *slog.Logger
	build func(i2c.Bus) (power.Sensor, error)

	mu     sync.Mutex
	sensor power.Sensor
	closer i2c.BusCloser
}

func (s *i2cSensor) Read(ctx context.Context) (power.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sensor == nil {
		b, err := i2cbus.Open(ctx, s.bus, s.log)
		if err != nil {
			return power.Reading{}, err
		}
		sn, err := s.build(b)
		if err != nil {
			b.Close()
			return power.Reading{}, err
		}
		s.sensor, s.closer = sn, b
	}
	return s.sensor.Read(ctx)
}

// NewModem builds the configured modem. It opens no device: an AT port is
// opened for each reading, mmcli run for each.
func NewModem(cfg config.Config, clk clock.Clock, log *slog.Logger) (modem.Modem, error) {
	m := cfg.Modem
	switch m.Source {
	case "sim":
		s := m.Sim
		return modemsim.New(modemsim.Config{
			RSRPdBm: s.RSRPdBm, RSRQdB: -11, SINRdB: 8,
			DropoutEvery: s.DropoutEvery.D(), DropoutDuration: s.DropoutDuration.D(), Seed: uint64(clk.Now().UnixNano()),
		}, clk)
	case "at":
		return modemat.Open(m.AT.Port, m.AT.Flavor, m.AT.Timeout.D(), clk, log)
	case "mmcli":
		c := m.MMCLI
		return mmcli.New(mmcli.Config{Path: c.Path, Modem: c.Modem, Timeout: c.Timeout.D(), SignalRate: c.SignalRate.D(), Clock: clk}, log)
	}
	return nil, fmt.Errorf("modem: source %q is not supported", m.Source)
}

// KindPIR is the kind of the PIR sensor's events on the events topic;
// KindTamper names the tamper switch's input.
const (
	KindPIR    = "pir"
	KindTamper = "tamper"
)

// Pins runs the unit's GPIO: the PIR sensor's triggers, the tamper
// switch (TamperOpen, for the fault detectors), and the IR relay (the ir
// command).
type Pins struct {
	cfg     config.GPIO
	log     *slog.Logger
	clk     clock.Clock
	lookup  gpio.PinLookup
	trigger func(kind string, at time.Time)
	send    func(ctx context.Context, class uplink.Priority, e wire.Event)

	mu     sync.Mutex
	relay  *gpio.Output
	tamper *gpio.Input
}

// TamperOpen reports whether the cabinet is open; known is false without
// a tamper switch, or before it was read.
func (p *Pins) TamperOpen() (open, known bool) {
	p.mu.Lock()
	in := p.tamper
	p.mu.Unlock()
	if in == nil {
		return false, false
	}
	return in.Active()
}

// NewPins returns the GPIO component, or nil when no pin is configured.
// lookup finds pins (board.Lookup on a unit); trigger starts a recording
// event; send publishes an event.
func NewPins(cfg config.GPIO, lookup gpio.PinLookup, clk clock.Clock, log *slog.Logger,
	trigger func(string, time.Time), send func(context.Context, uplink.Priority, wire.Event)) *Pins {
	if cfg.PIR.Pin == "" && cfg.Tamper.Pin == "" && cfg.IRRelay.Pin == "" {
		return nil
	}
	return &Pins{cfg: cfg, log: log.With("component", "gpio"), clk: clk, lookup: lookup, trigger: trigger, send: send}
}

// Name implements Component.
func (p *Pins) Name() string { return "gpio" }

func inputConfig(c config.GPIOInput) gpio.InputConfig {
	return gpio.InputConfig{Pin: c.Pin, ActiveLow: c.ActiveLow, Pull: gpio.Pull(c.Pull), Debounce: c.Debounce.D()}
}

// Run opens the pins and follows the inputs until ctx ends. A pin that
// cannot be opened fails the component (the supervisor retries, and the
// health topic names the pin).
func (p *Pins) Run(ctx context.Context) error {
	type input struct {
		name string
		in   *gpio.Input
	}
	var inputs []input
	for _, c := range []struct {
		name string
		cfg  config.GPIOInput
	}{{KindPIR, p.cfg.PIR}, {KindTamper, p.cfg.Tamper}} {
		if c.cfg.Pin == "" {
			continue
		}
		pin, err := p.lookup(c.cfg.Pin)
		if err != nil {
			return fmt.Errorf("gpio.%s: %w", c.name, err)
		}
		in, err := gpio.NewInput(pin, inputConfig(c.cfg), p.clk, p.log)
		if err != nil {
			return fmt.Errorf("gpio.%s: %w", c.name, err)
		}
		inputs = append(inputs, input{c.name, in})
		if c.name == KindTamper {
			p.mu.Lock()
			p.tamper = in
			p.mu.Unlock()
		}
	}
	if c := p.cfg.IRRelay; c.Pin != "" {
		pin, err := p.lookup(c.Pin)
		if err != nil {
			return fmt.Errorf("gpio.ir_relay: %w", err)
		}
		out, err := gpio.NewOutput(pin, gpio.OutputConfig{Pin: c.Pin, ActiveLow: c.ActiveLow}, p.log)
		if err != nil {
			return fmt.Errorf("gpio.ir_relay: %w", err)
		}
		p.mu.Lock()
		p.relay = out
		p.mu.Unlock()
	}
	errs := make(chan error, len(inputs))
	var wg sync.WaitGroup
	for _, in := range inputs {
		events := make(chan gpio.Event, 8)
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(events)
			errs <- in.in.Run(ctx, events)
		}()
		go func() {
			defer wg.Done()
			for e := range events {
				p.handle(ctx, in.name, e)
			}
		}()
	}
	var err error
	if len(inputs) > 0 {
		select {
		case err = <-errs:
		case <-ctx.Done():
		}
	} else {
		<-ctx.Done()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (p *Pins) handle(ctx context.Context, name string, e gpio.Event) {
	switch name {
	case KindPIR:
		if e.Active && !e.Initial {
			p.trigger(KindPIR, e.Time)
			ev := wire.NewEvent(e.Time, KindPIR, wire.SeverityInfo, "PIR sensor detected movement")
			p.send(ctx, uplink.PriorityEvent, ev)
		}
	case KindTamper:
		// The fault detectors raise tamper_open from the switch's state
		// (TamperOpen): an alert while the door is open, in the health.
		p.log.Info("tamper switch", "open", e.Active, "at_start", e.Initial)
	}
}

// IRArgs are the arguments of the ir command.
type IRArgs struct {
	On *bool `json:"on"`
}

// handleIR is the ir command: {"on": true|false} switches the IR relay,
// {} reads it.
func (p *Pins) handleIR(_ context.Context, req uplink.Request) (any, error) {
	var a IRArgs
	if err := req.DecodeArgs(&a); err != nil {
		return nil, err
	}
	p.mu.Lock()
	relay := p.relay
	p.mu.Unlock()
	if relay == nil {
		return nil, uplink.CommandError{Code: wire.CodeUnavailable, Message: "no IR relay: set gpio.ir_relay.pin, or see the gpio component in the unit's health"}
	}
	if a.On != nil {
		if err := relay.Set(*a.On); err != nil {
			return nil, err
		}
	}
	return map[string]bool{"on": relay.On()}, nil
}

// boardLookup is the pin lookup of the board the agent runs on.
func boardLookup(log *slog.Logger) gpio.PinLookup { return board.Lookup(log) }

// HardwareWatchdog feeds the board's watchdog device while healthy says
// the agent is well.
type HardwareWatchdog struct {
	cfg     config.Watchdog
	clk     clock.Clock
	log     *slog.Logger
	healthy func() bool
}

// Name implements Component.
func (w *HardwareWatchdog) Name() string { return "watchdog" }

// Run opens the device and feeds it until ctx ends; then it disarms it.
func (w *HardwareWatchdog) Run(ctx context.Context) error {
	dev, err := watchdog.Open(w.cfg.Device)
	if err != nil {
		return err
	}
	wd, err := watchdog.New(dev, w.cfg.Interval.D(), w.clk, w.log)
	if err != nil {
		dev.Close()
		return err
	}
	err = wd.Run(ctx, w.healthy)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
