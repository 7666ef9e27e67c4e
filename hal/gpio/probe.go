package gpio

import (
	"context"
	"errors"
	"fmt"

	pgpio "periph.io/x/conn/v3/gpio"
)

// errNoPin is given by Probe for an input whose pin the lookup did not
// find.
var errNoPin = errors.New("no such pin")

// ProbeInput is an input to probe: its role ("pir", "tamper") and config.
type ProbeInput struct {
	Name   string
	Config InputConfig
}

// ProbeResult is the level an input read when probed.
type ProbeResult struct {
	// Name and Pin are the input's role and pin.
	Name, Pin string
	// High is the level the pin read.
	High bool
	// Active is what that level means, with the input's ActiveLow.
	Active bool
	// Err is why the input could not be read; High and Active are then
	// meaningless.
	Err error
}

// String reads e.g. "tamper GPIO22: high (active)".
func (r ProbeResult) String() string {
	if r.Err != nil {
		return fmt.Sprintf("%s %s: %v", r.Name, r.Pin, r.Err)
	}
	lvl, meaning := "low", "inactive"
	if r.High {
		lvl = "high"
	}
	if r.Active {
		meaning = "active"
	}
	return fmt.Sprintf("%s %s: %s (%s)", r.Name, r.Pin, lvl, meaning)
}

// Probe sets each input up with its pull, without edge detection, and reads
// its level once; it is for checking the wiring on site. It stops early,
// with ctx's error in the remaining results, when ctx ends.
func Probe(ctx context.Context, lookup PinLookup, inputs []ProbeInput) []ProbeResult {
	out := make([]ProbeResult, len(inputs))
	for i, in := range inputs {
		cfg := in.Config
		r := &out[i]
		r.Name, r.Pin = in.Name, cfg.Pin
		if err := ctx.Err(); err != nil {
			r.Err = err
			continue
		}
		if err := cfg.Validate(); err != nil {
			r.Err = err
			continue
		}
		pin, err := lookup(cfg.Pin)
		if err != nil {
			r.Err = err
			continue
		}
		if pin == nil {
			r.Err = fmt.Errorf("gpio: %s: %w", cfg.Pin, errNoPin)
			continue
		}
		if err := pin.In(cfg.Pull.periph(), pgpio.NoEdge); err != nil {
			r.Err = fmt.Errorf("gpio: input %s: set up: %w: %s", cfg.Pin, err, hint)
			continue
		}
		r.High = pin.Read() == pgpio.High
		r.Active = r.High != cfg.ActiveLow
	}
	return out
}
