package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/internal/sdnotify"
)

// The agent under systemd (Type=notify, WatchdogSec=): it tells systemd
// when it is ready, how it is doing, that it is stopping, and that it is
// alive — but only while it is healthy, so that systemd restarts an agent
// that is hung or cannot repair itself.
//
//   - READY=1 once the unit is built and every component is running, or
//     at the latest ReadyTimeout (30 s) after start: a unit with a broken
//     camera must still come up and report the fault to the control room.
//   - STATUS=... a one-line summary (`systemctl status outpost` shows it),
//     sent when it changes: "6/6 components running", or the components
//     that are not, with their state, restarts and last error.
//   - WATCHDOG=1 every WATCHDOG_USEC/2 while the agent is healthy.
//   - STOPPING=1 when the shutdown begins.
//
// Healthy is healthTracker's judgement, the same as the board's watchdog
// uses: no component has been failing for FailingFor (10 min) or more,
// where a component is failing from the moment it is seen restarting (or
// its restart count has grown) until it has been running again for
// Recovered (1 min, the supervisor's own StableAfter), so a component that
// crash-loops, running briefly between backoffs, stays failing. The
// supervisor retries a failed component with a backoff of up to a minute,
// so ten minutes is at least eight attempts at the longest backoff; when
// those have not helped, a fresh process (devices reopened, descriptors and
// memory released) is the next remedy, and withholding the pings makes
// systemd restart the agent within WatchdogSec. A hung agent — supervisor
// locks held, the notifier's goroutine starved — stops the pings the same
// way.

// SystemdOptions tunes the systemd notifier. Zero fields take the defaults
// noted.
type SystemdOptions struct {
	Clock clock.Clock // default clock.Real
	// Poll is how often the components' health is read (default 1 s, and
	// at least four times per watchdog interval).
	Poll time.Duration
	// ReadyTimeout bounds the wait for every component to run before
	// READY=1 is sent anyway (default 30 s).
	ReadyTimeout time.Duration
	// FailingFor is how long one component may keep failing before the
	// agent counts as unhealthy and the watchdog pings stop (default 10 min).
	FailingFor time.Duration
	// Recovered is how long a failed component must run again before it
	// stops counting as failing (default 1 min).
	Recovered time.Duration
}

// Systemd reports the agent's state to systemd. Create it with NewSystemd;
// a nil *Systemd does nothing.
type Systemd struct {
	n        *sdnotify.Notifier
	watchdog time.Duration // 0: no watchdog
	statuses func() []Status
	log      *slog.Logger
	opts     SystemdOptions

	start     time.Time
	ready     bool
	healthy   bool
	lastPing  time.Time
	status    string
	sendErr   bool
	health    *healthTracker
	unhealthy []string // names of the components failing for too long
}

// NewSystemd returns a notifier reading the environment through getenv
// ($NOTIFY_SOCKET, $WATCHDOG_USEC, $WATCHDOG_PID) and the components'
// health through statuses. It returns nil when the agent was not started
// by systemd with Type=notify (no $NOTIFY_SOCKET).
func NewSystemd(getenv func(string) string, statuses func() []Status, log *slog.Logger, opts SystemdOptions) (*Systemd, error) {
	if getenv == nil {
		return nil, nil
	}
	n, err := sdnotify.New(getenv("NOTIFY_SOCKET"))
	if err != nil || n == nil {
		return nil, err
	}
	wd, err := sdnotify.WatchdogInterval(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), os.Getpid())
	if err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if wd > 0 && opts.Poll > wd/4 {
		opts.Poll = max(wd/4, time.Millisecond)
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	health := newHealthTracker(opts.FailingFor, opts.Recovered)
	opts.FailingFor, opts.Recovered = health.failingFor, health.recovered
	return &Systemd{
		n: n, watchdog: wd, statuses: statuses, opts: opts, healthy: true,
		log: log.With("component", "systemd"), health: health,
	}, nil
}

// NotifySystemd starts reporting to systemd when the agent runs under it
// (see Systemd) and returns a function that sends STOPPING=1, if ctx has
// not already ended, and waits for the reporting to end. Problems with the
// environment are logged; they never stop the agent.
func NotifySystemd(ctx context.Context, getenv func(string) string, statuses func() []Status, log *slog.Logger) (stop func()) {
	s, err := NewSystemd(getenv, statuses, log, SystemdOptions{})
	if err != nil {
		log.Warn("not reporting to systemd", "err", err)
	}
	if s == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.Run(ctx)
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// Run reports until ctx ends, then sends STOPPING=1.
func (s *Systemd) Run(ctx context.Context) {
	if s == nil {
		return
	}
	s.start = s.opts.Clock.Now()
	if s.watchdog > 0 {
		s.log.Info("reporting to systemd", "watchdog", s.watchdog, "failing_for", s.opts.FailingFor)
	} else {
		s.log.Info("reporting to systemd; no watchdog set (WatchdogSec=)")
	}
	t := s.opts.Clock.NewTicker(s.opts.Poll)
	defer t.Stop()
	s.step(s.start)
	for {
		select {
		case <-ctx.Done():
			s.send(sdnotify.Stopping, sdnotify.Status("stopping"))
			return
		case <-t.C():
			// The clock's time, not the tick's: ticks missed while a
			// step ran are dropped, and the next step sees the present.
			s.step(s.opts.Clock.Now())
		}
	}
}

// step reads the components' health at now and sends what is due, in one
// datagram.
func (s *Systemd) step(now time.Time) {
	sts := s.statuses()
	s.unhealthy = s.health.update(sts, now)

	var msg []string
	if !s.ready {
		all := len(sts) > 0 // none: the unit is not built yet
		for _, st := range sts {
			all = all && st.State == StateRunning
		}
		if all || now.Sub(s.start) >= s.opts.ReadyTimeout {
			s.ready = true
			msg = append(msg, sdnotify.Ready)
			if !all {
				s.log.Warn("ready, though not every component is running", "waited", now.Sub(s.start))
			}
		}
	}

	healthy := len(s.unhealthy) == 0
	if healthy != s.healthy {
		s.healthy = healthy
		if healthy {
			s.log.Info("agent healthy again: resuming systemd watchdog pings")
		} else {
			s.log.Error("components failing for too long: stopping systemd watchdog pings, systemd will restart the agent",
				"components", s.unhealthy, "failing_for", s.opts.FailingFor, "watchdog", s.watchdog)
		}
	}
	if st := s.summary(sts); st != s.status {
		s.status = st
		msg = append(msg, sdnotify.Status(st))
	}
	// Due at half the interval, less half a poll: a tick a little early
	// must not push the ping a whole poll later.
	if s.watchdog > 0 && healthy && (s.lastPing.IsZero() || now.Sub(s.lastPing) >= s.watchdog/2-s.opts.Poll/2) {
		s.lastPing = now
		msg = append(msg, sdnotify.Watchdog)
	}
	s.send(msg...)
}

// summary is the STATUS= line: "6/6 components running", or the
// components that are not running.
func (s *Systemd) summary(sts []Status) string {
	running := 0
	var others []string
	for _, st := range sts {
		if st.State == StateRunning {
			running++
			continue
		}
		o := fmt.Sprintf("%s %s", st.Name, st.State)
		if st.Restarts > 0 {
			o += fmt.Sprintf(" (%d restarts)", st.Restarts)
		}
		if st.LastError != "" && st.State == StateRestarting {
			o += ": " + truncate(st.LastError, 80)
		}
		others = append(others, o)
	}
	if len(sts) == 0 {
		return "starting"
	}
	line := fmt.Sprintf("%d/%d components running", running, len(sts))
	if len(others) > 0 {
		line += "; " + strings.Join(others, "; ")
	}
	if len(s.unhealthy) > 0 {
		line = fmt.Sprintf("unhealthy, watchdog pings stopped (%s failing for over %s); %s",
			strings.Join(s.unhealthy, ", "), s.opts.FailingFor, line)
	}
	return truncate(line, 400)
}

// Statuses reports the components of the unit the runner runs, or nil
// before the first one is built.
func (r *Runner) Statuses() []Status {
	r.mu.Lock()
	u := r.unit
	r.mu.Unlock()
	if u == nil {
		return nil
	}
	return u.Statuses()
}

// truncate shortens s to at most n bytes, at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// send sends one datagram, logging the first of a run of failures.
func (s *Systemd) send(assignments ...string) {
	if len(assignments) == 0 {
		return
	}
	err := s.n.Send(assignments...)
	switch {
	case err != nil && !s.sendErr:
		s.log.Warn("cannot notify systemd", "err", err)
	case err == nil && s.sendErr:
		s.log.Info("notifying systemd again")
	}
	s.sendErr = err != nil
}
