package cli

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent"
	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/ota"
)

// script writes an executable shell script standing in for the agent.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func testLauncher(t *testing.T, self string, keys ...string) (*launcher, *bytes.Buffer) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.OTA.Keys = keys
	cfg.OTA.TrialWindow = config.Duration(time.Minute)
	var out bytes.Buffer
	w := &lockedWriter{w: &out}
	return &launcher{cfg: cfg, path: "/nonexistent.yaml", self: self, env: Env{Stdout: w, Stderr: w},
		clk: clock.Real{}, log: slog.New(slog.NewTextHandler(w, nil))}, &out
}

func TestLauncherPassesOnFinalCodes(t *testing.T) {
	for _, code := range []int{agent.ExitUsage, agent.ExitPowerShutdown} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			self := script(t, t.TempDir(), "outpost", fmt.Sprintf("exit %d", code))
			l, out := testLauncher(t, self)
			if got := l.run(context.Background()); got != code {
				t.Fatalf("launcher exited %d, want %d\n%s", got, code, out)
			}
		})
	}
}

func TestLauncherRestartsAfterCrashAndForwardsSIGTERM(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	started := filepath.Join(dir, "started")
	// The first run crashes; the second runs until SIGTERM.
	self := script(t, dir, "outpost", fmt.Sprintf(`echo x >> %s
[ "$(wc -l < %s)" -eq 1 ] && exit 1
trap 'exit 0' TERM
touch %s
while :; do sleep 0.05; done`, runs, runs, started))
	l, out := testLauncher(t, self)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- l.run(ctx) }()
	deadline := time.After(20 * time.Second)
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("the agent was not started again after its crash\n%s", out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("launcher exited %d after SIGTERM, want the agent's 0\n%s", code, out)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the launcher did not stop\n%s", out)
	}
	if !strings.Contains(out.String(), "the agent exited; starting it again") {
		t.Errorf("no restart logged:\n%s", out)
	}
}

// TestLauncherRollsBackACrashLoop: a release on trial that exits at once
// is started max_trial_boots times, then the committed one runs again.
func TestLauncherRollsBackACrashLoop(t *testing.T) {
	dir := t.TempDir()
	good := script(t, dir, "good", "exit 2") // ends the test: a final code
	key, err := ota.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	l, out := testLauncher(t, good, key.Public().String())
	icfg, err := agent.OTAInstallerConfig(l.cfg, clock.Real{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(icfg.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	inst, err := ota.New(icfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.Bootstrap(context.Background(), good, "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := ota.Build(&b, key, []byte("#!/bin/sh\nexit 1\n"), ota.BuildOptions{Version: "v2.0.0", Arch: agent.BuildArch()}); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "v2.bundle")
	os.WriteFile(bundle, b.Bytes(), 0o644)
	if err := inst.Install(context.Background(), bundle); err != nil {
		t.Fatal(err)
	}
	if err := inst.Activate(); err != nil {
		t.Fatal(err)
	}
	if code := l.run(context.Background()); code != agent.ExitUsage {
		t.Fatalf("launcher exited %d, want 2 from the committed release\n%s", code, out)
	}
	inst, err = ota.New(icfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := inst.Status()
	if rec.State != ota.StateRolledBack || rec.Running.Version != "v1.0.0" || !strings.Contains(rec.Reason, "crash loop") {
		t.Fatalf("state %s running %s reason %q, want rolled_back to v1.0.0 for a crash loop\n%s", rec.State, rec.Running.Version, rec.Reason, out)
	}
	if n := strings.Count(out.String(), "the agent exited; starting it again"); n != 3 {
		t.Errorf("%d restarts on trial, want 3 (max_trial_boots)\n%s", n, out)
	}
}

// lockedWriter serialises the writes of the launcher's log and its child's
// output copied by os/exec.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
