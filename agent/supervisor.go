package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/internal/backoff"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// Component is one long-running part of the agent (camera capture,
// recorder, uplink, telemetry, ...). Run does the component's work until
// ctx is cancelled, then flushes what must be flushed and returns nil. A
// non-nil return before ctx is cancelled is a failure: the supervisor
// restarts the component after a backoff, leaving the others running.
type Component interface {
	Name() string
	Run(ctx context.Context) error
}

// Readier is implemented by components that others depend on and that take
// time to become usable (opening the footage store, say). Dependents are
// started once Ready is closed, or after the supervisor's ready timeout.
type Readier interface {
	Ready() <-chan struct{}
}

// State is a component's lifecycle state, reported in health. The values are
// stable strings: they appear on the wire.
type State string

const (
	StateWaiting    State = "waiting"    // waiting for its dependencies
	StateStarting   State = "starting"   // Run called, not yet ready
	StateRunning    State = "running"    // ready and working
	StateRestarting State = "restarting" // failed; waiting out a backoff
	StateStopped    State = "stopped"    // shut down
)

// Status is a snapshot of one component, for health reporting.
type Status struct {
	Name      string    `json:"name"`
	State     State     `json:"state"`
	Since     time.Time `json:"since"`
	Restarts  int       `json:"restarts"`
	LastError string    `json:"last_error,omitempty"`
}

// SupervisorOptions tunes restart and shutdown behaviour. Zero fields take
// the defaults noted.
type SupervisorOptions struct {
	Clock clock.Clock // default clock.Real
	// MinBackoff and MaxBackoff bound restart delays (default 1 s, 1 min).
	MinBackoff, MaxBackoff time.Duration
	// StableAfter is how long a component must run before its backoff is
	// reset (default 1 min).
	StableAfter time.Duration
	// ReadyTimeout is how long dependents wait for a dependency to be
	// ready before starting anyway (default 30 s).
	ReadyTimeout time.Duration
}

// Supervisor runs components in dependency order, restarts each on failure
// without disturbing the others, and stops them in reverse order.
type Supervisor struct {
	log  *slog.Logger
	opts SupervisorOptions

	mu     sync.Mutex
	units  []*supervised
	byName map[string]*supervised
}

type supervised struct {
	c     Component
	deps  []*supervised
	ready chan struct{} // closed once the component has been ready at least once
	done  chan struct{} // closed when its goroutine has exited

	mu     sync.Mutex
	status Status
}

// NewSupervisor returns a supervisor that logs to log.
func NewSupervisor(log *slog.Logger, opts SupervisorOptions) *Supervisor {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.StableAfter == 0 {
		opts.StableAfter = time.Minute
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	return &Supervisor{log: log.With("component", "supervisor"), opts: opts, byName: map[string]*supervised{}}
}

// Add registers a component that starts after the named dependencies, which
// must have been added before it. Add must not be called after Run.
func (s *Supervisor) Add(c Component, dependsOn ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.byName[c.Name()]; dup {
		return fmt.Errorf("agent: component %q added twice", c.Name())
	}
	u := &supervised{c: c, ready: make(chan struct{}), done: make(chan struct{})}
	for _, d := range dependsOn {
		dep, ok := s.byName[d]
		if !ok {
			return fmt.Errorf("agent: component %q depends on %q, which is not added before it", c.Name(), d)
		}
		u.deps = append(u.deps, dep)
	}
	u.status = Status{Name: c.Name(), State: StateWaiting, Since: s.opts.Clock.Now()}
	s.units = append(s.units, u)
	s.byName[c.Name()] = u
	return nil
}

// Statuses returns every component's current status, in start order.
func (s *Supervisor) Statuses() []Status {
	s.mu.Lock()
	units := append([]*supervised(nil), s.units...)
	s.mu.Unlock()
	out := make([]Status, len(units))
	for i, u := range units {
		u.mu.Lock()
		out[i] = u.status
		u.mu.Unlock()
	}
	return out
}

func (s *Supervisor) set(u *supervised, st State, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.status.State != st {
		u.status.State = st
		u.status.Since = s.opts.Clock.Now()
	}
	if err != nil {
		u.status.LastError = err.Error()
	}
}

// ErrShutdownTimeout is returned by Run when components did not stop within
// the shutdown bound.
var ErrShutdownTimeout = errors.New("agent: components did not stop within the shutdown timeout")

// Run starts every component and supervises them until ctx is cancelled.
// It then stops them in reverse dependency order: each component's context
// is cancelled only after every component depending on it has returned, so
// a recorder flushes into a store that is still open. The whole shutdown is
// bounded by shutdownTimeout; Run returns ErrShutdownTimeout (naming the
// stragglers) if it is exceeded.
func (s *Supervisor) Run(ctx context.Context, shutdownTimeout time.Duration) error {
	s.mu.Lock()
	units := append([]*supervised(nil), s.units...)
	s.mu.Unlock()

	cancels := make([]context.CancelFunc, len(units))
	for i, u := range units {
		// Each component gets its own context, not derived from ctx, so
		// that shutdown can proceed in order.
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cancels[i] = cancel
		go s.supervise(cctx, u)
	}

	<-ctx.Done()
	s.log.Info("shutting down", "timeout", shutdownTimeout)
	deadline := s.opts.Clock.NewTimer(shutdownTimeout)
	defer deadline.Stop()
	timedOut := false
	for i := len(units) - 1; i >= 0; i-- {
		cancels[i]()
		if timedOut {
			continue
		}
		select {
		case <-units[i].done:
		case <-deadline.C():
			timedOut = true
		}
	}
	if timedOut {
		var stuck []string
		for _, u := range units {
			select {
			case <-u.done:
			default:
				stuck = append(stuck, u.c.Name())
			}
		}
		return fmt.Errorf("%w: %v", ErrShutdownTimeout, stuck)
	}
	return nil
}

func (s *Supervisor) supervise(ctx context.Context, u *supervised) {
	defer close(u.done)
	defer s.set(u, StateStopped, nil)
	log := s.log.With("name", u.c.Name())

	for _, d := range u.deps {
		t := s.opts.Clock.NewTimer(s.opts.ReadyTimeout)
		select {
		case <-d.ready:
		case <-t.C():
			log.Warn("dependency not ready in time; starting anyway", "dependency", d.c.Name(), "waited", s.opts.ReadyTimeout)
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}

	bo := backoff.New(s.opts.MinBackoff, s.opts.MaxBackoff)
	var readyOnce sync.Once
	markReady := func() { readyOnce.Do(func() { close(u.ready) }) }
	for {
		s.set(u, StateStarting, nil)
		started := s.opts.Clock.Now()
		err := s.runOnce(ctx, u, markReady)
		if ctx.Err() != nil {
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("stopped with an error", "err", err)
			}
			return
		}
		if err == nil {
			err = errors.New("returned while the agent was still running")
		}
		if s.opts.Clock.Now().Sub(started) >= s.opts.StableAfter {
			bo.Reset()
		}
		u.mu.Lock()
		u.status.Restarts++
		n := u.status.Restarts
		u.mu.Unlock()
		s.set(u, StateRestarting, err)
		log.Error("component failed; restarting after backoff", "err", err, "restarts", n)
		if bo.Wait(ctx, s.opts.Clock) != nil {
			return
		}
	}
}

// runOnce runs the component once, turning a panic into an error so that
// one broken component cannot take the agent down.
func (s *Supervisor) runOnce(ctx context.Context, u *supervised, markReady func()) (err error) {
	var wg sync.WaitGroup
	watchCtx, stopWatch := context.WithCancel(ctx)
	if r, ok := u.c.(Readier); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-r.Ready():
				s.set(u, StateRunning, nil)
				markReady()
			case <-watchCtx.Done():
			}
		}()
	} else {
		s.set(u, StateRunning, nil)
		markReady()
	}
	defer func() {
		stopWatch()
		wg.Wait()
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return u.c.Run(ctx)
}
