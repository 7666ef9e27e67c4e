package gpio

import (
	"context"
	"fmt"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"
)

// Event is a change of an input, or its state when Run started.
type Event struct {
	// Time is when the change began: the first edge of a debounced burst.
	Time time.Time
	// Active is the input's new state: motion for a PIR, the cabinet open
	// for a tamper switch.
	Active bool
	// Initial marks the first event of a Run, which reports the state the
	// input was found in rather than a change.
	Initial bool
}

// MotionSensor reports motion: Run sends an event when motion starts
// (Active) and when it stops.
type MotionSensor interface {
	Run(ctx context.Context, out chan<- Event) error
}

// TamperSwitch reports the cabinet opening and closing: Run sends an event
// at every change (Active is open), and Active returns the state now; known
// is false until Run has read it.
type TamperSwitch interface {
	Run(ctx context.Context, out chan<- Event) error
	Active() (open, known bool)
}

// Relay is an output switched on and off, such as an IR illuminator's
// relay. On reports the state the output is in.
type Relay interface {
	Set(on bool) error
	On() bool
}

// PinLookup returns the pin called name (e.g. "GPIO17"). hal/gpio/board
// gives one for the board the agent runs on.
type PinLookup func(name string) (pgpio.PinIO, error)

// Pull is an input's pull resistor.
type Pull string

// Pulls.
const (
	// PullDefault leaves the pin's pull as the board set it.
	PullDefault Pull = ""
	PullUp      Pull = "up"
	PullDown    Pull = "down"
	// PullNone disables the pull resistor, for a sensor that drives its
	// output both ways.
	PullNone Pull = "none"
)

func (p Pull) periph() pgpio.Pull {
	switch p {
	case PullUp:
		return pgpio.PullUp
	case PullDown:
		return pgpio.PullDown
	case PullNone:
		return pgpio.Float
	}
	return pgpio.PullNoChange
}

// Debounce limits.
const (
	// DefaultDebounce is the debounce when InputConfig.Debounce is 0:
	// longer than a microswitch's bounce, far shorter than a person.
	DefaultDebounce = 50 * time.Millisecond
	// MaxDebounce is the longest debounce accepted.
	MaxDebounce = 10 * time.Second
)

// InputConfig describes a digital input.
//
// For a PIR module (HC-SR501 and the like, whose output is driven high on
// motion) the usual setting is Pull: PullDown, ActiveLow false. For a
// tamper microswitch wired to ground that closes when the door closes,
// Pull: PullUp, ActiveLow false: the pin reads high, active, when the door
// opens or the wire is cut.
type InputConfig struct {
	// Pin is the pin's name as periph knows it, e.g. "GPIO17" (BCM
	// numbering on a Raspberry Pi) or "P1_11" (header position).
	Pin string `yaml:"pin"`
	// ActiveLow says the input is active when the pin reads low.
	ActiveLow bool `yaml:"active_low"`
	// Pull is PullUp, PullDown, PullNone or PullDefault ("").
	Pull Pull `yaml:"pull"`
	// Debounce is how long the level must hold, with no further edge,
	// before a change is reported; 0 means DefaultDebounce, at most
	// MaxDebounce.
	Debounce time.Duration `yaml:"debounce"`
}

// Validate fills in defaults and checks c, before any I/O.
func (c *InputConfig) Validate() error {
	if c.Debounce == 0 {
		c.Debounce = DefaultDebounce
	}
	switch {
	case c.Pin == "":
		return fmt.Errorf("gpio: input: no pin: name it as the board does, e.g. GPIO17")
	case c.Debounce < 0 || c.Debounce > MaxDebounce:
		return fmt.Errorf("gpio: input %s: debounce %s: must be 0-%s (0 for %s)", c.Pin, c.Debounce, MaxDebounce, DefaultDebounce)
	}
	switch c.Pull {
	case PullDefault, PullUp, PullDown, PullNone:
	default:
		return fmt.Errorf("gpio: input %s: pull %q: use up, down, none, or leave it empty for the board's default", c.Pin, c.Pull)
	}
	return nil
}

// OutputConfig describes a digital output.
type OutputConfig struct {
	// Pin is the pin's name as periph knows it, e.g. "GPIO27".
	Pin string `yaml:"pin"`
	// ActiveLow says the output is on when the pin is driven low, as on
	// most opto-isolated relay boards.
	ActiveLow bool `yaml:"active_low"`
}

// Validate checks c, before any I/O.
func (c *OutputConfig) Validate() error {
	if c.Pin == "" {
		return fmt.Errorf("gpio: output: no pin: name it as the board does, e.g. GPIO27")
	}
	return nil
}

// hint is what to check when a pin fails.
const hint = "check no other driver or overlay (1-wire, I²C, SPI, UART) uses the pin and that the agent may use the GPIO devices (gpio group)"
