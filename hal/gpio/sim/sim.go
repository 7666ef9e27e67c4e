// Package sim simulates the unit's GPIO devices, so the agent's motion,
// tamper and illuminator logic can be run and tested without a board: a
// PIR sensor fired programmatically or on a schedule, a tamper switch
// opened and closed programmatically, and a relay that records every time
// it is set.
//
// Times come from the clock each is given, so tests drive them with a
// clock.Fake.
package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/hal/gpio"
	"github.com/outpost-cctv/outpost/internal/clock"
)

var (
	_ gpio.MotionSensor = (*PIR)(nil)
	_ gpio.TamperSwitch = (*Tamper)(nil)
	_ gpio.Relay        = (*Relay)(nil)
)

// DefaultHold is a PIR's hold time when PIRConfig.Hold is 0, a common
// setting of HC-SR501 modules.
const DefaultHold = 5 * time.Second

// PIRConfig describes a simulated PIR sensor.
type PIRConfig struct {
	// Hold is how long motion is reported after the last trigger, as a
	// real module's output stays high; 0 means DefaultHold.
	Hold time.Duration
	// Every fires the sensor at this interval of the clock; 0 means only
	// when Fire is called.
	Every time.Duration
}

// PIR is a simulated PIR motion sensor.
type PIR struct {
	cfg  PIRConfig
	clk  clock.Clock
	fire chan struct{}

	mu      sync.Mutex
	running bool
}

// NewPIR returns a simulated PIR sensor.
func NewPIR(cfg PIRConfig, clk clock.Clock) (*PIR, error) {
	if cfg.Hold == 0 {
		cfg.Hold = DefaultHold
	}
	if cfg.Hold < 0 || cfg.Every < 0 {
		return nil, fmt.Errorf("gpio sim: pir: hold %s, every %s: must not be negative", cfg.Hold, cfg.Every)
	}
	return &PIR{cfg: cfg, clk: clk, fire: make(chan struct{}, 1)}, nil
}

// Fire triggers the sensor, as a person walking past does: motion starts,
// or goes on for another Hold. It does not block; a trigger while the last
// is not taken yet is merged with it.
func (p *PIR) Fire() {
	select {
	case p.fire <- struct{}{}:
	default:
	}
}

// Run sends the initial inactive state, then an active event when motion
// starts and an inactive one Hold after the last trigger, until ctx ends;
// then it returns nil. Only one Run may be going at a time.
func (p *PIR) Run(ctx context.Context, out chan<- gpio.Event) error {
	if err := claim(&p.mu, &p.running, "pir"); err != nil {
		return err
	}
	defer release(&p.mu, &p.running)

	var tick <-chan time.Time
	if p.cfg.Every > 0 {
		t := p.clk.NewTicker(p.cfg.Every)
		defer t.Stop()
		tick = t.C()
	}
	var (
		hold   clock.Timer
		holdC  <-chan time.Time
		active bool
	)
	defer func() {
		if hold != nil {
			hold.Stop()
		}
	}()
	if !send(ctx, out, gpio.Event{Time: p.clk.Now(), Initial: true}) {
		return nil
	}
	var at time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case end := <-holdC:
			holdC, active = nil, false
			if !send(ctx, out, gpio.Event{Time: end}) {
				return nil
			}
			continue
		case <-p.fire:
			at = p.clk.Now()
		case at = <-tick:
		}
		// Triggered at at.
		if hold == nil {
			hold = p.clk.NewTimer(p.cfg.Hold)
		} else {
			hold.Stop()
			select { // a fire not taken yet is stale now
			case <-hold.C():
			default:
			}
			hold.Reset(p.cfg.Hold)
		}
		holdC = hold.C()
		if !active {
			active = true
			if !send(ctx, out, gpio.Event{Time: at, Active: true}) {
				return nil
			}
		}
	}
}

// Tamper is a simulated cabinet tamper switch.
type Tamper struct {
	clk     clock.Clock
	changed chan struct{}

	mu      sync.Mutex
	open    bool
	queue   []gpio.Event // changes not yet sent
	running bool
}

// NewTamper returns a simulated tamper switch, open or closed.
func NewTamper(clk clock.Clock, open bool) *Tamper {
	return &Tamper{clk: clk, open: open, changed: make(chan struct{}, 1)}
}

// SetOpen opens or closes the cabinet. Every change is sent by Run, in
// order, even if several come before Run takes them.
func (t *Tamper) SetOpen(open bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if open == t.open {
		return
	}
	t.open = open
	t.queue = append(t.queue, gpio.Event{Time: t.clk.Now(), Active: open})
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// Toggle opens a closed cabinet or closes an open one.
func (t *Tamper) Toggle() {
	t.mu.Lock()
	open := !t.open
	t.mu.Unlock()
	t.SetOpen(open)
}

// Active reports whether the cabinet is open; the simulation always knows.
func (t *Tamper) Active() (open, known bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.open, true
}

// Run sends the state as an Initial event, then each change, until ctx
// ends; then it returns nil. Only one Run may be going at a time.
func (t *Tamper) Run(ctx context.Context, out chan<- gpio.Event) error {
	if err := claim(&t.mu, &t.running, "tamper"); err != nil {
		return err
	}
	defer release(&t.mu, &t.running)
	t.mu.Lock()
	initial := gpio.Event{Time: t.clk.Now(), Active: t.open, Initial: true}
	t.queue = nil // changes before Run are in the initial state
	t.mu.Unlock()
	if !send(ctx, out, initial) {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.changed:
		}
		t.mu.Lock()
		q := t.queue
		t.queue = nil
		t.mu.Unlock()
		for _, ev := range q {
			if !send(ctx, out, ev) {
				return nil
			}
		}
	}
}

// RelayChange is one Set of a simulated relay.
type RelayChange struct {
	Time time.Time
	On   bool
}

// Relay is a simulated relay that records every Set.
type Relay struct {
	clk clock.Clock

	mu      sync.Mutex
	on      bool
	history []RelayChange
	fail    error
}

// NewRelay returns a simulated relay, off.
func NewRelay(clk clock.Clock) *Relay { return &Relay{clk: clk} }

// Set switches the relay and records it, unless FailWith set an error.
func (r *Relay) Set(on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.on = on
	r.history = append(r.history, RelayChange{Time: r.clk.Now(), On: on})
	return nil
}

// On reports whether the relay is on.
func (r *Relay) On() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.on
}

// History returns every successful Set, in order.
func (r *Relay) History() []RelayChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.history)
}

// FailWith makes every later Set fail with err, as a pin claimed by
// another driver does; nil makes Set work again.
func (r *Relay) FailWith(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = err
}

func send(ctx context.Context, out chan<- gpio.Event, ev gpio.Event) bool {
	select {
	case out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

var errRunning = errors.New("already running")

func claim(mu *sync.Mutex, running *bool, what string) error {
	mu.Lock()
	defer mu.Unlock()
	if *running {
		return fmt.Errorf("gpio sim: %s: %w", what, errRunning)
	}
	*running = true
	return nil
}

func release(mu *sync.Mutex, running *bool) {
	mu.Lock()
	defer mu.Unlock()
	*running = false
}
