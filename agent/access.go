package agent

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/outpost-cctv/outpost/agent/audit"
	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/cmdauth"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// access is who may command the unit, and the record of what they did: the
// session's command gate (signed commands, package uplink/cmdauth) and
// observer (the audit trail, package agent/audit).
//
// An audit trail that cannot be written does not stop the unit recording;
// it stops it disclosing: commands that reach footage, configuration or
// updates are refused ("unavailable") until the trail opens, since an
// access that is not accounted for must not happen.
type access struct {
	verifier *cmdauth.Verifier
	// noKeys: signed commands are required and no key is listed, so
	// every command is refused.
	noKeys   bool
	trail    *audit.Log // nil when it could not be opened
	trailErr error
	log      *slog.Logger
}

// replayStatePath is where the gate keeps its replay state.
func replayStatePath(dataDir string) string {
	return filepath.Join(dataDir, "security", "commands.json")
}

// AuditDir is the directory of a unit's audit trail.
func AuditDir(dataDir string) string { return filepath.Join(dataDir, "audit") }

func newAccess(cfg config.Config, clk clock.Clock, log *slog.Logger) (*access, error) {
	a := &access{log: log}
	keys := cfg.Security.Keys()
	if cfg.Security.SignedCommands == config.SignedRequired && len(keys) == 0 {
		log.Warn("signed commands are required and no operator key is listed: every command is refused; add the control room's keys to security.operator_keys")
		a.noKeys = true
	} else {
		v, err := cmdauth.NewVerifier(cmdauth.Options{
			Unit: cfg.Unit.ID, Keys: keys, Require: cfg.Security.SignedCommands == config.SignedRequired,
			StatePath: replayStatePath(cfg.DataDir), Window: cfg.Security.ReplayWindow.D(), Clock: clk, Log: log.With("component", "commands"),
		})
		if err != nil {
			return nil, err
		}
		a.verifier = v
	}
	a.trail, a.trailErr = audit.Open(AuditDir(cfg.DataDir), audit.Options{Clock: clk, Logger: log.With("component", "audit")})
	if a.trailErr != nil {
		log.Error("the audit trail cannot be opened: footage, configuration and updates are refused until it can", "err", a.trailErr)
	}
	return a, nil
}

// accountable reports whether a command reaches footage, configuration
// or the agent itself, and so is refused while the audit trail cannot
// record it.
func accountable(name string) bool {
	switch {
	case name == "transfer.start", name == "trigger", name == "events.list",
		strings.HasPrefix(name, "config."), strings.HasPrefix(name, "ota."), name == audit.ListCommand:
		return true
	}
	return false
}

// Admit implements uplink.Gate.
func (a *access) Admit(name string, req wire.Request) (string, error) {
	if a.noKeys {
		return "", refusal{code: wire.CodeUnauthorized, msg: "this unit accepts only signed commands and lists no operator key yet: add the control room's keys to security.operator_keys in its configuration (on the unit)"}
	}
	who, err := a.verifier.Admit(name, req)
	if err != nil {
		return who, err
	}
	if a.trail == nil && accountable(name) {
		return who, refusal{code: wire.CodeUnavailable, msg: fmt.Sprintf("the unit's audit trail cannot be written (%v), so it discloses nothing: fix the data directory (see the unit's log) and restart the agent", a.trailErr)}
	}
	return who, nil
}

// checkDesired checks the signature of a configuration change (the
// retained config/desired) as commands are checked, records it in the
// audit trail, and returns who asked: "alice (signed)", or
// "unverified: <the name it gives>".
func (a *access) checkDesired(d wire.ConfigDesired) (string, error) {
	who, err := a.desiredSigner(d)
	e := audit.Entry{Action: "config.desired", Requester: who, Result: "ok", Detail: fmt.Sprintf("version %d on %d", d.Version, d.BaseVersion)}
	if err != nil {
		e.Requester = "unverified: " + d.RequestedBy
		e.Result, e.Detail = wire.CodeUnauthorized, strings.TrimPrefix(err.Error(), "unauthorized: ")
	}
	if a.trail == nil {
		if err == nil {
			err = fmt.Errorf("the unit's audit trail cannot be written (%v), so it takes no configuration change: fix the data directory and restart the agent", a.trailErr)
		}
		return "", err
	}
	if _, aerr := a.trail.Append(e); aerr != nil && err == nil {
		return "", fmt.Errorf("the change could not be recorded in the unit's audit trail (%v), so it was not applied", aerr)
	}
	return who, err
}

func (a *access) desiredSigner(d wire.ConfigDesired) (string, error) {
	if a.noKeys {
		return "", fmt.Errorf("unauthorized: this unit accepts only signed changes and lists no operator key yet: add the control room's keys to security.operator_keys on the unit")
	}
	doc, err := d.SignedBytes()
	if err != nil {
		return "", err
	}
	who, err := a.verifier.CheckDocument("config.desired", doc, d.Auth)
	if err != nil {
		return "", fmt.Errorf("unauthorized: %w", err)
	}
	if who == "unverified" {
		who = "unverified: " + d.RequestedBy
	}
	return who, nil
}

// refusal is a gate's error with its reply code.
type refusal struct{ code, msg string }

func (r refusal) Error() string     { return r.msg }
func (r refusal) ReplyCode() string { return r.code }

// ObserveCommand implements uplink.CommandObserver.
func (a *access) ObserveCommand(r uplink.CommandRecord) {
	if a.trail == nil {
		a.log.Warn("command not recorded: the audit trail is not open", "command", r.Name, "id", r.ID, "requester", r.Requester, "ok", r.OK)
		return
	}
	a.trail.ObserveCommand(r)
}

// Close closes the audit trail.
func (a *access) Close() error {
	if a.trail == nil {
		return nil
	}
	return a.trail.Close()
}
