package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/hal/modem"
	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/internal/atomicfile"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// Runner runs a unit from its config file and applies the configuration
// the control room asks for (config/desired, config.rollback), safely:
//
//   - a change is checked as strictly as the file, and refused whole, with
//     every problem named, when it is invalid, is for another unit, or was
//     made on another version than the one running (two operators must
//     not silently overwrite each other);
//   - telemetry timings are taken in place; any other change restarts the
//     unit's components with the new configuration (footage already
//     recorded stays);
//   - the file is replaced atomically, so that a power cut leaves the old
//     configuration or the new one;
//   - a change that touches the link (uplink or modem settings) must reach
//     the control room within uplink.confirm_window, or the unit goes back
//     to the configuration it had and reports that it did; so does a
//     change whose components cannot be built;
//   - the last configurations applied are kept with who asked and what
//     changed, and any of them can be rolled back to.
//
// The state is kept under <data_dir>/config: state.json (the version
// running and the outcome of the last change), history.json and one file
// per version in history/ (mode 0600: they hold the secrets a rollback
// needs; what leaves the unit is always redacted).
type Runner struct {
	path string
	log  *slog.Logger // the runner's own
	base *slog.Logger // the unit's
	clk  clock.Clock
	dir  string

	desired   chan wire.ConfigDesired
	rollbacks chan rollbackRequest
	modes     chan modeChange
	// faults outlive the units the runner restarts.
	faults *Faults

	mu   sync.Mutex
	cfg  config.Config
	st   configState
	hist []wire.ConfigHistoryEntry
	unit *Unit
	// fallback is the version to go back to when the configuration about
	// to start cannot be built.
	fallback *int64
	policy   *powerPolicy
	// dev are the devices, kept across restarts of the unit.
	dev struct {
		pw    power.Sensor
		md    modem.Modem
		power config.Power
		modem config.Modem
	}
}

// HistoryLen is how many applied configurations a unit keeps.
const HistoryLen = 20

// configState is state.json. Schema changes bump Schema.
type configState struct {
	Schema      int       `json:"schema"`
	Version     int64     `json:"version"`
	FileHash    string    `json:"file_hash"`
	AppliedAt   time.Time `json:"applied_at"`
	RequestedBy string    `json:"requested_by,omitempty"`
	// Seen is the highest version of a change handled: a retained
	// config/desired at or below it is not handled again.
	Seen int64 `json:"seen"`
	// The outcome of the last change.
	DesiredVersion int64    `json:"desired_version"`
	Result         string   `json:"result"`
	Errors         []string `json:"errors,omitempty"`
	Changes        []string `json:"changes,omitempty"`
	// Applying is set, before the file is touched, while a change is being
	// applied; a restart finding it completes or discards the change.
	Applying *applying `json:"applying,omitempty"`
	// Pending is set while a change that touches the link awaits
	// confirmation.
	Pending *pending `json:"pending,omitempty"`
}

const configStateSchema = 1

type applying struct {
	Version     int64    `json:"version"`
	Previous    int64    `json:"previous"`
	Link        bool     `json:"link"`
	RequestedBy string   `json:"requested_by,omitempty"`
	Changes     []string `json:"changes,omitempty"`
}

type pending struct {
	Version  int64     `json:"version"`
	Previous int64     `json:"previous"`
	Deadline time.Time `json:"deadline"`
}

type rollbackRequest struct {
	args  wire.ConfigRollbackArgs
	reply chan rollbackReply
}

type rollbackReply struct {
	res rollbackResult
	err error
}

// rollbackResult is config.rollback's result; the runner restarts the
// unit only once the reply is out.
type rollbackResult struct {
	wire.ConfigRollbackResult
	sent chan struct{}
	once *sync.Once
}

func (r rollbackResult) Replied() { r.once.Do(func() { close(r.sent) }) }

// NewRunner returns a runner for the configuration cfg, read from the file
// at path.
func NewRunner(path string, cfg config.Config, log *slog.Logger, clk clock.Clock) *Runner {
	if clk == nil {
		clk = clock.Real{}
	}
	r := &Runner{
		path: path, log: log.With("component", "config"), base: log, clk: clk, cfg: cfg,
		dir:       filepath.Join(cfg.DataDir, "config"),
		desired:   make(chan wire.ConfigDesired, 1),
		rollbacks: make(chan rollbackRequest),
		modes:     make(chan modeChange, 1),
		policy:    newPowerPolicy(cfg.Power.Policy),
	}
	r.faults = NewFaults(clk, log, r.sendEvent)
	return r
}

// Run runs the unit until ctx is done, restarting it when a change of
// configuration needs it.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.load(); err != nil {
		return err
	}
	for {
		r.mu.Lock()
		r.policy.cfg = r.cfg.Power.Policy
		eff := derive(r.cfg, r.policy.mode)
		r.mu.Unlock()
		u, err := newUnit(eff, r.base, r.clk, r)
		if err != nil {
			if r.fallback == nil {
				return err
			}
			r.log.Error("the new configuration cannot start; going back", "err", err)
			if rerr := r.revert(fmt.Sprintf("the configuration could not start: %v", err)); rerr != nil {
				return errors.Join(err, rerr)
			}
			continue
		}
		r.fallback = nil
		r.mu.Lock()
		r.unit = u
		r.mu.Unlock()
		uctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- u.Run(uctx) }()
		restart, err := r.serve(ctx, u, done)
		cancel()
		if errors.Is(err, ErrPowerShutdown) {
			if uerr := <-done; uerr != nil {
				r.log.Warn("stopping for the battery", "err", uerr)
			}
			return r.powerOff(ctx)
		}
		if !restart {
			return err
		}
		if err := <-done; err != nil {
			r.log.Warn("stopping the unit for the new configuration", "err", err)
		}
		r.log.Info("restarting with the new configuration", "version", r.version())
	}
}

// serve handles changes while u runs. It returns restart true when the
// unit is to be restarted with r.cfg, else the unit's own result.
func (r *Runner) serve(ctx context.Context, u *Unit, done <-chan error) (bool, error) {
	tick := r.clk.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, <-done
		case err := <-done:
			return false, err
		case d := <-r.desired:
			if r.handleDesired(ctx, u, d) {
				return true, nil
			}
		case rb := <-r.rollbacks:
			res, restart, err := r.handleRollback(ctx, u, rb.args)
			rr := rollbackResult{ConfigRollbackResult: res, sent: make(chan struct{}), once: &sync.Once{}}
			rb.reply <- rollbackReply{rr, err}
			if restart {
				if err == nil {
					// Restart once the reply is out (or after a bound).
					t := r.clk.NewTimer(10 * time.Second)
					select {
					case <-rr.sent:
					case <-t.C():
					case <-ctx.Done():
					}
					t.Stop()
				}
				return true, nil
			}
		case mc := <-r.modes:
			restart, stop := r.handleMode(ctx, mc)
			if stop {
				return false, ErrPowerShutdown
			}
			if restart {
				return true, nil
			}
		case <-tick.C():
			if r.checkPending(ctx, u) {
				return true, nil
			}
		}
	}
}

// onDesired takes a config/desired message; the newest waiting wins.
func (r *Runner) onDesired(_ string, payload []byte) {
	d, err := wire.DecodeConfigDesired(payload)
	if err != nil {
		r.log.Warn("ignoring config/desired", "err", err)
		// Without a version there is nothing to answer to: the sender is
		// told through the log line only. Malformed payloads come from
		// tools, not operators; outpostctl checks before it sends.
		return
	}
	for {
		select {
		case r.desired <- d:
			return
		default:
		}
		select {
		case <-r.desired:
		default:
		}
	}
}

// handleDesired applies a config/desired and reports whether the unit must
// restart.
func (r *Runner) handleDesired(ctx context.Context, u *Unit, d wire.ConfigDesired) bool {
	r.mu.Lock()
	st := r.st
	cur := r.cfg
	r.mu.Unlock()
	if d.Version <= st.Seen {
		return false // handled before: a retained message seen again
	}
	reject := func(errs ...string) bool {
		r.log.Warn("configuration change refused", "version", d.Version, "by", d.RequestedBy, "errors", strings.Join(errs, "; "))
		r.mu.Lock()
		r.st.Seen = max(r.st.Seen, d.Version)
		r.st.DesiredVersion, r.st.Result, r.st.Errors, r.st.Changes = d.Version, wire.ConfigRejected, errs, nil
		err := r.saveState()
		r.mu.Unlock()
		if err != nil {
			r.log.Error("cannot save the configuration state", "err", err)
		}
		r.report(ctx, u)
		return false
	}
	who, err := u.access.checkDesired(d)
	if err != nil {
		// Refused without raising the highest version seen: an unsigned
		// change with a huge version must not shut out the genuine ones
		// that follow.
		r.log.Warn("configuration change refused", "version", d.Version, "by", d.RequestedBy, "err", err)
		r.mu.Lock()
		r.st.DesiredVersion, r.st.Result, r.st.Errors, r.st.Changes = d.Version, wire.ConfigRejected, []string{err.Error()}, nil
		r.mu.Unlock()
		r.report(ctx, u)
		return false
	}
	if strings.HasSuffix(who, " (signed)") {
		// The history names who signed; an unsigned change keeps the
		// name it gives (the audit trail marks it unverified).
		d.RequestedBy = who
	}
	switch {
	case st.Pending != nil:
		return reject(fmt.Sprintf("version %d touches the link and is waiting to be confirmed until %s; send this change again after that", st.Pending.Version, st.Pending.Deadline.UTC().Format(time.RFC3339)))
	case d.BaseVersion != st.Version:
		who := ""
		if st.RequestedBy != "" {
			who = " by " + st.RequestedBy
		}
		return reject(fmt.Sprintf("base_version: this change was made on version %d, but the unit runs version %d (applied%s at %s): get the unit's configuration and make the change again", d.BaseVersion, st.Version, who, st.AppliedAt.UTC().Format(time.RFC3339)))
	}
	next, err := cur.Apply(fmt.Sprintf("config/desired version %d", d.Version), d.Config, d.Full)
	if err == nil {
		if fe := config.Fixed(cur, next); len(fe) > 0 {
			err = fe
		}
	}
	if err != nil {
		return reject(errorLines(err)...)
	}
	return r.apply(ctx, u, next, d.Version, d.RequestedBy)
}

// errorLines splits a configuration error into one line per problem.
func errorLines(err error) []string {
	var es config.Errors
	if errors.As(err, &es) {
		out := make([]string, len(es))
		for i, e := range es {
			out[i] = e.Error()
		}
		return out
	}
	return []string{err.Error()}
}

// apply makes next the configuration, as version v, and reports whether
// the unit must restart. The state is saved before each step, so that a
// restart at any moment finds the old configuration or the new one.
func (r *Runner) apply(ctx context.Context, u *Unit, next config.Config, v int64, by string) bool {
	r.mu.Lock()
	cur, prev := r.cfg, r.st.Version
	r.mu.Unlock()
	changes, err := config.Changes(cur, next)
	if err != nil {
		r.log.Error("comparing configurations", "err", err)
	}
	words := changeWords(changes)
	link := config.TouchesLink(changes)
	fail := func(err error) bool {
		r.log.Error("applying the configuration failed; nothing was changed", "version", v, "err", err)
		r.mu.Lock()
		r.st.Applying = nil
		r.st.Seen = max(r.st.Seen, v)
		r.st.DesiredVersion, r.st.Result, r.st.Errors, r.st.Changes = v, wire.ConfigRejected, []string{"the unit could not store the configuration, so nothing was changed: " + err.Error()}, words
		if err := r.saveState(); err != nil {
			r.log.Error("cannot save the configuration state", "err", err)
		}
		r.mu.Unlock()
		r.report(ctx, u)
		return false
	}
	r.mu.Lock()
	r.st.Applying = &applying{Version: v, Previous: prev, Link: link, RequestedBy: by, Changes: words}
	r.st.Seen = max(r.st.Seen, v)
	err = r.saveState()
	r.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	y, err := r.writeVersion(next, v, by)
	if err != nil {
		return fail(err)
	}
	if err := atomicfile.Write(r.path, y, 0o640); err != nil {
		return fail(err)
	}
	r.mu.Lock()
	r.commit(next, v, by, words, fileHash(y), link)
	err = r.saveAll()
	r.mu.Unlock()
	if err != nil {
		r.log.Error("cannot save the configuration state", "err", err)
	}
	r.log.Info("configuration applied", "version", v, "by", by, "changes", strings.Join(words, "; "), "link", link)
	if config.Live(changes) {
		r.mu.Lock()
		eff := derive(next, r.policy.mode) // the power mode's timings, if it slows them
		r.mu.Unlock()
		u.retime(eff)
		r.report(ctx, u)
		return false
	}
	r.fallback = &prev
	return true
}

// commit makes next, as version v, the configuration (r.mu held).
func (r *Runner) commit(next config.Config, v int64, by string, words []string, fh string, link bool) {
	prev := r.st.Version
	r.cfg = next
	r.st.Applying = nil
	r.st.Version, r.st.FileHash, r.st.AppliedAt, r.st.RequestedBy = v, fh, r.clk.Now().UTC().Truncate(time.Millisecond), by
	r.st.DesiredVersion, r.st.Result, r.st.Errors, r.st.Changes = v, wire.ConfigApplied, nil, words
	r.st.Pending = nil
	if link {
		r.st.Pending = &pending{Version: v, Previous: prev, Deadline: r.clk.Now().Add(next.Uplink.ConfirmWindow.D()).UTC()}
	}
	_, hash, _ := next.Report()
	for i := range r.hist {
		r.hist[i].Current = false
	}
	r.hist = append(r.hist, wire.ConfigHistoryEntry{Version: v, Hash: hash, AppliedAt: r.st.AppliedAt, RequestedBy: by, Result: wire.ConfigApplied, Changes: words, Current: true})
}

func changeWords(cs []config.Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}

// checkPending confirms a link change once the unit is connected, or
// reverts it when its window has passed; it reports whether the unit must
// restart.
func (r *Runner) checkPending(ctx context.Context, u *Unit) bool {
	r.mu.Lock()
	p := r.st.Pending
	r.mu.Unlock()
	if p == nil {
		return false
	}
	st := u.session.Stats()
	if st.Connected {
		r.mu.Lock()
		r.st.Pending = nil
		err := r.saveState()
		r.mu.Unlock()
		if err != nil {
			r.log.Error("cannot save the configuration state", "err", err)
		}
		r.log.Info("configuration confirmed: the control room is reachable with it", "version", p.Version)
		r.report(ctx, u)
		return false
	}
	if r.clk.Now().Before(p.Deadline) {
		return false
	}
	why := fmt.Sprintf("version %d touched the link and the unit could not reach the control room with it within %s", p.Version, r.cfg.Uplink.ConfirmWindow.D())
	if st.ConnectError != nil {
		why += ": " + st.ConnectError.Error()
	}
	if err := r.revert(why); err != nil {
		r.log.Error("cannot go back to the last good configuration", "err", err)
		return false
	}
	return true
}

// revert goes back to the version the last change replaced, and records
// why; the caller restarts the unit.
func (r *Runner) revert(why string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	failed := r.st.Version
	prev := int64(-1)
	switch {
	case r.st.Pending != nil:
		prev = r.st.Pending.Previous
	case r.fallback != nil:
		prev = *r.fallback
	default:
		return fmt.Errorf("config: nothing to revert to")
	}
	old, err := r.readVersion(prev)
	if err != nil {
		return err
	}
	y, err := os.ReadFile(r.versionPath(prev))
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := atomicfile.Write(r.path, y, 0o640); err != nil {
		return fmt.Errorf("config: going back to version %d: %w", prev, err)
	}
	r.log.Warn("configuration reverted", "from", failed, "to", prev, "why", why)
	for i := range r.hist {
		r.hist[i].Current = r.hist[i].Version == prev
		if r.hist[i].Version == failed {
			r.hist[i].Result = wire.ConfigReverted
		}
	}
	r.cfg = old
	r.st.Version, r.st.FileHash = prev, fileHash(y)
	for _, h := range r.hist {
		if h.Version == prev {
			r.st.AppliedAt, r.st.RequestedBy = h.AppliedAt, h.RequestedBy
		}
	}
	r.st.DesiredVersion, r.st.Result, r.st.Errors = failed, wire.ConfigReverted, []string{why}
	r.st.Pending, r.fallback = nil, nil
	return r.saveAll()
}

// handleRollback applies a configuration of the history again, as a new
// version above every one seen.
func (r *Runner) handleRollback(ctx context.Context, u *Unit, a wire.ConfigRollbackArgs) (wire.ConfigRollbackResult, bool, error) {
	r.mu.Lock()
	st, cur := r.st, r.cfg
	found := false
	for _, h := range r.hist {
		found = found || h.Version == a.Version
	}
	r.mu.Unlock()
	switch {
	case !found:
		return wire.ConfigRollbackResult{}, false, uplink.CommandError{Code: wire.CodeNotFound, Message: fmt.Sprintf("version %d is not in the unit's history: `outpostctl config history UNIT` lists them", a.Version)}
	case st.Pending != nil:
		return wire.ConfigRollbackResult{}, false, uplink.CommandError{Code: wire.CodeBusy, Message: fmt.Sprintf("version %d is waiting to be confirmed until %s; roll back after that", st.Pending.Version, st.Pending.Deadline.Format(time.RFC3339))}
	}
	old, err := r.readVersion(a.Version)
	if err == nil {
		if fe := config.Fixed(cur, old); len(fe) > 0 {
			err = fe
		}
	}
	if err != nil {
		return wire.ConfigRollbackResult{}, false, uplink.CommandError{Code: wire.CodeBadRequest, Message: fmt.Sprintf("version %d cannot be used again: %s", a.Version, strings.Join(errorLines(err), "; "))}
	}
	changes, _ := config.Changes(cur, old)
	v := max(st.Version, st.Seen) + 1
	by := fmt.Sprintf("rollback to version %d", a.Version)
	if a.RequestedBy != "" {
		by += " by " + a.RequestedBy
	}
	restart := r.apply(ctx, u, old, v, by)
	r.mu.Lock()
	ok := r.st.Version == v
	res := r.st
	r.mu.Unlock()
	if !ok {
		return wire.ConfigRollbackResult{}, false, fmt.Errorf("%s", strings.Join(res.Errors, "; "))
	}
	return wire.ConfigRollbackResult{Version: v, Changes: changeWords(changes)}, restart, nil
}

// rollback is the config.rollback command.
func (r *Runner) rollback(ctx context.Context, req uplink.Request) (any, error) {
	var a wire.ConfigRollbackArgs
	if err := json.Unmarshal(req.Args, &a); err != nil {
		return nil, uplink.CommandError{Code: wire.CodeBadRequest, Message: "args: want {\"version\": N}: " + err.Error()}
	}
	rq := rollbackRequest{args: a, reply: make(chan rollbackReply, 1)}
	select {
	case r.rollbacks <- rq:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case rep := <-rq.reply:
		if rep.err != nil {
			rep.res.Replied()
			return nil, rep.err
		}
		return rep.res, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// history is the config.history command.
func (r *Runner) history(context.Context, uplink.Request) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]wire.ConfigHistoryEntry, len(r.hist))
	copy(out, r.hist)
	sort.Slice(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	return out, nil
}

// reported is the config/reported payload.
func (r *Runner) reported() wire.ConfigReported {
	r.mu.Lock()
	defer r.mu.Unlock()
	report, hash, err := r.cfg.Report()
	if err != nil {
		r.log.Error("reporting the configuration", "err", err)
	}
	cr := wire.ConfigReported{
		Header: wire.NewHeader(r.clk.Now()), Version: r.st.Version, Hash: hash,
		AppliedAt: r.st.AppliedAt, RequestedBy: r.st.RequestedBy,
		DesiredVersion: r.st.DesiredVersion, Result: r.st.Result, Errors: r.st.Errors, Changes: r.st.Changes,
		Config: report,
	}
	if p := r.st.Pending; p != nil {
		d := p.Deadline
		cr.ConfirmBy = &d
	}
	return cr
}

// report publishes config/reported now, or at the next connection.
func (r *Runner) report(ctx context.Context, u *Unit) {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := u.session.RepublishConfig(pctx); err != nil && !errors.Is(err, uplink.ErrOffline) {
		r.log.Warn("publishing config/reported failed; it is sent at the next connection", "err", err)
	}
}

func (r *Runner) version() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.Version
}

// load reads the state and reconciles it with the file the unit started
// from: a change interrupted by a restart is completed or discarded, and
// a file edited on the unit becomes a version of its own.
func (r *Runner) load() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	y, err := os.ReadFile(r.path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	fh := fileHash(y)
	b, err := os.ReadFile(filepath.Join(r.dir, "state.json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		r.st = configState{Schema: configStateSchema}
		return r.adoptFile(y, fh, 0, "the file "+r.path)
	case err != nil:
		return fmt.Errorf("config: reading the configuration state: %w", err)
	}
	if err := json.Unmarshal(b, &r.st); err != nil || r.st.Schema != configStateSchema {
		// The state is the unit's own bookkeeping: starting afresh from
		// the file is safe; the history's files stay for inspection.
		r.log.Warn("the configuration state is unreadable; starting a new history from the file", "err", err, "schema", r.st.Schema)
		seen := r.st.Seen
		r.st = configState{Schema: configStateSchema, Seen: seen}
		return r.adoptFile(y, fh, seen+1, "the file "+r.path)
	}
	if hb, err := os.ReadFile(filepath.Join(r.dir, "history.json")); err == nil {
		if err := json.Unmarshal(hb, &r.hist); err != nil {
			r.log.Warn("the configuration history is unreadable; starting it afresh", "err", err)
			r.hist = nil
		}
	}
	if a := r.st.Applying; a != nil {
		// A restart in the middle of applying a change: the file holds the
		// old configuration or the new one.
		if nb, err := os.ReadFile(r.versionPath(a.Version)); err == nil && fileHash(nb) == fh {
			r.log.Info("completing a configuration change interrupted by a restart", "version", a.Version)
			r.commit(r.cfg, a.Version, a.RequestedBy, a.Changes, fh, a.Link)
			r.st.Pending = nil
			if a.Link {
				r.st.Pending = &pending{Version: a.Version, Previous: a.Previous, Deadline: r.clk.Now().Add(r.cfg.Uplink.ConfirmWindow.D()).UTC()}
			}
			return r.saveAll()
		}
		r.log.Warn("a configuration change was interrupted by a restart before the file was replaced; it was not applied", "version", a.Version)
		r.st.Applying = nil
		r.st.DesiredVersion, r.st.Result, r.st.Errors = a.Version, wire.ConfigRejected, []string{"the unit restarted while applying this change, before its file was replaced: nothing was changed; send it again"}
	}
	if fh != r.st.FileHash {
		return r.adoptFile(y, fh, max(r.st.Version, r.st.Seen)+1, "an edit of "+r.path+" on the unit")
	}
	if p := r.st.Pending; p != nil {
		// The window starts afresh: the unit was off for part of it.
		p.Deadline = r.clk.Now().Add(r.cfg.Uplink.ConfirmWindow.D()).UTC()
	}
	return r.saveState()
}

// adoptFile records the file the unit started from as version v (r.mu
// held).
func (r *Runner) adoptFile(y []byte, fh string, v int64, by string) error {
	var words []string
	if n := len(r.hist); n > 0 {
		if prev, err := r.readVersion(r.hist[n-1].Version); err == nil {
			cs, _ := config.Changes(prev, r.cfg)
			words = changeWords(cs)
		}
	}
	if err := r.storeVersion(y, v); err != nil {
		return err
	}
	r.log.Info("configuration recorded", "version", v, "source", by)
	r.commit(r.cfg, v, by, words, fh, false)
	r.st.Seen = max(r.st.Seen, v)
	return r.saveAll()
}

func (r *Runner) versionPath(v int64) string {
	return filepath.Join(r.dir, "history", fmt.Sprintf("%08d.yaml", v))
}

// writeVersion writes next as the file of version v, and returns it.
func (r *Runner) writeVersion(next config.Config, v int64, by string) ([]byte, error) {
	header := fmt.Sprintf("Outpost agent configuration, version %d, applied %s", v, r.clk.Now().UTC().Format(time.RFC3339))
	if by != "" {
		header += "\nrequested by " + by
	}
	header += "\nWritten by the agent: every field is listed; configs/outpost.example.yaml explains them."
	y, err := next.Marshal(header)
	if err != nil {
		return nil, err
	}
	return y, r.storeVersion(y, v)
}

func (r *Runner) storeVersion(y []byte, v int64) error {
	if err := atomicfile.Write(r.versionPath(v), y, 0o600); err != nil {
		return fmt.Errorf("config: keeping version %d: %w", v, err)
	}
	return nil
}

func (r *Runner) readVersion(v int64) (config.Config, error) {
	return config.Load(r.versionPath(v))
}

// saveState writes state.json (r.mu held).
func (r *Runner) saveState() error {
	r.st.Schema = configStateSchema
	b, err := json.MarshalIndent(r.st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(r.dir, "state.json"), b, 0o600)
}

// saveAll trims the history to HistoryLen (keeping the running version),
// and writes it and the state (r.mu held).
func (r *Runner) saveAll() error {
	for len(r.hist) > HistoryLen {
		i := 0
		if r.hist[0].Version == r.st.Version {
			i = 1
		}
		os.Remove(r.versionPath(r.hist[i].Version))
		r.hist = append(r.hist[:i], r.hist[i+1:]...)
	}
	b, err := json.MarshalIndent(r.hist, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(r.dir, "history.json"), b, 0o600); err != nil {
		return err
	}
	return r.saveState()
}

func fileHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
