package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/clip"
	"github.com/outpost-cctv/outpost/internal/atomicfile"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/internal/version"
	"github.com/outpost-cctv/outpost/ota"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// ExitRestart is the exit code that asks the launcher ('outpost launch')
// to start the agent again at once from <ota root>/current/outpost: a new
// release was activated, or one on trial was rolled back.
const ExitRestart = 6

// EnvLauncher is set to "1" in the environment of an agent run by 'outpost
// launch'. Without the launcher nothing would run an installed release,
// so an agent not run by it refuses updates.
const EnvLauncher = "OUTPOST_LAUNCHER"

// Files of the agent beside the installer's under the OTA root.
const (
	otaIncoming = "incoming"      // bundles being received
	otaPushFile = "push.json"     // the last push: its transfer id
	otaReported = "reported.json" // the last outcome told on events
)

// OTARoot is the directory of the A/B slots: ota.root, or <data_dir>/ota.
func OTARoot(cfg config.Config) string {
	if cfg.OTA.Root != "" {
		return cfg.OTA.Root
	}
	return filepath.Join(cfg.DataDir, "ota")
}

// BuildArch is the release architecture of this binary: arm64, armv6,
// armv7 or amd64 (GOARCH, with GOARM for 32-bit ARM).
func BuildArch() string {
	if runtime.GOARCH != "arm" {
		return runtime.GOARCH
	}
	goarm := "7"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" && s.Value != "" {
				goarm = strings.SplitN(s.Value, ",", 2)[0]
			}
		}
	}
	return "armv" + goarm
}

// OTAInstallerConfig is the installer's configuration for cfg, shared by
// the agent and the launcher.
func OTAInstallerConfig(cfg config.Config, clk clock.Clock, log *slog.Logger) (ota.Config, error) {
	keys, err := ota.ParsePublicKeys([]byte(strings.Join(cfg.OTA.Keys, "\n")))
	if err != nil {
		return ota.Config{}, fmt.Errorf("ota.keys: %w", err)
	}
	arch := cfg.OTA.Arch
	if arch == "" {
		arch = BuildArch()
	}
	return ota.Config{
		Root: OTARoot(cfg), Keys: keys, Arch: arch,
		TrialWindow: cfg.OTA.TrialWindow.D(), MaxTrialBoots: cfg.OTA.MaxTrialBoots,
		Clock: clk, Logger: log,
	}, nil
}

// otaUpdater is the component that takes updates from the control room:
// ota.push receives a bundle, which is verified, installed into the
// inactive slot and activated, and the agent stops for the launcher to
// start the new release; a release on trial is confirmed here once the
// unit is healthy, or rolled back when its trial ends. Every outcome is
// told on events (kind "ota") and in the retained ota status.
type otaUpdater struct {
	cfg     config.Config
	log     *slog.Logger
	clk     clock.Clock
	session *uplink.Session
	topics  wire.Topics
	inputs  MonitorInputs
	send    func(context.Context, uplink.Priority, wire.Event)
	root    string
	// launched reports whether the agent runs under 'outpost launch'.
	launched bool
	// restart stops the agent for the launcher; by default a SIGTERM to
	// the process, which stops every component in order.
	restart func()

	mu   sync.Mutex
	inst *ota.Installer
	err  error // why updates are unavailable, when inst is nil
	recv *otaReceive
	// wg owns the receiving goroutines.
	wg    sync.WaitGroup
	ready chan struct{}
}

type otaReceive struct {
	args     ota.PushArgs
	chunks   chan []byte
	cancel   context.CancelFunc
	received func() int64
	done     chan struct{} // closed when the receiving goroutine is over
	// routed counts the chunk messages routed to the receiver, for the
	// mid-download failpoint.
	routed atomic.Int64
}

// newOTA builds the update component and registers ota.push and
// ota.status on the session.
func newOTA(cfg config.Config, log *slog.Logger, clk clock.Clock, session *uplink.Session, topics wire.Topics, inputs MonitorInputs, send func(context.Context, uplink.Priority, wire.Event)) *otaUpdater {
	o := &otaUpdater{
		cfg: cfg, log: log.With("component", "ota"), clk: clk, session: session, topics: topics,
		inputs: inputs, send: send, root: OTARoot(cfg), launched: os.Getenv(EnvLauncher) == "1",
		restart: func() { syscall.Kill(os.Getpid(), syscall.SIGTERM) },
		ready:   make(chan struct{}),
	}
	session.Handle("ota.push", o.handlePush)
	session.Handle("ota.status", func(context.Context, uplink.Request) (any, error) { return o.status(), nil })
	if err := session.Subscribe(context.Background(), topics.Join("ota", "+", "chunk"), o.onChunk); err != nil {
		o.log.Warn("not subscribed to update chunks", "err", err)
	}
	return o
}

// Name implements Component.
func (o *otaUpdater) Name() string { return "ota" }

// Ready implements Component: closed once the installer's state is read.
func (o *otaUpdater) Ready() <-chan struct{} { return o.ready }

// Run opens the installer, tells the outcome of the last update, and
// watches a release on trial until it is confirmed or rolled back.
func (o *otaUpdater) Run(ctx context.Context) error {
	defer o.wg.Wait()
	o.open()
	select {
	case <-o.ready:
	default:
		close(o.ready)
	}
	o.mu.Lock()
	inst := o.inst
	o.mu.Unlock()
	var bundle string
	if inst != nil {
		bundle = o.interrupted(inst)
	}
	o.publish(ctx)
	if bundle != "" {
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			o.install(ctx, inst, bundle)
		}()
	}
	if inst != nil {
		if rec := inst.Status(); rec.State == ota.StateTrial && rec.Target != nil && rec.Target.Version == version.Version {
			o.trial(ctx, inst)
		}
	}
	<-ctx.Done()
	o.mu.Lock()
	if o.recv != nil {
		o.recv.cancel()
	}
	o.mu.Unlock()
	return nil
}

// interrupted deals, at the agent's start, with an update the agent was
// stopped in the middle of (a power cut, a crash): a bundle received
// whole but not yet installed is returned, to be installed now; a
// transfer cut short is failed with a reason, so that the push waiting
// for it reports at once (pushing again resumes from the chunks on disk).
// Complete bundles left over by earlier updates are removed.
func (o *otaUpdater) interrupted(inst *ota.Installer) string {
	dir := filepath.Join(o.root, otaIncoming)
	keep := ""
	if rec := inst.Status(); rec.State == ota.StateDownloading {
		v := ""
		if rec.Target != nil {
			v = rec.Target.Version
		}
		p := filepath.Join(dir, o.lastPush()+".bundle")
		if _, err := os.Stat(p); err == nil && o.lastPush() != "" {
			o.log.Info("the agent restarted after receiving an update; installing it now", "version", v)
			keep = p
		} else if err := inst.Fail(fmt.Sprintf("the unit restarted while receiving %s: push it again, it resumes from the chunks the unit has", v)); err != nil {
			o.log.Warn("interrupted transfer not recorded", "err", err)
		}
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.bundle"))
	for _, p := range old {
		if p != keep {
			os.Remove(p)
		}
	}
	return keep
}

// open reads the installer's state, or records why updates are off.
func (o *otaUpdater) open() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.inst != nil {
		return
	}
	icfg, err := OTAInstallerConfig(o.cfg, o.clk, o.log)
	switch {
	case err != nil:
	case len(icfg.Keys) == 0:
		err = errors.New("no release key is pinned (ota.keys): updates are refused; pin the release.pub of the fleet's signing key")
	case !o.launched:
		err = errors.New("the agent is not run by 'outpost launch', which runs installed releases: set ExecStart=/usr/bin/outpost launch --config FILE")
	}
	if err == nil {
		icfg.Precondition = ota.FreeSpaceAtLeast(icfg.Root, 16<<20)
		var inst *ota.Installer
		inst, err = ota.New(icfg)
		if err == nil && inst.Status().State == "" {
			err = fmt.Errorf("the update directory %s is not set up: the launcher sets it up at its start; restart the service", icfg.Root)
		}
		if err == nil {
			o.inst = inst
			return
		}
	}
	o.err = err
	o.log.Info("updates unavailable", "reason", err)
}

func (o *otaUpdater) installer() (*ota.Installer, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.inst == nil {
		if o.err == nil {
			return nil, uplink.CommandError{Code: wire.CodeUnavailable, Message: "the update component is starting: retry with the same id"}
		}
		return nil, uplink.CommandError{Code: wire.CodeUnavailable, Message: "rejected: " + o.err.Error()}
	}
	return o.inst, nil
}

// status is the update status of the unit.
func (o *otaUpdater) status() ota.Status {
	st := ota.Status{V: ota.WireVersion, TS: o.clk.Now().UTC().Truncate(time.Millisecond), Agent: version.Version}
	o.mu.Lock()
	inst, err, recv := o.inst, o.err, o.recv
	o.mu.Unlock()
	if inst == nil {
		st.Running = ota.Slot{Version: version.Version}
		if err != nil {
			st.Reason = err.Error()
		}
		return st
	}
	r := inst.Status()
	st.State, st.Running, st.Target, st.Previous, st.Reason = r.State, r.Running, r.Target, r.Previous, r.Reason
	st.Updated, st.TrialDeadline, st.Boots = r.Updated, r.TrialDeadline, r.Boots
	st.Push = o.lastPush()
	if recv != nil {
		st.Receiving = &ota.Progress{ID: recv.args.ID, Received: recv.received(), Size: recv.args.Size}
	}
	return st
}

// publish sends the retained ota status and tells a finished update's
// outcome on events, once.
func (o *otaUpdater) publish(ctx context.Context) {
	st := o.status()
	if b, err := json.Marshal(st); err == nil {
		if err := o.session.SendRetained(ctx, uplink.PriorityEvent, o.topics.Join("ota"), b); err != nil {
			o.log.Warn("update status not sent", "err", err)
		}
	}
	out := st.Outcome()
	if out == "" || st.Updated.IsZero() {
		return
	}
	mark := st.Updated.UTC().Format(time.RFC3339Nano)
	if b, err := os.ReadFile(filepath.Join(o.root, otaReported)); err == nil && strings.TrimSpace(string(b)) == mark {
		return
	}
	e := wire.NewEvent(o.clk.Now(), "ota", wire.SeverityWarning, "")
	data := map[string]any{"outcome": out, "push": st.Push}
	switch st.State {
	case ota.StateCommitted:
		e.Severity = wire.SeverityInfo
		data["version"] = st.Running.Version
		if st.Previous != nil {
			data["from"] = st.Previous.Version
		}
		e.Message = fmt.Sprintf("update to %s committed: it runs and is healthy", st.Running.Version)
	default:
		v := ""
		if st.Target != nil {
			v = st.Target.Version
		}
		data["version"], data["from"], data["reason"] = v, st.Running.Version, st.Reason
		if st.State == ota.StateRolledBack {
			e.Message = fmt.Sprintf("update to %s rolled back, %s runs: %s", v, st.Running.Version, st.Reason)
		} else {
			e.Message = fmt.Sprintf("update to %s rejected, nothing installed, %s runs: %s", v, st.Running.Version, st.Reason)
		}
	}
	e.Data = data
	o.send(ctx, uplink.PriorityEvent, e)
	if err := atomicfile.Write(filepath.Join(o.root, otaReported), []byte(mark+"\n"), 0o640); err != nil {
		o.log.Warn("update outcome may be told again", "err", err)
	}
}

func (o *otaUpdater) lastPush() string {
	b, err := os.ReadFile(filepath.Join(o.root, otaPushFile))
	if err != nil {
		return ""
	}
	var p struct {
		ID string `json:"id"`
	}
	json.Unmarshal(b, &p)
	return p.ID
}

// handlePush answers ota.push: preconditions, then receiving starts.
func (o *otaUpdater) handlePush(ctx context.Context, req uplink.Request) (any, error) {
	var a ota.PushArgs
	if err := req.DecodeArgs(&a); err != nil {
		return nil, err
	}
	if err := a.Validate(); err != nil {
		return nil, uplink.CommandError{Code: wire.CodeBadRequest, Message: "ota.push: " + err.Error()}
	}
	inst, err := o.installer()
	if err != nil {
		return nil, err
	}
	switch s := inst.Status().State; s {
	case ota.StateVerified, ota.StateInstalled, ota.StateTrial:
		return nil, uplink.CommandError{Code: wire.CodeBusy, Message: fmt.Sprintf("an update is %s (%s): wait for its outcome ('outpostctl ota status')", s, inst.Status().Target.Version)}
	}
	if err := o.preconditions(a); err != nil {
		return nil, err
	}
	m := clip.Manifest{ID: a.ID, Kind: "bundle", Size: a.Size, SHA256: a.SHA256, ChunkSize: a.ChunkSize, Window: a.Window}
	m.Chunks = int((a.Size + int64(a.ChunkSize) - 1) / int64(a.ChunkSize))
	if err := m.Validate(); err != nil {
		return nil, uplink.CommandError{Code: wire.CodeBadRequest, Message: err.Error()}
	}

	// A push while another is received replaces it; the same push again
	// (the control room restarted) resumes from what is on disk.
	o.mu.Lock()
	old := o.recv
	o.recv = nil
	o.mu.Unlock()
	if old != nil {
		old.cancel()
		<-old.done
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := inst.BeginDownload(a.Version); err != nil {
		return nil, err
	}
	b, _ := json.Marshal(map[string]string{"id": a.ID, "version": a.Version})
	if err := atomicfile.Write(filepath.Join(o.root, otaPushFile), b, 0o640); err != nil {
		return nil, err
	}
	out := filepath.Join(o.root, otaIncoming, a.ID+".bundle")
	part, resumed, err := clip.OpenPart(out, m)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &otaReceive{args: a, chunks: make(chan []byte, 64), cancel: cancel, received: part.Received, done: make(chan struct{})}
	o.recv = r
	have := part.Have().Encode()
	o.log.Info("receiving an update", "id", a.ID, "version", a.Version, "size", a.Size, "resumed_chunks", resumed)
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		defer close(r.done)
		o.receive(rctx, inst, r, part, out)
	}()
	return ota.PushResult{ID: a.ID, Have: have, Chunks: m.Chunks, Running: inst.Status().Running.Version}, nil
}

// preconditions refuses a push the unit cannot take now: a low battery,
// a data budget that would not keep its headroom.
func (o *otaUpdater) preconditions(a ota.PushArgs) error {
	deferred := func(code, format string, args ...any) error {
		return uplink.CommandError{Code: code, Message: "deferred: " + fmt.Sprintf(format, args...)}
	}
	if o.inputs.Power != nil && o.cfg.OTA.MinSOC > 0 {
		r, err := o.inputs.Power()
		switch {
		case err != nil || r.SOCPercent == nil:
			if r.BatteryV == nil {
				return deferred(wire.CodeUnavailable, "the battery's charge is not known yet (%v): retry in a minute", err)
			}
		case *r.SOCPercent < o.cfg.OTA.MinSOC:
			return deferred(wire.CodeUnavailable, "battery %.0f %% < %.0f %% (ota.min_soc): push again once it has charged", *r.SOCPercent, o.cfg.OTA.MinSOC)
		}
	}
	if budget := int64(o.cfg.Uplink.MonthlyBudget); budget > 0 {
		l := o.session.Link()
		used := l.DataUpMonthBytes + l.DataDownMonthBytes
		headroom := o.cfg.OTA.DataHeadroom.Of(budget)
		if used+a.Size+headroom > budget {
			return deferred(wire.CodeBudgetExhausted, "data budget: %d MiB used of %d MiB this month; the bundle (%d MiB) would leave less than the %d MiB headroom (ota.data_headroom): push next month or raise uplink.monthly_budget",
				used>>20, budget>>20, (a.Size+1<<20-1)>>20, headroom>>20)
		}
	}
	return nil
}

// onChunk routes a chunk message to the push being received.
func (o *otaUpdater) onChunk(topic string, payload []byte) {
	o.mu.Lock()
	r := o.recv
	o.mu.Unlock()
	if r == nil || topic != o.topics.Join("ota", r.args.ID, "chunk") {
		return
	}
	if chunks := (r.args.Size + int64(r.args.ChunkSize) - 1) / int64(r.args.ChunkSize); r.routed.Add(1) == (chunks+1)/2 {
		ota.Failpoint(ota.FailMidDownload)
	}
	select {
	case r.chunks <- append([]byte(nil), payload...):
	default: // dropped: the sender sends it again
	}
}

// receive takes the bundle, then installs and activates it.
func (o *otaUpdater) receive(ctx context.Context, inst *ota.Installer, r *otaReceive, part *clip.Part, out string) {
	defer func() {
		o.mu.Lock()
		if o.recv == r {
			o.recv = nil
		}
		o.mu.Unlock()
	}()
	ackTopic := o.topics.Join("ota", r.args.ID, "ack")
	ack := func(ctx context.Context, a clip.Ack) error {
		b, _ := json.Marshal(a)
		return o.session.Publish(ctx, ackTopic, 0, false, b)
	}
	_, err := clip.Receive(ctx, o.log, part, r.chunks, ack, clip.ReceiveOptions{Clock: o.clk, Timeout: 2 * time.Minute})
	part.Close()
	if err != nil {
		if ctx.Err() == nil {
			o.log.Warn("update transfer stopped; push again to resume", "id", r.args.ID, "err", err)
			if errors.Is(err, clip.ErrTimeout) {
				return
			}
			// The file arrived but is not the one announced.
			part.Discard()
			inst.Fail(fmt.Sprintf("the bundle %s arrived damaged (%v): push it again", r.args.ID, err))
			o.publish(ctx)
		}
		return
	}
	o.mu.Lock()
	if o.recv == r {
		o.recv = nil
	}
	o.mu.Unlock()
	o.log.Info("update received; verifying and installing", "id", r.args.ID)
	o.install(ctx, inst, out)
}

// install verifies and installs a bundle received whole, activates it and
// stops the agent for the launcher to start the new release.
func (o *otaUpdater) install(ctx context.Context, inst *ota.Installer, out string) {
	err := inst.Install(ctx, out)
	os.Remove(out)
	if err != nil {
		o.log.Warn("update not installed", "err", err)
		if rec := inst.Status(); rec.State == ota.StateDownloading {
			// A precondition refused it (left the state as it was).
			inst.Fail("deferred: " + ota.Reason(err))
		}
		o.publish(ctx)
		return
	}
	if err := inst.Activate(); err != nil {
		o.log.Error("update not activated", "err", err)
		o.publish(ctx)
		return
	}
	rec := inst.Status()
	o.log.Info("new release activated; restarting into it", "version", rec.Target.Version, "trial_deadline", rec.TrialDeadline)
	o.publish(ctx)
	o.restart()
}

// trial watches the release on trial: once the unit is healthy it is
// committed; when the trial ends first it is rolled back and the agent
// stops for the launcher to start the previous release.
func (o *otaUpdater) trial(ctx context.Context, inst *ota.Installer) {
	rec := inst.Status()
	o.log.Info("release on trial", "version", rec.Target.Version, "deadline", rec.TrialDeadline, "boot", rec.Boots)
	t := o.clk.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		why := o.unhealthy()
		if why == "" {
			ota.Failpoint(ota.FailMidTrial)
			if err := inst.Confirm(); err != nil {
				o.log.Error("release not committed", "err", err)
			} else {
				o.log.Info("release committed", "version", version.Version)
			}
			o.publish(ctx)
			return
		}
		if o.clk.Now().After(rec.TrialDeadline) {
			reason := fmt.Sprintf("%s was not healthy by the end of its trial at %s: %s", rec.Target.Version, rec.TrialDeadline.Format(time.RFC3339), why)
			if err := inst.Rollback(reason); err != nil {
				o.log.Error("rolling back", "err", err)
			}
			o.publish(ctx)
			o.restart()
			return
		}
	}
}

// unhealthy says what keeps the unit from being healthy, or "": connected
// to the broker, frames arriving, the data directory writable.
func (o *otaUpdater) unhealthy() string {
	var why []string
	if !o.session.Connected() {
		why = append(why, "not connected to the broker")
	}
	if o.inputs.LastFrame != nil {
		if lf := o.inputs.LastFrame(); lf.IsZero() || o.clk.Now().Sub(lf) > 10*time.Second {
			why = append(why, "no frames from the camera")
		}
	}
	if err := writable(o.cfg.DataDir); err != nil {
		why = append(why, fmt.Sprintf("storage not writable (%v)", err))
	}
	if o.inputs.StoreFaults != nil {
		for _, f := range o.inputs.StoreFaults() {
			if f.Code == "disk_full" || f.Code == "storage_error" {
				why = append(why, "footage store: "+f.Code)
			}
		}
	}
	return strings.Join(why, "; ")
}

// writable writes, syncs and removes a small file in dir.
func writable(dir string) error {
	p := filepath.Join(dir, ".ota-health")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString("ok\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(p); err == nil {
		err = rerr
	}
	return err
}
