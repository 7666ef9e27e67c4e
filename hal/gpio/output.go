package gpio

import (
	"fmt"
	"log/slog"

	pgpio "periph.io/x/conn/v3/gpio"
)

// Output is a digital output, such as an IR illuminator's relay.
type Output struct {
	cfg OutputConfig
	pin pgpio.PinIO
	log *slog.Logger
}

var _ Relay = (*Output)(nil)

// NewOutput returns the output on pin. It does no I/O: the pin keeps its
// state until the first Set.
func NewOutput(pin pgpio.PinIO, cfg OutputConfig, log *slog.Logger) (*Output, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pin == nil {
		return nil, fmt.Errorf("gpio: output %s: no such pin", cfg.Pin)
	}
	return &Output{cfg: cfg, pin: pin, log: log.With("component", "gpio", "pin", cfg.Pin)}, nil
}

// Set drives the output on or off.
func (o *Output) Set(on bool) error {
	l := pgpio.Level(on != o.cfg.ActiveLow)
	if err := o.pin.Out(l); err != nil {
		return fmt.Errorf("gpio: output %s: set %s: %w: %s", o.cfg.Pin, onOff(on), err, hint)
	}
	o.log.Debug("output set", "on", on)
	return nil
}

// On reads the pin back and reports whether the output is on.
func (o *Output) On() bool {
	return (o.pin.Read() == pgpio.High) != o.cfg.ActiveLow
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
