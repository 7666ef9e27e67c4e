package ota

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type rig struct {
	t    *testing.T
	root string
	key  PrivateKey
	clk  *clock.Fake
	v1   []byte // the binary installed by package, v1.2.3
	pre  Precondition
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, root: t.TempDir(), key: testKey(t), clk: clock.NewFake(t0), v1: fakeBinary(10, 256<<10)}
	pkg := filepath.Join(t.TempDir(), "outpost")
	if err := os.WriteFile(pkg, r.v1, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.open().Bootstrap(context.Background(), pkg, "v1.2.3"); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	return r
}

// open makes a new Installer over the rig's directory, as a restart of
// the agent does.
func (r *rig) open() *Installer {
	r.t.Helper()
	i, err := New(Config{Root: r.root, Keys: []PublicKey{r.key.Public()}, Arch: "arm64", TrialWindow: 10 * time.Minute, MaxTrialBoots: 3, Clock: r.clk, Precondition: r.pre})
	if err != nil {
		r.t.Fatalf("New: %v", err)
	}
	return i
}

// bundle writes a bundle of bin to a file.
func (r *rig) bundle(bin []byte, opt BuildOptions) string {
	r.t.Helper()
	p := filepath.Join(r.t.TempDir(), "release.otab")
	if err := os.WriteFile(p, build(r.t, r.key, bin, opt), 0o644); err != nil {
		r.t.Fatal(err)
	}
	return p
}

// current returns the slot current points to and the binary it runs.
func (r *rig) current() (string, []byte) {
	r.t.Helper()
	slot, err := os.Readlink(filepath.Join(r.root, CurrentLink))
	if err != nil {
		r.t.Fatalf("current: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(r.root, CurrentLink, BinaryName))
	if err != nil {
		r.t.Fatalf("current binary: %v", err)
	}
	return slot, b
}

func (r *rig) committed() string {
	s, err := os.Readlink(filepath.Join(r.root, GoodLink))
	if err != nil {
		r.t.Fatalf("committed: %v", err)
	}
	return s
}

func (r *rig) wantState(i *Installer, s State) Record {
	r.t.Helper()
	rec := i.Status()
	if rec.State != s {
		r.t.Fatalf("state %s (%s), want %s", rec.State, rec.Reason, s)
	}
	// What is on disk agrees with what the installer holds.
	if got := r.open().Status(); got.State != s {
		r.t.Fatalf("state file says %s, installer %s", got.State, s)
	}
	return rec
}

func (r *rig) wantRuns(slot string, bin []byte) {
	r.t.Helper()
	s, b := r.current()
	if s != slot || !bytes.Equal(b, bin) {
		r.t.Fatalf("current is slot %s with a %d-byte binary, want slot %s with %d bytes", s, len(b), slot, len(bin))
	}
}

func TestInstallerHappyPath(t *testing.T) {
	r := newRig(t)
	i := r.open()
	r.wantState(i, StateIdle)
	r.wantRuns("a", r.v1)
	v2 := changed(r.v1)
	ctx := context.Background()
	if err := i.BeginDownload("v1.2.4"); err != nil {
		t.Fatal(err)
	}
	r.wantState(i, StateDownloading)
	p := r.bundle(v2, BuildOptions{Version: "v1.2.4", Base: r.v1})
	m, err := i.Verify(p)
	if err != nil || m.Version != "v1.2.4" || !m.IsDelta() {
		t.Fatalf("Verify: %+v %v", m, err)
	}
	if err := i.Install(ctx, p); err != nil {
		t.Fatalf("Install: %v", err)
	}
	rec := r.wantState(i, StateInstalled)
	if rec.Target.Name != "b" || rec.Target.Version != "v1.2.4" {
		t.Errorf("target %+v", rec.Target)
	}
	r.wantRuns("a", r.v1) // nothing switched yet
	if err := i.Activate(); err != nil {
		t.Fatal(err)
	}
	rec = r.wantState(i, StateTrial)
	if !rec.TrialDeadline.Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("trial deadline %v", rec.TrialDeadline)
	}
	r.wantRuns("b", v2)
	if r.committed() != "a" {
		t.Errorf("committed is %s during the trial, want a", r.committed())
	}
	// The agent restarts into v1.2.4.
	i = r.open()
	if a, err := i.Resume(r.clk.Now()); err != nil || a != ActionTrial {
		t.Fatalf("Resume in trial: %v %v", a, err)
	}
	if rec := r.wantState(i, StateTrial); rec.Boots != 1 {
		t.Errorf("boots %d, want 1", rec.Boots)
	}
	r.clk.Advance(2 * time.Minute)
	if err := i.Confirm(); err != nil {
		t.Fatalf("Confirm: %v", err)
	}
	rec = r.wantState(i, StateCommitted)
	if rec.Running.Name != "b" || rec.Running.Version != "v1.2.4" || rec.Previous.Version != "v1.2.3" {
		t.Errorf("after commit %+v", rec)
	}
	if r.committed() != "b" {
		t.Errorf("committed link %s, want b", r.committed())
	}
	if a, err := r.open().Resume(r.clk.Now()); err != nil || a != ActionNone {
		t.Fatalf("Resume after commit: %v %v", a, err)
	}
	r.wantRuns("b", v2)

	// The next release goes to slot a, a delta against v1.2.4.
	v3 := changed(v2)
	if err := i.Install(ctx, r.bundle(v3, BuildOptions{Version: "v1.3.0", Base: v2})); err != nil {
		t.Fatalf("Install v1.3.0: %v", err)
	}
	if rec := r.wantState(i, StateInstalled); rec.Target.Name != "a" {
		t.Errorf("v1.3.0 went to slot %s, want a", rec.Target.Name)
	}
}

func TestInstallerRefusals(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		setup func(r *rig) string
		want  error
		state State // after the refusal
	}{
		{"downgrade", func(r *rig) string { return r.bundle(fakeBinary(5, 1000), BuildOptions{Version: "v1.2.2"}) }, ErrDowngrade, StateFailed},
		{"same version", func(r *rig) string { return r.bundle(fakeBinary(5, 1000), BuildOptions{Version: "v1.2.3"}) }, ErrDowngrade, StateFailed},
		{"min_from", func(r *rig) string {
			return r.bundle(fakeBinary(5, 1000), BuildOptions{Version: "v2.0.0", MinFromVersion: "v1.5.0"})
		}, ErrMinFrom, StateFailed},
		{"arch", func(r *rig) string {
			return r.bundle(fakeBinary(5, 1000), BuildOptions{Version: "v1.2.4", Arch: "armv6"})
		}, ErrArch, StateFailed},
		{"delta for another base", func(r *rig) string {
			return r.bundle(fakeBinary(5, 1000), BuildOptions{Version: "v1.2.4", Base: fakeBinary(6, 1000)})
		}, ErrDeltaBase, StateFailed},
		{"another key", func(r *rig) string {
			p := filepath.Join(r.t.TempDir(), "b")
			os.WriteFile(p, build(r.t, testKey(r.t), fakeBinary(5, 1000), BuildOptions{}), 0o644)
			return p
		}, ErrSignature, StateFailed},
		{"tampered payload", func(r *rig) string {
			b := build(r.t, r.key, fakeBinary(5, 1000), BuildOptions{})
			b[len(b)-2] ^= 0xff
			p := filepath.Join(r.t.TempDir(), "b")
			os.WriteFile(p, b, 0o644)
			return p
		}, ErrPayloadHash, StateFailed},
		{"low battery", func(r *rig) string {
			r.pre = BatteryAtLeast(40, func(context.Context) (float64, error) { return 25, nil })
			return r.bundle(fakeBinary(5, 1000), BuildOptions{})
		}, ErrPrecondition, StateIdle},
		{"battery unknown", func(r *rig) string {
			r.pre = BatteryAtLeast(40, func(context.Context) (float64, error) { return 0, errors.New("no sensor") })
			return r.bundle(fakeBinary(5, 1000), BuildOptions{})
		}, ErrPrecondition, StateIdle},
		{"disk full", func(r *rig) string {
			r.pre = AllOf(BatteryAtLeast(40, func(context.Context) (float64, error) { return 90, nil }), FreeSpaceAtLeast(r.root, 1<<62))
			return r.bundle(fakeBinary(5, 1000), BuildOptions{})
		}, ErrPrecondition, StateIdle},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			p := tc.setup(r)
			i := r.open()
			err := i.Install(ctx, p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Install: %v, want %v", err, tc.want)
			}
			rec := r.wantState(i, tc.state)
			if tc.state == StateFailed && rec.Reason != Reason(err) {
				t.Errorf("saved reason %q, want %q", rec.Reason, Reason(err))
			}
			var re *RefusedError
			if !errors.As(err, &re) || re.Temporary() != (tc.want == ErrPrecondition) {
				t.Errorf("error %v: temporary should be %v", err, tc.want == ErrPrecondition)
			}
			if _, err := os.Stat(filepath.Join(r.root, "b", BinaryName)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("slot b was written after a refusal: %v", err)
			}
			r.wantRuns("a", r.v1)
		})
	}
	t.Run("no key", func(t *testing.T) {
		r := newRig(t)
		i, err := New(Config{Root: r.root, Arch: "arm64", Clock: r.clk})
		if err != nil {
			t.Fatal(err)
		}
		err = i.Install(ctx, r.bundle(fakeBinary(5, 1000), BuildOptions{}))
		if !errors.Is(err, ErrNoKeys) || !strings.Contains(err.Error(), "refused, not installed unchecked") {
			t.Fatalf("Install without keys: %v", err)
		}
	})
	t.Run("not while a trial is on", func(t *testing.T) {
		r := newRig(t)
		i := r.open()
		if err := i.Install(ctx, r.bundle(changed(r.v1), BuildOptions{})); err != nil {
			t.Fatal(err)
		}
		if err := i.Activate(); err != nil {
			t.Fatal(err)
		}
		if err := i.Install(ctx, r.bundle(changed(r.v1), BuildOptions{Version: "v1.2.5"})); !errors.Is(err, ErrState) {
			t.Fatalf("Install during a trial: %v, want ErrState", err)
		}
		if err := i.Activate(); !errors.Is(err, ErrState) {
			t.Fatalf("Activate twice: %v", err)
		}
	})
}

func TestInstallerTrialEnds(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*rig, []byte) {
		r := newRig(t)
		i := r.open()
		v2 := changed(r.v1)
		if err := i.Install(ctx, r.bundle(v2, BuildOptions{})); err != nil {
			t.Fatal(err)
		}
		if err := i.Activate(); err != nil {
			t.Fatal(err)
		}
		return r, v2
	}
	t.Run("deadline passes", func(t *testing.T) {
		r, _ := setup(t)
		if a, _ := r.open().Resume(r.clk.Now()); a != ActionTrial {
			t.Fatalf("first start: %v", a)
		}
		r.clk.Advance(11 * time.Minute)
		i := r.open()
		if err := i.Confirm(); !errors.Is(err, ErrState) {
			t.Errorf("Confirm after the deadline: %v, want ErrState", err)
		}
		a, err := i.Resume(r.clk.Now())
		if err != nil || a != ActionRestart {
			t.Fatalf("Resume after the deadline: %v %v", a, err)
		}
		rec := r.wantState(i, StateRolledBack)
		if !strings.Contains(rec.Reason, "not confirmed healthy") {
			t.Errorf("reason %q", rec.Reason)
		}
		r.wantRuns("a", r.v1)
	})
	t.Run("power cuts are not crashes", func(t *testing.T) {
		r, v2 := setup(t)
		// Eight power cuts during the trial, some of them long: each start
		// after one gets the window again, none counts as a crash.
		for n := 1; n <= 8; n++ {
			i := r.open()
			if err := i.PowerRestored(r.clk.Now()); err != nil {
				t.Fatal(err)
			}
			if a, err := i.Resume(r.clk.Now()); err != nil || a != ActionTrial {
				t.Fatalf("start %d: %v %v", n, a, err)
			}
			r.wantRuns("b", v2)
			r.clk.Advance(time.Duration(n) * 5 * time.Minute) // the power goes, and comes back
		}
		i := r.open()
		if err := i.PowerRestored(r.clk.Now()); err != nil {
			t.Fatal(err)
		}
		if a, err := i.Resume(r.clk.Now()); err != nil || a != ActionTrial {
			t.Fatalf("start 9: %v %v", a, err)
		}
		if err := i.Confirm(); err != nil {
			t.Fatalf("a good release browned out eight times must still commit: %v", err)
		}
		r.wantState(i, StateCommitted)
	})
	t.Run("crash loop", func(t *testing.T) {
		r, v2 := setup(t)
		for n := 1; n <= 3; n++ {
			i := r.open()
			if a, err := i.Resume(r.clk.Now()); err != nil || a != ActionTrial {
				t.Fatalf("start %d: %v %v", n, a, err)
			}
			r.wantRuns("b", v2)
			r.clk.Advance(10 * time.Second) // crashes soon after
			if err := i.NoteCrash(); err != nil {
				t.Fatal(err)
			}
		}
		i := r.open()
		if a, err := i.Resume(r.clk.Now()); err != nil || a != ActionRestart {
			t.Fatalf("start 4: %v %v", a, err)
		}
		rec := r.wantState(i, StateRolledBack)
		if !strings.Contains(rec.Reason, "crash loop") {
			t.Errorf("reason %q", rec.Reason)
		}
		r.wantRuns("a", r.v1)
		if r.committed() != "a" {
			t.Errorf("committed %s", r.committed())
		}
	})
	t.Run("health check fails", func(t *testing.T) {
		r, _ := setup(t)
		i := r.open()
		if err := i.Rollback("camera does not start"); err != nil {
			t.Fatal(err)
		}
		if rec := r.wantState(i, StateRolledBack); rec.Reason != "camera does not start" {
			t.Errorf("reason %q", rec.Reason)
		}
		r.wantRuns("a", r.v1)
		if a, err := r.open().Resume(r.clk.Now()); err != nil || a != ActionNone {
			t.Fatalf("Resume after rollback: %v %v", a, err)
		}
		// A later release installs into the slot the bad one held.
		if err := i.Install(ctx, r.bundle(changed(changed(r.v1)), BuildOptions{Version: "v1.2.5"})); err != nil {
			t.Fatal(err)
		}
		if rec := i.Status(); rec.Target.Name != "b" {
			t.Errorf("target slot %s", rec.Target.Name)
		}
	})
}

// TestInstallerPowerCut cuts the power right after each state is saved,
// before the side effect that follows, then starts a new Installer over
// the same directory and checks that Resume does what the table says.
func TestInstallerPowerCut(t *testing.T) {
	ctx := context.Background()
	type step func(r *rig, i *Installer) error
	install := func(r *rig, i *Installer) error { return i.Install(ctx, r.bundle(changed(r.v1), BuildOptions{})) }
	cases := []struct {
		name     string
		cutAfter State
		steps    []step
		// after Resume:
		action Action
		state  State
		slot   string // current
	}{
		{"downloading", StateDownloading, []step{func(r *rig, i *Installer) error { return i.BeginDownload("v1.2.4") }}, ActionNone, StateDownloading, "a"},
		{"verified, slot half written", StateVerified, []step{install}, ActionNone, StateFailed, "a"},
		{"installed", StateInstalled, []step{install}, ActionRestart, StateTrial, "b"},
		{"trial saved, current not yet switched", StateTrial, []step{install, func(r *rig, i *Installer) error { return i.Activate() }}, ActionRestart, StateTrial, "b"},
		{"committed saved, committed link not yet switched", StateCommitted, []step{install,
			func(r *rig, i *Installer) error { return i.Activate() },
			func(r *rig, i *Installer) error { return i.Confirm() }}, ActionNone, StateCommitted, "b"},
		{"rolled_back saved, current not yet switched", StateRolledBack, []step{install,
			func(r *rig, i *Installer) error { return i.Activate() },
			func(r *rig, i *Installer) error { return i.Rollback("health check failed") }}, ActionRestart, StateRolledBack, "a"},
		{"failed", StateFailed, []step{func(r *rig, i *Installer) error {
			return i.Install(ctx, r.bundle(changed(r.v1), BuildOptions{Version: "v1.0.0"}))
		}}, ActionNone, StateFailed, "a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			i := r.open()
			i.crashAfter = func(s State) bool { return s == tc.cutAfter }
			var err error
			for _, s := range tc.steps {
				if err = s(r, i); err != nil {
					break
				}
			}
			if !errors.Is(err, errCrashed) {
				t.Fatalf("the power cut after %s did not happen: %v", tc.cutAfter, err)
			}
			if tc.cutAfter == StateVerified {
				// The slot was being written when the power went.
				os.MkdirAll(filepath.Join(r.root, "b"), 0o755)
				os.WriteFile(filepath.Join(r.root, "b", tmpBinary), []byte("half a bin"), 0o755)
			}
			// current always names a whole binary, whatever the moment.
			if s, b := r.current(); !(s == "a" && bytes.Equal(b, r.v1)) && !(s == "b" && bytes.Equal(b, changed(r.v1))) {
				t.Fatalf("after the power cut current is %s with %d bytes", s, len(b))
			}
			j := r.open()
			a, err := j.Resume(r.clk.Now())
			if err != nil || a != tc.action {
				t.Fatalf("Resume: %v %v, want %v", a, err, tc.action)
			}
			rec := r.wantState(j, tc.state)
			want := r.v1
			if tc.slot == "b" {
				want = changed(r.v1)
			}
			r.wantRuns(tc.slot, want)
			if rec.State != StateTrial && r.committed() != rec.Running.Name {
				t.Errorf("committed link %s, running slot %s", r.committed(), rec.Running.Name)
			}
			if _, err := os.Stat(filepath.Join(r.root, "b", tmpBinary)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("half-written binary left behind: %v", err)
			}
			// A second start in the same state changes nothing more
			// (except the trial's boot count).
			if tc.state != StateTrial {
				if a, err := r.open().Resume(r.clk.Now()); err != nil || a != ActionNone {
					t.Errorf("second Resume: %v %v", a, err)
				}
			}
		})
	}
}

func TestInstallerStateFile(t *testing.T) {
	r := newRig(t)
	b, err := os.ReadFile(filepath.Join(r.root, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"schema": 1`, `"state": "idle"`, `"version": "v1.2.3"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("state file lacks %s:\n%s", want, b)
		}
	}
	os.WriteFile(filepath.Join(r.root, StateFile), []byte(`{"schema":1,"state":"trial","running":{"slot":"c"}}`), 0o640)
	if _, err := New(Config{Root: r.root}); err == nil {
		t.Error("New accepted a state naming slot c")
	}
	os.WriteFile(filepath.Join(r.root, StateFile), []byte(`{"schema":2}`), 0o640)
	if _, err := New(Config{Root: r.root}); err == nil || !strings.Contains(err.Error(), "schema 2") {
		t.Errorf("New with schema 2: %v", err)
	}
	os.WriteFile(filepath.Join(r.root, StateFile), []byte(`{"sche`), 0o640)
	if _, err := New(Config{Root: r.root}); err == nil || !strings.Contains(err.Error(), "move the file aside") {
		t.Errorf("New with a torn file: %v", err)
	}
	i, err := New(Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := i.Resume(t0); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "Bootstrap") {
		t.Errorf("Resume before Bootstrap: %v", err)
	}
}

// TestSwitchIsAtomic switches current back and forth while readers open
// current/outpost: every read finds one of the two whole binaries.
func TestSwitchIsAtomic(t *testing.T) {
	r := newRig(t)
	i := r.open()
	v2 := changed(r.v1)
	if err := i.Install(context.Background(), r.bundle(v2, BuildOptions{})); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads, bad atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				b, err := os.ReadFile(filepath.Join(r.root, CurrentLink, BinaryName))
				reads.Add(1)
				if err != nil || !(bytes.Equal(b, r.v1) || bytes.Equal(b, v2)) {
					bad.Add(1)
				}
			}
		}()
	}
	for n := range 200 {
		if err := i.switchLink(CurrentLink, Slots[n%2]); err != nil {
			t.Error(err)
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of %d reads of current/outpost found no whole binary", bad.Load(), reads.Load())
	}
	if reads.Load() == 0 {
		t.Fatal("no reads")
	}
}

func TestInstallerRefusesToOverwriteCurrent(t *testing.T) {
	r := newRig(t)
	i := r.open()
	// current points to slot b although the state says a runs, as after a
	// power cut that Resume has not repaired yet.
	if err := i.switchLink(CurrentLink, "b"); err != nil {
		t.Fatal(err)
	}
	err := i.Install(context.Background(), r.bundle(changed(r.v1), BuildOptions{}))
	if !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "Resume") {
		t.Fatalf("Install over the current slot: %v", err)
	}
	if a, err := i.Resume(r.clk.Now()); err != nil || a != ActionRestart {
		t.Fatalf("Resume: %v %v", a, err)
	}
	r.wantRuns("a", r.v1)
	if err := i.Install(context.Background(), r.bundle(changed(r.v1), BuildOptions{})); err != nil {
		t.Fatalf("Install after Resume: %v", err)
	}
}

func TestInstallerRejectsInconsistentState(t *testing.T) {
	r := newRig(t)
	os.WriteFile(filepath.Join(r.root, StateFile), []byte(`{"schema":1,"state":"trial","running":{"slot":"a"}}`), 0o640)
	if _, err := New(Config{Root: r.root}); err == nil {
		t.Fatal("New accepted a trial without a target")
	}
}

func TestInstallCancelled(t *testing.T) {
	r := newRig(t)
	i := r.open()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := i.Install(ctx, r.bundle(changed(r.v1), BuildOptions{}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Install with a cancelled context: %v", err)
	}
	if rec := r.wantState(i, StateFailed); !strings.Contains(rec.Reason, "cancelled") {
		t.Errorf("reason %q", rec.Reason)
	}
	if _, err := os.Stat(filepath.Join(r.root, "b", tmpBinary)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary binary left behind: %v", err)
	}
	r.wantRuns("a", r.v1)
}
