package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent"
	"github.com/outpost-cctv/outpost/control"
	"github.com/outpost-cctv/outpost/internal/testbroker"
	"github.com/outpost-cctv/outpost/ota"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// End-to-end tests of over-the-air updates: releases of the real agent
// built with different versions, 'outpost launch' running them against a
// real mosquitto, and outpostctl ota pushing signed bundles.

var otaBins struct {
	once   sync.Once
	v1, v2 string
	err    error
}

// otaAgents builds the agent as v1.0.0 and v2.0.0 (only the link differs,
// so the second build is quick).
func otaAgents(t *testing.T) (v1, v2 string) {
	t.Helper()
	otaBins.once.Do(func() {
		dir := filepath.Dir(bins.outpost)
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, b := range []struct {
			out *string
			ver string
		}{{&otaBins.v1, "v1.0.0"}, {&otaBins.v2, "v2.0.0"}} {
			*b.out = filepath.Join(dir, "outpost-"+b.ver)
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command("go", "build", "-ldflags", "-X github.com/outpost-cctv/outpost/internal/version.Version="+b.ver, "-o", *b.out, "../outpost")
				if out, err := cmd.CombinedOutput(); err != nil {
					mu.Lock()
					otaBins.err = fmt.Errorf("building %s: %v\n%s", b.ver, err, out)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	})
	if otaBins.err != nil {
		t.Fatal(otaBins.err)
	}
	return otaBins.v1, otaBins.v2
}

// releaseKit is a signing key and the bundles made with it.
type releaseKit struct {
	key ota.PrivateKey
	dir string
}

func newKit(t *testing.T) *releaseKit {
	t.Helper()
	k, err := ota.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &releaseKit{key: k, dir: t.TempDir()}
}

// bundle signs binary (a file) as a release.
func (k *releaseKit) bundle(t *testing.T, binary string, o ota.BuildOptions) string {
	t.Helper()
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	return k.bundleBytes(t, b, o)
}

func (k *releaseKit) bundleBytes(t *testing.T, bin []byte, o ota.BuildOptions) string {
	t.Helper()
	if o.Arch == "" {
		o.Arch = agent.BuildArch()
	}
	var buf bytes.Buffer
	if _, err := ota.Build(&buf, k.key, bin, o); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	p := filepath.Join(k.dir, fmt.Sprintf("%s-%s-%x.bundle", o.Version, o.Arch, sum[:6]))
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// otaUnit is a unit run by 'outpost launch' from a packaged binary.
type otaUnit struct {
	id, cfg, data string
	cmd           *exec.Cmd
	out           *syncBuffer
	// env is added to the launcher's environment (and so the agent's).
	env []string
}

func newOTAUnit(t *testing.T, b *testbroker.Broker, id string, k *releaseKit) *otaUnit {
	t.Helper()
	data := t.TempDir()
	u := &otaUnit{id: id, data: data, cfg: filepath.Join(data, "outpost.yaml")}
	cfg := fmt.Sprintf(`unit:
  id: %s
  site: e2e
data_dir: %s
camera:
  width: 640
  height: 360
  fps: 5
uplink:
  broker: %s
  keepalive: 10s
telemetry:
  power:
    interval: 2s
    max_interval: 30s
ota:
  keys:
    - %s
  trial_window: 20s
`, id, data, b.URL(), k.key.Public().String())
	if err := os.WriteFile(u.cfg, []byte(cfg), 0o640); err != nil {
		t.Fatal(err)
	}
	return u
}

// launch starts 'outpost launch' from the packaged binary bin.
func (u *otaUnit) launch(t *testing.T, bin string) {
	t.Helper()
	cmd := exec.Command(bin, "launch", "--config", u.cfg)
	cmd.Env = append(os.Environ(), u.env...)
	if u.out == nil {
		u.out = &syncBuffer{}
		t.Cleanup(func() {
			if t.Failed() || os.Getenv("OUTPOST_TEST_UNIT_LOG") != "" {
				t.Logf("unit %s output:\n%s", u.id, u.out.String())
			}
		})
	}
	cmd.Stdout, cmd.Stderr = u.out, u.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	u.cmd = cmd
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	})
}

// kill SIGKILLs the launcher and waits until the agent it ran has stopped
// (the kernel sends it SIGTERM as its launcher dies).
func (u *otaUnit) kill(t *testing.T, c *control.Client) {
	t.Helper()
	u.cmd.Process.Kill()
	u.cmd.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := c.Status(ctx, u.id)
		cancel()
		if err != nil {
			return
		}
	}
	t.Fatalf("unit %s still online 20 s after its launcher was killed", u.id)
}

// otaStatus waits for the unit's update status to satisfy ok.
func otaStatus(t *testing.T, c *control.Client, unit string, d time.Duration, what string, ok func(ota.Status) bool) ota.Status {
	t.Helper()
	deadline := time.Now().Add(d)
	var last ota.Status
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, found, _ := c.OTAStatus(ctx, unit)
		cancel()
		if found {
			last = st
			if ok(st) {
				return st
			}
		}
	}
	t.Fatalf("unit %s: no update status with %s within %s; last: %+v", unit, what, d, last)
	return last
}

func runningIs(v string) func(ota.Status) bool {
	return func(st ota.Status) bool { return st.Agent == v && st.Running.Version == v }
}

func mustHave(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Fatalf("%s: want %q in:\n%s", what, w, got)
		}
	}
}

func TestOTAPushCommitAndRollbacks(t *testing.T) {
	t.Parallel()
	v1, v2 := otaAgents(t)
	b := testbroker.Start(t, testbroker.Options{})
	k := newKit(t)
	u := newOTAUnit(t, b, "ota-main", k)
	u.launch(t, v1)
	waitOnline(t, b, u.id)
	c := dialControl(t, b)
	events := watchEvents(t, c, u.id)
	otaStatus(t, c, u.id, 20*time.Second, "v1 running", runningIs("v1.0.0"))

	// v2: installed, run on trial, healthy, committed.
	out, stderr, code := ctl(t, b, "ota", "push", u.id, k.bundle(t, v2, ota.BuildOptions{Version: "v2.0.0"}))
	t.Logf("ota push v2:\n%s", out)
	if code != 0 {
		t.Fatalf("ota push v2: exit %d\n%s%s", code, out, stderr)
	}
	mustHave(t, "ota push v2", out, "v2.0.0 installed; on trial", "committed v2.0.0 (was v1.0.0)")
	out, _, code = ctl(t, b, "ota", "status", u.id)
	t.Logf("ota status:\n%s", out)
	if code != 0 {
		t.Fatalf("ota status: exit %d", code)
	}
	mustHave(t, "ota status", out, "v2.0.0", "committed")
	events.wait(t, 10*time.Second, "ota committed", func(e wire.Event) bool {
		return e.Kind == "ota" && e.Data["outcome"] == "committed" && e.Data["version"] == "v2.0.0"
	})

	// v3 exits at once: three starts on trial, then back on v2 by itself.
	crash := k.bundleBytes(t, []byte("#!/bin/sh\necho 'v3: failing at start-up' >&2\nexit 1\n"), ota.BuildOptions{Version: "v3.0.0"})
	out, stderr, code = ctl(t, b, "ota", "push", u.id, crash)
	t.Logf("ota push v3 (crashes at start-up):\n%s", out)
	if code != 1 {
		t.Fatalf("ota push v3: exit %d\n%s%s", code, out, stderr)
	}
	mustHave(t, "ota push v3", out, "rolled back v3.0.0, running v2.0.0", "crash loop")
	otaStatus(t, c, u.id, 20*time.Second, "v2 running again", runningIs("v2.0.0"))
	events.wait(t, 10*time.Second, "ota rolled_back v3", func(e wire.Event) bool {
		return e.Kind == "ota" && e.Data["outcome"] == "rolled_back" && e.Data["version"] == "v3.0.0"
	})

	// v4 runs but never connects: stopped at the end of its trial, rolled
	// back.
	hang := k.bundleBytes(t, []byte("#!/bin/sh\nexec sleep 600\n"), ota.BuildOptions{Version: "v4.0.0"})
	start := time.Now()
	out, stderr, code = ctl(t, b, "ota", "push", u.id, hang)
	t.Logf("ota push v4 (never healthy), %s:\n%s", time.Since(start).Round(time.Second), out)
	if code != 1 {
		t.Fatalf("ota push v4: exit %d\n%s%s", code, out, stderr)
	}
	mustHave(t, "ota push v4", out, "rolled back v4.0.0, running v2.0.0", "end of its trial")
	otaStatus(t, c, u.id, 20*time.Second, "v2 running again", runningIs("v2.0.0"))
	out, _, _ = ctl(t, b, "ota", "status")
	t.Logf("ota status (fleet):\n%s", out)
	mustHave(t, "ota status", out, u.id, "v2.0.0", "rolled_back")
}

func TestOTARejectedBeforeInstall(t *testing.T) {
	t.Parallel()
	v1, v2 := otaAgents(t)
	b := testbroker.Start(t, testbroker.Options{})
	k := newKit(t)
	u := newOTAUnit(t, b, "ota-reject", k)
	u.launch(t, v1)
	waitOnline(t, b, u.id)
	c := dialControl(t, b)
	otaStatus(t, c, u.id, 20*time.Second, "v1 running", runningIs("v1.0.0"))

	good := k.bundle(t, v2, ota.BuildOptions{Version: "v2.0.0"})
	other := newKit(t)
	otherArch := "arm64"
	if agent.BuildArch() == "arm64" {
		otherArch = "amd64"
	}
	whole, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(t.TempDir(), "truncated.bundle")
	if err := os.WriteFile(truncated, whole[:len(whole)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, bundle, reason string
	}{
		{"bad signature", other.bundle(t, v2, ota.BuildOptions{Version: "v2.0.0"}), "not signed by a pinned key"},
		{"wrong arch", k.bundle(t, v2, ota.BuildOptions{Version: "v2.0.0", Arch: otherArch}), "is for " + otherArch},
		{"downgrade", k.bundle(t, v2, ota.BuildOptions{Version: "v0.9.0"}), "older than the running v1.0.0"},
		{"truncated", truncated, "its header says"},
	} {
		out, stderr, code := ctl(t, b, "ota", "push", u.id, tc.bundle)
		t.Logf("ota push (%s):\n%s", tc.name, out)
		if code != 1 {
			t.Fatalf("%s: exit %d\n%s%s", tc.name, code, out, stderr)
		}
		mustHave(t, tc.name, out, "rejected", "nothing installed, running v1.0.0", tc.reason)
	}
	root := filepath.Join(u.data, "ota")
	if cur, err := os.Readlink(filepath.Join(root, "current")); err != nil || cur != "a" {
		t.Fatalf("current -> %q (%v), want a", cur, err)
	}
	if _, err := os.Stat(filepath.Join(root, "b", "outpost")); err == nil {
		t.Fatalf("a rejected release was written to slot b")
	}
	st := otaStatus(t, c, u.id, 10*time.Second, "v1 still running", runningIs("v1.0.0"))
	if st.State != ota.StateFailed {
		t.Fatalf("state %s, want failed", st.State)
	}
}

// TestOTAKilledMidTransferAndTrial kills the launcher (and so the agent)
// while a bundle is being received, then during the trial: the unit ends
// on the old release or the new one, never neither, and the push resumes.
func TestOTAKilledMidTransferAndTrial(t *testing.T) {
	t.Parallel()
	v1, v2 := otaAgents(t)
	b := testbroker.Start(t, testbroker.Options{})
	k := newKit(t)
	u := newOTAUnit(t, b, "ota-kill", k)
	u.launch(t, v1)
	waitOnline(t, b, u.id)
	c := dialControl(t, b)
	otaStatus(t, c, u.id, 20*time.Second, "v1 running", runningIs("v1.0.0"))
	bundle := k.bundle(t, v2, ota.BuildOptions{Version: "v2.0.0"})

	// Small chunks, one at a time, so that the transfer lasts.
	push := exec.Command(bins.outpostctl, "--broker", b.URL(), "ota", "push", u.id, bundle, "--chunk-size", "4096", "--window", "1")
	push.Env = append(os.Environ(), "HOME="+t.TempDir())
	stderr, err := push.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	seen := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "sent 10%") {
			seen = true
			break
		}
	}
	if !seen {
		push.Wait()
		t.Fatalf("the push never reported 10%% sent")
	}
	u.kill(t, c)
	push.Process.Kill()
	go io.Copy(io.Discard, stderr)
	push.Wait()

	relaunched := time.Now()
	u.launch(t, v1)
	st := otaStatus(t, c, u.id, 30*time.Second, "v1 running after the kill", func(s ota.Status) bool {
		return s.TS.After(relaunched) && runningIs("v1.0.0")(s)
	})
	t.Logf("after the kill mid-transfer: state %s, running %s", st.State, st.Running.Version)

	// Again, killed during the trial this time.
	push = exec.Command(bins.outpostctl, "--broker", b.URL(), "ota", "push", u.id, bundle, "--chunk-size", "4096", "--window", "1")
	push.Env = append(os.Environ(), "HOME="+t.TempDir())
	var pushOut syncBuffer
	push.Stdout, push.Stderr = &pushOut, &pushOut
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if push.ProcessState == nil {
			push.Process.Kill()
			push.Wait()
		}
	}()
	otaStatus(t, c, u.id, 60*time.Second, "v2 on trial", func(s ota.Status) bool { return s.State == ota.StateTrial })
	u.kill(t, c)
	mustHave(t, "resumed push", pushOut.String(), "resuming")
	u.launch(t, v1)
	otaStatus(t, c, u.id, 40*time.Second, "v2 committed after the kill", func(s ota.Status) bool {
		return s.State == ota.StateCommitted && runningIs("v2.0.0")(s)
	})
	if err := push.Wait(); err != nil {
		t.Fatalf("ota push: %v\n%s", err, pushOut.String())
	}
	t.Logf("ota push, killed during the trial:\n%s", pushOut.String())
	mustHave(t, "ota push", pushOut.String(), "committed v2.0.0")
}

// TestOTARollout: a rollout halts when its canary fails, leaving the
// other units alone, and goes through when the canary commits.
func TestOTARollout(t *testing.T) {
	t.Parallel()
	v1, v2 := otaAgents(t)
	b := testbroker.Start(t, testbroker.Options{})
	k := newKit(t)
	c := dialControl(t, b)
	units := []*otaUnit{newOTAUnit(t, b, "ota-roll-a", k), newOTAUnit(t, b, "ota-roll-b", k)}
	for _, u := range units {
		u.launch(t, v1)
	}
	for _, u := range units {
		waitOnline(t, b, u.id)
		otaStatus(t, c, u.id, 20*time.Second, "v1 running", runningIs("v1.0.0"))
	}
	crash := k.bundleBytes(t, []byte("#!/bin/sh\nexit 1\n"), ota.BuildOptions{Version: "v3.0.0"})
	out, stderr, code := ctl(t, b, "ota", "rollout", "--units", "ota-roll-a,ota-roll-b", "--canary", "50%", crash)
	t.Logf("ota rollout (canary crashes):\n%s", out)
	if code != 1 {
		t.Fatalf("rollout: exit %d\n%s%s", code, out, stderr)
	}
	mustHave(t, "rollout", out, "canaries: ota-roll-a", "ota-roll-a: rolled_back v3.0.0", "halted: 1 of 1 canaries failed", "not updated: ota-roll-b")
	st := otaStatus(t, c, "ota-roll-b", 10*time.Second, "b untouched", runningIs("v1.0.0"))
	if st.Push != "" {
		t.Fatalf("ota-roll-b was pushed to: %+v", st)
	}
	out, stderr, code = ctl(t, b, "ota", "rollout", "--units", "ota-roll-a,ota-roll-b", "--canary", "1", k.bundle(t, v2, ota.BuildOptions{Version: "v2.0.0"}))
	t.Logf("ota rollout (v2):\n%s", out)
	if code != 0 {
		t.Fatalf("rollout: exit %d\n%s%s", code, out, stderr)
	}
	mustHave(t, "rollout", out, "ota-roll-a: committed v2.0.0", "ota-roll-b: committed v2.0.0", "rollout: 2 of 2 committed")
}
