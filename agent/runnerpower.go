package agent

import (
	"reflect"

	"context"
	"errors"
	"fmt"
	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/hal/modem"
	"os/exec"
	"strings"
	"time"

	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// ErrPowerShutdown is Run's result when the battery reached the shutdown
// level: the agent stopped cleanly before the battery's own cut-off. The
// binary exits with ExitPowerShutdown, which the service manager must not
// restart (the packaged unit says so).
var ErrPowerShutdown = errors.New("battery at the shutdown level: stopped cleanly to protect the footage and the file system")

// modeChange is a power mode change for the runner's loop.
type modeChange struct {
	from, to, reason string
	reading          power.Reading
}

// powerMode is the power policy's mode.
func (r *Runner) powerMode() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.policy.mode
}

// observePower takes each power reading (from telemetry) and tells the
// runner's loop of a mode change.
func (r *Runner) observePower(rd power.Reading, err error) {
	if err != nil {
		return
	}
	r.mu.Lock()
	from := r.policy.mode
	to, reason, changed := r.policy.observe(rd)
	r.mu.Unlock()
	if !changed {
		return
	}
	mc := modeChange{from: from, to: to, reason: reason, reading: rd}
	for {
		select {
		case r.modes <- mc:
			return
		default:
		}
		select {
		case <-r.modes:
		default:
		}
	}
}

// handleMode reports a mode change and says whether the unit must restart
// (with the configuration of the new mode) or stop.
func (r *Runner) handleMode(ctx context.Context, mc modeChange) (restart, stop bool) {
	sev := wire.SeverityWarning
	switch mc.to {
	case ModeNormal:
		sev = wire.SeverityInfo
	case ModeCritical, ModeShutdown:
		sev = wire.SeverityAlert
	}
	msg := fmt.Sprintf("power mode %s → %s: %s", mc.from, mc.to, mc.reason)
	r.log.Warn("power mode changed", "from", mc.from, "to", mc.to, "reason", mc.reason)
	ev := wire.NewEvent(r.clk.Now(), KindPowerMode, sev, msg)
	ev.Data = map[string]any{"mode": mc.to, "from": mc.from, "reason": mc.reason}
	if v := mc.reading.SOCPercent; v != nil {
		ev.Data["soc_pct"] = *v
	}
	if v := mc.reading.BatteryV; v != nil {
		ev.Data["battery_v"] = *v
	}
	class := uplink.PriorityEvent
	if sev == wire.SeverityAlert {
		class = uplink.PriorityAlert
	}
	if mc.to == ModeShutdown {
		// The agent stops next: the event goes out now, not through the
		// outbox that would send it only at the next start.
		r.publishNow(ctx, ev)
		return false, true
	}
	r.sendEvent(ctx, class, ev)
	return true, false
}

// publishNow publishes an event live through the running unit's session,
// falling back on its outbox when the link is down.
func (r *Runner) publishNow(ctx context.Context, e wire.Event) {
	r.mu.Lock()
	u := r.unit
	r.mu.Unlock()
	if u == nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := u.session.PublishJSON(pctx, u.session.Topics().Events(), 1, false, e); err != nil {
		r.log.Warn("event not published live; queued for the next start", "kind", e.Kind, "err", err)
		r.sendEvent(ctx, uplink.PriorityAlert, e)
	}
}

// sendEvent publishes through the running unit's session (its outbox
// keeps it across a restart).
func (r *Runner) sendEvent(ctx context.Context, class uplink.Priority, e wire.Event) {
	r.mu.Lock()
	u := r.unit
	r.mu.Unlock()
	if u == nil {
		r.log.Warn("event not sent: no unit running", "kind", e.Kind)
		return
	}
	if err := u.session.SendJSON(ctx, class, u.session.Topics().Events(), e); err != nil {
		r.log.Warn("event not sent", "kind", e.Kind, "err", err)
	}
}

// powerOff runs the configured shutdown command once the unit has
// stopped; without one the agent exits and the board stays on until the
// battery's own cut-off (or the command of the service manager).
func (r *Runner) powerOff(ctx context.Context) error {
	cmd := strings.Fields(r.cfg.Power.Policy.ShutdownCommand)
	if len(cmd) == 0 {
		return ErrPowerShutdown
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, cmd[0], cmd[1:]...).CombinedOutput()
	if err != nil {
		r.log.Error("the shutdown command failed", "command", r.cfg.Power.Policy.ShutdownCommand, "err", err, "output", strings.TrimSpace(string(out)))
	}
	return ErrPowerShutdown
}

// devices returns the power sensor and modem for cfg, built once and kept
// while their settings stay the same (the power policy's levels aside).
func (r *Runner) devices(cfg config.Config) (power.Sensor, modem.Modem, error) {
	key := cfg
	key.Power.Policy = config.PowerPolicy{}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dev.pw != nil && reflect.DeepEqual(r.dev.power, key.Power) && reflect.DeepEqual(r.dev.modem, key.Modem) {
		return r.dev.pw, r.dev.md, nil
	}
	pw, md, err := newDevices(cfg, r.clk, r.base)
	if err != nil {
		return nil, nil, err
	}
	r.dev.pw, r.dev.md, r.dev.power, r.dev.modem = pw, md, key.Power, key.Modem
	return pw, md, nil
}
