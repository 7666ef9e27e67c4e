package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/outpost-cctv/outpost/agent"
	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/internal/version"
	"github.com/outpost-cctv/outpost/ota"
)

// launchCmd is `outpost launch --config FILE`, the process the service
// manager runs. At every start of the agent it resumes the update state
// machine (ota.Installer.Resume: counting the boots of a release on
// trial, rolling back one that crashes at start-up or outlives its trial
// unconfirmed), then runs <ota root>/current/outpost run --config FILE as
// its child, forwarding SIGTERM and SIGINT. It starts the child again at
// once when it exits with agent.ExitRestart (or 0 of its own accord: it
// stopped for an update), after a backoff when it crashes, and exits with
// the child's code for 2 (configuration invalid) and 5 (battery shutdown).
func launchCmd(ctx context.Context, env Env, args []string) int {
	fs := newFlagSet("launch", env)
	path := fs.String("config", "/etc/outpost/outpost.yaml", "config file")
	if fs.Parse(args) != nil {
		return agent.ExitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return agent.ExitUsage
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(env.Stderr, "outpost launch:", err)
		return agent.ExitFailure
	}
	l := &launcher{
		cfg: cfg, path: *path, self: self, env: env, clk: clock.Real{},
		log: newLogger(env.Stderr, cfg.Log).With("component", "launcher"),
	}
	return l.run(ctx)
}

type launcher struct {
	cfg  config.Config
	path string
	self string // the packaged binary, run when updates are not set up
	env  Env
	clk  clock.Clock
	log  *slog.Logger
	// started is set once the launcher has made its first start: the
	// first is after a boot (or a restart of the service), when a trial
	// cut short by a power cut gets its window again.
	started bool
}

// Backoff between crashes of the agent: short while a release is on
// trial (its crashes are counted towards a rollback), else growing to a
// minute and reset after a minute of stable running.
const (
	launchBackoffMin   = time.Second
	launchBackoffMax   = time.Minute
	launchStable       = time.Minute
	launchTrialBackoff = time.Second
)

func (l *launcher) run(ctx context.Context) int {
	backoff := launchBackoffMin
	for {
		bin, deadline := l.prepare()
		started, before := l.clk.Now(), l.updated()
		code, stopped := l.runChild(ctx, bin, deadline)
		if stopped {
			return code
		}
		ran := l.clk.Now().Sub(started)
		switch {
		case code == agent.ExitUsage || code == agent.ExitPowerShutdown:
			l.log.Info("the agent stopped for good", "code", code)
			return code
		case code == agent.ExitRestart || (code == agent.ExitOK && !l.updated().Equal(before)):
			// It stopped for an update: it changed the update state.
			l.log.Info("restarting the agent", "code", code)
			backoff = launchBackoffMin
			continue
		}
		if ran > launchStable {
			backoff = launchBackoffMin
		}
		wait := backoff
		if l.onTrial() {
			// A crash of the release on trial counts towards its rollback
			// (a restart after a power cut does not).
			l.noteCrash()
			wait = launchTrialBackoff
		} else {
			backoff = min(backoff*2, launchBackoffMax)
		}
		l.log.Warn("the agent exited; starting it again", "code", code, "ran", ran.Round(time.Millisecond), "after", wait)
		t := l.clk.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return code
		case <-t.C():
		}
	}
}

// installer opens the update state; nil when updates are not set up.
func (l *launcher) installer() (*ota.Installer, error) {
	icfg, err := agent.OTAInstallerConfig(l.cfg, l.clk, l.log)
	if err != nil {
		return nil, err
	}
	if len(icfg.Keys) == 0 {
		return nil, nil
	}
	return ota.New(icfg)
}

// updated is when the update state was last saved (zero: no state).
func (l *launcher) updated() time.Time {
	inst, err := l.installer()
	if err != nil || inst == nil {
		return time.Time{}
	}
	return inst.Status().Updated
}

func (l *launcher) noteCrash() {
	inst, err := l.installer()
	if err == nil && inst != nil {
		err = inst.NoteCrash()
	}
	if err != nil {
		l.log.Error("recording the crash of the release on trial", "err", err)
	}
}

func (l *launcher) onTrial() bool {
	inst, err := l.installer()
	return err == nil && inst != nil && inst.Status().State == ota.StateTrial
}

// prepare resumes the update state and returns the binary to run and, for
// a release on trial, its deadline.
func (l *launcher) prepare() (string, time.Time) {
	inst, err := l.installer()
	if err != nil {
		l.log.Error("update state unreadable; running the packaged agent", "err", err)
		return l.self, time.Time{}
	}
	if inst == nil {
		l.log.Info("no release key pinned (ota.keys): running the packaged agent, updates off")
		return l.self, time.Time{}
	}
	if inst.Status().State == "" {
		// The first start: the packaged binary becomes slot a.
		if err := os.MkdirAll(agent.OTARoot(l.cfg), 0o755); err != nil {
			l.log.Error("cannot set up updates; running the packaged agent", "err", err)
			return l.self, time.Time{}
		}
		if err := inst.Bootstrap(context.Background(), l.self, version.Version); err != nil {
			l.log.Error("cannot set up updates; running the packaged agent", "err", err)
			return l.self, time.Time{}
		}
		l.log.Info("updates set up", "root", agent.OTARoot(l.cfg), "version", version.Version)
	}
	if !l.started {
		l.started = true
		if err := inst.PowerRestored(l.clk.Now()); err != nil {
			l.log.Error("saving the update state", "err", err)
		}
	}
	act, err := inst.Resume(l.clk.Now())
	rec := inst.Status()
	if err != nil {
		l.log.Error("resuming the update state", "err", err, "state", rec.State)
	}
	l.log.Info("starting the agent", "action", act, "state", rec.State, "running", rec.Running.Version, "target", target(rec), "reason", rec.Reason)
	bin := inst.BinaryPath()
	if _, err := os.Stat(bin); err != nil {
		l.log.Error("the release to run is missing; running the packaged agent", "err", err)
		return l.self, time.Time{}
	}
	if act == ota.ActionTrial {
		return bin, rec.TrialDeadline
	}
	return bin, time.Time{}
}

func target(r ota.Record) string {
	if r.Target == nil {
		return ""
	}
	return r.Target.Version
}

// runChild runs bin until it exits. stopped is true when the launcher was
// told to stop (ctx done): the code is then the child's. A release on
// trial still running at its deadline is stopped so that Resume rolls it
// back, whether or not it is able to do so itself.
func (l *launcher) runChild(ctx context.Context, bin string, deadline time.Time) (code int, stopped bool) {
	cmd := exec.Command(bin, "run", "--config", l.path)
	cmd.Stdout, cmd.Stderr = l.env.Stdout, l.env.Stderr
	cmd.Env = append(os.Environ(), agent.EnvLauncher+"=1")
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		l.log.Error("cannot start the agent", "binary", bin, "err", err)
		return agent.ExitFailure, false
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var trialEnd <-chan time.Time
	if !deadline.IsZero() {
		t := l.clk.NewTimer(deadline.Sub(l.clk.Now()) + 2*time.Second)
		defer t.Stop()
		trialEnd = t.C()
	}
	for {
		select {
		case err := <-done:
			return exitCode(err), false
		case <-ctx.Done():
			l.log.Info("stopping the agent")
			return exitCode(l.stop(cmd, done)), true
		case <-trialEnd:
			trialEnd = nil
			if l.onTrial() {
				l.log.Warn("the release on trial was not confirmed by its deadline; stopping it to roll back", "deadline", deadline)
				l.stop(cmd, done)
				return agent.ExitRestart, false
			}
		}
	}
}

// stop sends SIGTERM to the child and waits for it, killing it when it
// outlives the shutdown bound.
func (l *launcher) stop(cmd *exec.Cmd, done <-chan error) error {
	cmd.Process.Signal(syscall.SIGTERM)
	t := l.clk.NewTimer(l.cfg.ShutdownTimeout.D() + 10*time.Second)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C():
		l.log.Error("the agent did not stop; killing it")
		cmd.Process.Kill()
		return <-done
	}
}

func exitCode(err error) int {
	if err == nil {
		return agent.ExitOK
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ee.ExitCode() >= 0 {
			return ee.ExitCode()
		}
		return agent.ExitFailure // killed by a signal
	}
	return agent.ExitFailure
}
