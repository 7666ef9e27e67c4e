package gpio

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"

	"github.com/outpost-cctv/outpost/internal/clock"
)

// DefaultPoll is the longest Run waits for an edge before it looks at its
// context and samples the level.
const DefaultPoll = 100 * time.Millisecond

// Input is a debounced digital input: a PIR motion sensor's output or a
// cabinet tamper switch.
type Input struct {
	cfg  InputConfig
	pin  pgpio.PinIn
	clk  clock.Clock
	log  *slog.Logger
	poll time.Duration

	mu      sync.Mutex
	running bool
	active  bool
	known   bool
}

var (
	_ MotionSensor = (*Input)(nil)
	_ TamperSwitch = (*Input)(nil)
)

// NewInput returns the input on pin. It does no I/O: Run sets the pin up.
func NewInput(pin pgpio.PinIn, cfg InputConfig, clk clock.Clock, log *slog.Logger) (*Input, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pin == nil {
		return nil, fmt.Errorf("gpio: input %s: no such pin", cfg.Pin)
	}
	return &Input{cfg: cfg, pin: pin, clk: clk, log: log.With("component", "gpio", "pin", cfg.Pin), poll: DefaultPoll}, nil
}

// Active returns the debounced state; known is false until Run has read
// the pin.
func (in *Input) Active() (active, known bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.active, in.known
}

func (in *Input) set(active bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.active, in.known = active, true
}

// level reads whether the pin is at its active level now.
func (in *Input) level() bool {
	return (in.pin.Read() == pgpio.High) != in.cfg.ActiveLow
}

// Run sets the pin up as an input with edge detection, sends its state as
// an Initial event, then an event at each debounced change, until ctx ends;
// then it returns nil. Run blocks while out is not read. An error setting
// the pin up is returned at once. Only one Run may be going at a time.
func (in *Input) Run(ctx context.Context, out chan<- Event) error {
	in.mu.Lock()
	if in.running {
		in.mu.Unlock()
		return fmt.Errorf("gpio: input %s: already running", in.cfg.Pin)
	}
	in.running = true
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.running = false
		in.mu.Unlock()
	}()

	pull := in.cfg.Pull.periph()
	if err := in.pin.In(pull, pgpio.BothEdges); err != nil {
		return fmt.Errorf("gpio: input %s: set up with pull %s and edge detection: %w: %s", in.cfg.Pin, pull, err, hint)
	}
	defer func() {
		if err := in.pin.In(pull, pgpio.NoEdge); err != nil {
			in.log.Debug("could not stop edge detection", "err", err)
		}
	}()

	send := func(ev Event) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	stable := in.level()
	in.set(stable)
	if !send(Event{Time: in.clk.Now(), Active: stable, Initial: true}) {
		return nil
	}
	var (
		pending     bool      // an edge came and the level has not held yet
		first, last time.Time // the burst's first and latest edge
	)
	for ctx.Err() == nil {
		wait := in.poll
		if pending {
			wait = min(wait, max(in.cfg.Debounce-in.clk.Now().Sub(last), time.Millisecond))
		}
		edge := in.pin.WaitForEdge(wait)
		now := in.clk.Now()
		switch {
		case edge:
			if !pending {
				pending, first = true, now
			}
			last = now
		case !pending:
			// No edge for a while: sample, in case one was missed.
			if in.level() != stable {
				pending, first, last = true, now, now
			}
		case now.Sub(last) >= in.cfg.Debounce:
			pending = false
			lvl := in.level()
			if lvl == stable {
				continue // a glitch that came back
			}
			stable = lvl
			in.set(stable)
			in.log.Debug("input changed", "active", stable)
			if !send(Event{Time: first, Active: stable}) {
				return nil
			}
		}
	}
	return nil
}
