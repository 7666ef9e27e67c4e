package ota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/internal/atomicfile"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// State is a step of an update, persisted as this stable string.
type State string

// The states of an update; doc.go has the diagram and the start-up table.
const (
	StateIdle        State = "idle"
	StateDownloading State = "downloading"
	StateVerified    State = "verified"
	StateInstalled   State = "installed"
	StateTrial       State = "trial"
	StateCommitted   State = "committed"
	StateRolledBack  State = "rolled_back"
	StateFailed      State = "failed"
)

// StateSchema is the schema of the state file.
const StateSchema = 1

// Layout under the installer's root.
const (
	StateFile   = "state.json"
	CurrentLink = "current"   // the slot to run: the launcher runs current/outpost
	GoodLink    = "committed" // the last slot confirmed healthy
	BinaryName  = "outpost"
	tmpBinary   = ".outpost.tmp"
)

// Slots are the two directories binaries are installed in.
var Slots = [2]string{"a", "b"}

// Slot is a binary installed in a slot.
type Slot struct {
	Name    string `json:"slot"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
}

// Record is the persisted state of the installer.
type Record struct {
	Schema int   `json:"schema"`
	State  State `json:"state"`
	// Running is the committed slot: the one known to work.
	Running Slot `json:"running"`
	// Target is the release being installed or tried, or the one that
	// failed or was rolled back.
	Target *Slot `json:"target,omitempty"`
	// Previous is the slot committed before Running.
	Previous *Slot  `json:"previous,omitempty"`
	Bundle   string `json:"bundle,omitempty"`
	// TrialDeadline: a trial not confirmed by then is rolled back.
	TrialDeadline time.Time `json:"trial_deadline,omitzero"`
	// Boots counts the starts of the agent during the trial, Crashes the
	// ones that ended in a crash the launcher saw. A crash loop is told by
	// Crashes, not by Boots: a solar unit browning out during a trial
	// restarts without its release being at fault.
	Boots   int       `json:"boots,omitempty"`
	Crashes int       `json:"crashes,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Updated time.Time `json:"updated"`
}

// Action tells the caller of Resume what to do next.
type Action string

const (
	// ActionNone: carry on.
	ActionNone Action = "none"
	// ActionRestart: the current link changed; the agent must (re)start
	// from current/outpost.
	ActionRestart Action = "restart"
	// ActionTrial: the agent runs a release on trial; it must check its
	// health and call Confirm before the trial deadline.
	ActionTrial Action = "trial"
)

// Defaults of Config.
const (
	DefaultTrialWindow   = 10 * time.Minute
	DefaultMaxTrialBoots = 3
)

// Config configures an Installer.
type Config struct {
	// Root holds the slots, the links and the state file, e.g.
	// /var/lib/outpost/ota.
	Root string
	// Keys are the pinned release keys. Without one every update is
	// refused.
	Keys []PublicKey
	// Arch is the unit's architecture, one of Arches.
	Arch string
	// TrialWindow is how long a new release has to confirm its health.
	TrialWindow time.Duration
	// MaxTrialBoots is how many crashes of a release on trial are taken
	// for a crash loop (it is rolled back); it also bounds its starts, at
	// MaxTrialBoots × maxStartsPerCrash, whatever ended them (a board
	// that keeps rebooting).
	MaxTrialBoots int
	// Precondition is checked before a release is written (battery,
	// disk); nil allows always.
	Precondition Precondition
	Clock        clock.Clock
	Logger       *slog.Logger
}

// Installer installs releases into the A/B slots under Config.Root. It is
// meant to have one owner, the agent; its methods are safe for concurrent
// use within that process.
type Installer struct {
	cfg Config
	log *slog.Logger

	mu  sync.Mutex
	rec Record

	// crashAfter, in tests, stops a method right after it saved the
	// given state, before the side effect that follows, as a power cut
	// would.
	crashAfter func(State) bool
}

var errCrashed = errors.New("ota: simulated power cut")

// New opens the installer at cfg.Root, reading its state. A root without
// a state file needs Bootstrap.
func New(cfg Config) (*Installer, error) {
	if cfg.Root == "" {
		return nil, errors.New("ota: no root directory for the slots")
	}
	if cfg.Arch != "" && !validArch(cfg.Arch) {
		return nil, fmt.Errorf("ota: arch %q is not one of %v", cfg.Arch, Arches)
	}
	if cfg.TrialWindow <= 0 {
		cfg.TrialWindow = DefaultTrialWindow
	}
	if cfg.MaxTrialBoots <= 0 {
		cfg.MaxTrialBoots = DefaultMaxTrialBoots
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	i := &Installer{cfg: cfg, log: cfg.Logger.With("component", "ota")}
	b, err := os.ReadFile(filepath.Join(cfg.Root, StateFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return i, nil
	case err != nil:
		return nil, fmt.Errorf("ota: %w", err)
	}
	if err := json.Unmarshal(b, &i.rec); err != nil {
		return nil, fmt.Errorf("ota: %s is unreadable (%v): the unit runs %s; move the file aside and run Bootstrap again", filepath.Join(cfg.Root, StateFile), err, filepath.Join(cfg.Root, CurrentLink, BinaryName))
	}
	if i.rec.Schema != StateSchema {
		return nil, fmt.Errorf("ota: %s has schema %d, this agent reads %d: it was written by another version; move it aside and run Bootstrap", filepath.Join(cfg.Root, StateFile), i.rec.Schema, StateSchema)
	}
	if !isSlot(i.rec.Running.Name) || (i.rec.Target != nil && i.rec.Target.Name != "" && !isSlot(i.rec.Target.Name)) {
		return nil, fmt.Errorf("ota: %s names a slot other than a or b: move it aside and run Bootstrap", filepath.Join(cfg.Root, StateFile))
	}
	switch i.rec.State {
	case StateVerified, StateInstalled, StateTrial:
		if i.rec.Target == nil || i.rec.Target.Name == i.rec.Running.Name || !isSlot(i.rec.Target.Name) {
			return nil, fmt.Errorf("ota: %s is %s without a target slot apart from the running one: move it aside and run Bootstrap", filepath.Join(cfg.Root, StateFile), i.rec.State)
		}
	}
	return i, nil
}

func isSlot(s string) bool { return s == Slots[0] || s == Slots[1] }

func other(s string) string {
	if s == Slots[0] {
		return Slots[1]
	}
	return Slots[0]
}

// Status returns a copy of the persisted state.
func (i *Installer) Status() Record {
	i.mu.Lock()
	defer i.mu.Unlock()
	r := i.rec
	if r.Target != nil {
		t := *r.Target
		r.Target = &t
	}
	if r.Previous != nil {
		p := *r.Previous
		r.Previous = &p
	}
	return r
}

// BinaryPath is the path the launcher runs: ROOT/current/outpost.
func (i *Installer) BinaryPath() string {
	return filepath.Join(i.cfg.Root, CurrentLink, BinaryName)
}

func (i *Installer) slotPath(slot string) string {
	return filepath.Join(i.cfg.Root, slot, BinaryName)
}

// save persists rec, atomically, then makes it the installer's state.
func (i *Installer) save(rec Record) error {
	rec.Schema = StateSchema
	rec.Updated = i.cfg.Clock.Now().UTC()
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("ota: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(i.cfg.Root, StateFile), append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("ota: saving the update state: %w", err)
	}
	i.rec = rec
	i.log.Info("update state", "state", rec.State, "running", rec.Running.Version, "target", targetVersion(rec), "reason", rec.Reason)
	if i.crashAfter != nil && i.crashAfter(rec.State) {
		return errCrashed
	}
	return nil
}

func targetVersion(r Record) string {
	if r.Target == nil {
		return ""
	}
	return r.Target.Version
}

func (i *Installer) stateErr(op string, allowed ...State) error {
	if i.rec.State == "" {
		return refuse(ErrState, fmt.Sprintf("%s: the update directory %s is not set up: run Bootstrap with the installed binary", op, i.cfg.Root))
	}
	return refuse(ErrState, fmt.Sprintf("%s: the update is %s (target %s), %s needs %v", op, i.rec.State, targetVersion(i.rec), op, allowed))
}

func (i *Installer) in(states ...State) bool {
	for _, s := range states {
		if i.rec.State == s {
			return true
		}
	}
	return false
}

// Bootstrap sets up an empty root: binary (the agent as installed by its
// package, of the given version) is copied into slot a and both links
// point at it.
func (i *Installer) Bootstrap(ctx context.Context, binary, version string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.rec.State != "" {
		return refuse(ErrState, fmt.Sprintf("bootstrap: %s is already set up (state %s, running %s)", i.cfg.Root, i.rec.State, i.rec.Running.Version))
	}
	f, err := os.Open(binary)
	if err != nil {
		return fmt.Errorf("ota: bootstrap: %w", err)
	}
	defer f.Close()
	slot := Slots[0]
	sum, err := i.writeSlot(ctx, slot, func(w io.Writer) error {
		_, err := copyCtx(ctx, w, f)
		return err
	})
	if err != nil {
		return err
	}
	if err := i.save(Record{State: StateIdle, Running: Slot{Name: slot, Version: version, SHA256: sum}}); err != nil {
		return err
	}
	_, err = i.repairLinks()
	return err
}

// target is what the unit runs, for CheckPolicy.
func (i *Installer) target() Target {
	return Target{Version: i.rec.Running.Version, Arch: i.cfg.Arch, BinarySHA256: i.rec.Running.SHA256}
}

// Verify checks a bundle against the pinned keys and the unit (its arch,
// its running version, the base of a delta), reading nothing but the
// header, the manifest and the payload's hash.
func (i *Installer) Verify(bundlePath string) (Manifest, error) {
	i.mu.Lock()
	t := i.target()
	i.mu.Unlock()
	b, f, err := VerifyFile(bundlePath, i.cfg.Keys, t)
	if err != nil {
		return Manifest{}, err
	}
	f.Close()
	return b.Manifest, nil
}

// BeginDownload records that the release version is being downloaded.
func (i *Installer) BeginDownload(version string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	ok := []State{StateIdle, StateDownloading, StateCommitted, StateRolledBack, StateFailed}
	if !i.in(ok...) {
		return i.stateErr("download", ok...)
	}
	return i.save(Record{State: StateDownloading, Running: i.rec.Running, Previous: i.rec.Previous, Target: &Slot{Version: version}})
}

// Fail abandons an update that is downloading, verified or installed.
func (i *Installer) Fail(reason string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	ok := []State{StateDownloading, StateVerified, StateInstalled}
	if !i.in(ok...) {
		return i.stateErr("fail", ok...)
	}
	return i.fail(reason)
}

func (i *Installer) fail(reason string) error {
	r := i.rec
	r.State, r.Reason, r.Bundle, r.Boots, r.Crashes, r.TrialDeadline = StateFailed, reason, "", 0, 0, time.Time{}
	return i.save(r)
}

// Install verifies the bundle, checks the preconditions and writes the
// release into the slot not running, checking its SHA-256 as written and
// as read back. The state becomes installed; Activate starts the trial.
// A refused bundle leaves the state failed with the reason; a refused
// precondition leaves the state as it was.
func (i *Installer) Install(ctx context.Context, bundlePath string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	ok := []State{StateIdle, StateDownloading, StateCommitted, StateRolledBack, StateFailed}
	if !i.in(ok...) {
		return i.stateErr("install", ok...)
	}
	Failpoint(FailMidVerify)
	b, f, err := VerifyFile(bundlePath, i.cfg.Keys, i.target())
	if err != nil {
		var r *RefusedError
		if errors.As(err, &r) {
			if serr := i.fail(Reason(err)); serr != nil {
				return errors.Join(err, serr)
			}
		}
		return err
	}
	defer f.Close()
	m := b.Manifest
	if i.cfg.Precondition != nil {
		if err := i.cfg.Precondition(ctx, m); err != nil {
			return err
		}
	}
	slot := other(i.rec.Running.Name)
	for _, link := range []string{CurrentLink, GoodLink} {
		if cur, _ := os.Readlink(filepath.Join(i.cfg.Root, link)); cur == slot {
			return refuse(ErrState, fmt.Sprintf("install: %s points to slot %s, the one a new release would be written to: call Resume at start-up first", link, slot))
		}
	}
	tgt := &Slot{Name: slot, Version: m.Version, SHA256: m.SHA256}
	if err := i.save(Record{State: StateVerified, Running: i.rec.Running, Previous: i.rec.Previous, Target: tgt, Bundle: bundlePath}); err != nil {
		return err
	}
	Failpoint(FailAfterVerified)
	var base []byte
	if m.IsDelta() {
		base, err = os.ReadFile(i.slotPath(i.rec.Running.Name))
		if err != nil {
			err = fmt.Errorf("ota: reading the running binary, the base of the delta: %w", err)
			return errors.Join(err, i.fail(err.Error()))
		}
	}
	_, err = i.writeSlot(ctx, slot, func(w io.Writer) error {
		if err := Decode(ctx, m, b.Payload(), base, w); err != nil {
			return err
		}
		Failpoint(FailMidInstall)
		return nil
	})
	if err == nil {
		err = i.checkSlot(*tgt)
	}
	if err != nil {
		if ctx.Err() != nil {
			return errors.Join(err, i.fail(fmt.Sprintf("installing %s was cancelled", m.Version)))
		}
		return errors.Join(err, i.fail(fmt.Sprintf("installing %s: %s", m.Version, Reason(err))))
	}
	r := i.rec
	r.State = StateInstalled
	if err := i.save(r); err != nil {
		return err
	}
	Failpoint(FailAfterInstalled)
	return nil
}

// writeSlot writes a binary into slot: a temporary file, synced, renamed
// over the slot's binary, the directory synced. It returns the SHA-256 of
// what was written.
func (i *Installer) writeSlot(ctx context.Context, slot string, fill func(io.Writer) error) (string, error) {
	dir := filepath.Join(i.cfg.Root, slot)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("ota: %w", err)
	}
	tmp := filepath.Join(dir, tmpBinary)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return "", fmt.Errorf("ota: %w", err)
	}
	h := sha256.New()
	err = fill(io.MultiWriter(f, h))
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		if err = f.Sync(); err != nil {
			err = fmt.Errorf("ota: syncing %s: %w", tmp, err)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("ota: %w", cerr)
	}
	if err == nil {
		if err = os.Rename(tmp, filepath.Join(dir, BinaryName)); err != nil {
			err = fmt.Errorf("ota: %w", err)
		}
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return "", fmt.Errorf("ota: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkSlot reads the slot's binary back and compares its hash.
func (i *Installer) checkSlot(s Slot) error {
	f, err := os.Open(i.slotPath(s.Name))
	if err != nil {
		return fmt.Errorf("ota: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("ota: reading back slot %s: %w", s.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != s.SHA256 {
		return refuse(ErrBinaryHash, fmt.Sprintf("slot %s reads back with sha256 %s…, %s should be %s…: the storage is failing; check the SD card", s.Name, got[:16], s.Version, s.SHA256[:16]))
	}
	return nil
}

// Activate starts the trial of the installed release: the state becomes
// trial with a deadline, then current is switched to the new slot. The
// caller then restarts the agent from current/outpost.
func (i *Installer) Activate() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if !i.in(StateInstalled) {
		return i.stateErr("activate", StateInstalled)
	}
	if err := i.activate(i.cfg.Clock.Now()); err != nil {
		return err
	}
	// Here, not in activate: the launcher activates too (Resume), and
	// must not be the process killed.
	Failpoint(FailAfterSwitch)
	return nil
}

func (i *Installer) activate(now time.Time) error {
	if err := i.checkSlot(*i.rec.Target); err != nil {
		return errors.Join(err, i.fail(Reason(err)))
	}
	r := i.rec
	r.State, r.TrialDeadline, r.Boots, r.Crashes = StateTrial, now.Add(i.cfg.TrialWindow).UTC(), 0, 0
	if err := i.save(r); err != nil {
		return err
	}
	return i.switchLink(CurrentLink, r.Target.Name)
}

// Confirm commits the release on trial once its health check has passed:
// it becomes the running slot, and the committed link follows. A trial
// past its deadline cannot be confirmed: roll it back.
func (i *Installer) Confirm() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if !i.in(StateTrial) {
		return i.stateErr("confirm", StateTrial)
	}
	if now := i.cfg.Clock.Now(); now.After(i.rec.TrialDeadline) {
		return refuse(ErrState, fmt.Sprintf("confirm: the trial of %s ended at %s: roll it back", i.rec.Target.Version, i.rec.TrialDeadline.Format(time.RFC3339)))
	}
	prev := i.rec.Running
	r := Record{State: StateCommitted, Running: *i.rec.Target, Previous: &prev}
	if err := i.save(r); err != nil {
		return err
	}
	return i.switchLink(GoodLink, r.Running.Name)
}

// Rollback abandons the release installed or on trial: the state becomes
// rolled_back with the reason, then current is switched back to the
// running slot. After a trial the caller restarts the agent.
func (i *Installer) Rollback(reason string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if !i.in(StateInstalled, StateTrial) {
		return i.stateErr("roll back", StateInstalled, StateTrial)
	}
	return i.rollback(reason)
}

func (i *Installer) rollback(reason string) error {
	r := i.rec
	r.State, r.Reason, r.Bundle = StateRolledBack, reason, ""
	if err := i.save(r); err != nil {
		return err
	}
	_, err := i.repairLinks()
	return err
}

// maxStartsPerCrash bounds a trial's starts that were not crashes the
// launcher saw (power cuts, reboots) against its crashes allowed.
const maxStartsPerCrash = 4

// NoteCrash records that the release on trial crashed (the launcher saw
// its agent exit with a failure): MaxTrialBoots of them roll it back at
// the next Resume. Outside a trial it does nothing.
func (i *Installer) NoteCrash() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.rec.State != StateTrial {
		return nil
	}
	r := i.rec
	r.Crashes++
	return i.save(r)
}

// PowerRestored is called by the launcher at its own start (the board or
// the service restarted): a trial interrupted by a power cut gets its
// window again from now, since the time the unit was off proved nothing
// either way. Its starts are still bounded (see MaxTrialBoots).
func (i *Installer) PowerRestored(now time.Time) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.rec.State != StateTrial {
		return nil
	}
	r := i.rec
	r.TrialDeadline = now.Add(i.cfg.TrialWindow).UTC()
	return i.save(r)
}

// Resume is called once at every start of the agent, before anything
// else, and does what the start-up table of doc.go says for the last saved
// state. now is the time of the start.
func (i *Installer) Resume(now time.Time) (Action, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	switch i.rec.State {
	case "":
		return ActionNone, i.stateErr("resume")
	case StateIdle, StateDownloading, StateCommitted, StateFailed, StateRolledBack:
		changed, err := i.repairLinks()
		if changed {
			return ActionRestart, err
		}
		return ActionNone, err
	case StateVerified:
		// Power was lost while the new slot was written: what is there
		// is not trusted.
		os.Remove(filepath.Join(i.cfg.Root, i.rec.Target.Name, tmpBinary))
		err := i.fail(fmt.Sprintf("the unit restarted while %s was being written: send the update again", i.rec.Target.Version))
		if err != nil {
			return ActionNone, err
		}
		changed, err := i.repairLinks()
		if changed {
			return ActionRestart, err
		}
		return ActionNone, err
	case StateInstalled:
		if err := i.activate(now); err != nil {
			return ActionNone, err
		}
		return ActionRestart, nil
	case StateTrial:
		if cur, _ := os.Readlink(filepath.Join(i.cfg.Root, CurrentLink)); cur != i.rec.Target.Name {
			// Power was lost between saving the trial and switching.
			return ActionRestart, i.switchLink(CurrentLink, i.rec.Target.Name)
		}
		if now.After(i.rec.TrialDeadline) {
			return ActionRestart, i.rollback(fmt.Sprintf("%s was not confirmed healthy by the end of its trial at %s", i.rec.Target.Version, i.rec.TrialDeadline.Format(time.RFC3339)))
		}
		if i.rec.Crashes >= i.cfg.MaxTrialBoots {
			return ActionRestart, i.rollback(fmt.Sprintf("%s crashed %d times in its trial without being confirmed healthy: a crash loop", i.rec.Target.Version, i.rec.Crashes))
		}
		if i.rec.Boots+1 > i.cfg.MaxTrialBoots*maxStartsPerCrash {
			return ActionRestart, i.rollback(fmt.Sprintf("%s started %d times in its trial without being confirmed healthy", i.rec.Target.Version, i.rec.Boots))
		}
		r := i.rec
		r.Boots++
		if err := i.save(r); err != nil {
			return ActionNone, err
		}
		return ActionTrial, nil
	}
	return ActionNone, fmt.Errorf("ota: unknown update state %q in %s: move the file aside and run Bootstrap", i.rec.State, filepath.Join(i.cfg.Root, StateFile))
}

// repairLinks points current and committed at the running slot unless a
// trial is on, reporting whether current changed.
func (i *Installer) repairLinks() (bool, error) {
	want := i.rec.Running.Name
	changed := false
	for _, name := range []string{CurrentLink, GoodLink} {
		if cur, err := os.Readlink(filepath.Join(i.cfg.Root, name)); err == nil && cur == want {
			continue
		}
		if err := i.switchLink(name, want); err != nil {
			return changed, err
		}
		if name == CurrentLink {
			changed = true
		}
	}
	return changed, nil
}

// switchLink points ROOT/name at slot atomically: a new symbolic link
// under a temporary name is renamed over the old one, then the directory
// is synced. Readers see the old slot or the new one, never neither.
func (i *Installer) switchLink(name, slot string) error {
	tmp := filepath.Join(i.cfg.Root, "."+name+".tmp")
	os.Remove(tmp)
	if err := os.Symlink(slot, tmp); err != nil {
		return fmt.Errorf("ota: switching %s to slot %s: %w", name, slot, err)
	}
	if err := os.Rename(tmp, filepath.Join(i.cfg.Root, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ota: switching %s to slot %s: %w", name, slot, err)
	}
	if err := atomicfile.SyncDir(i.cfg.Root); err != nil {
		return fmt.Errorf("ota: switching %s to slot %s: %w", name, slot, err)
	}
	i.log.Info("link switched", "link", name, "slot", slot)
	return nil
}
