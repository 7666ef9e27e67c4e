package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/control"
	"github.com/outpost-cctv/outpost/internal/testbroker"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// End-to-end tests of remote configuration: a real mosquitto, the outpost
// binary running from a config file, and outpostctl config.

// runUnit runs `outpost run --config FILE` for a unit whose file is in
// its own data directory; it returns the file's path and the process.
func runUnit(t *testing.T, b *testbroker.Broker, id string, extra string) (string, *exec.Cmd, *syncBuffer) {
	t.Helper()
	data := t.TempDir()
	path := filepath.Join(data, "outpost.yaml")
	cfg := fmt.Sprintf("unit:\n  id: %s\n  site: e2e\ndata_dir: %s\nuplink:\n  broker: %s\n  keepalive: 10s\n  confirm_window: 8s\n%s", id, data, b.URL(), extra)
	if err := os.WriteFile(path, []byte(cfg), 0o640); err != nil {
		t.Fatal(err)
	}
	cmd, out := startRun(t, path)
	return path, cmd, out
}

// syncBuffer is a process's output, readable while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startRun(t *testing.T, path string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(bins.outpost, "run", "--config", path)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("unit output:\n%s", out.String())
		}
	})
	return cmd, out
}

func dialControl(t *testing.T, b *testbroker.Broker) *control.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := control.Dial(ctx, control.Options{Broker: b.URL()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// reportedWhere waits for a config/reported satisfying ok.
func reportedWhere(t *testing.T, c *control.Client, unit string, d time.Duration, what string, ok func(wire.ConfigReported) bool) wire.ConfigReported {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var got, last wire.ConfigReported
	err := c.WatchReported(ctx, unit, func(r wire.ConfigReported) bool {
		last = r
		if ok(r) {
			got = r
			return true
		}
		return false
	})
	if err != nil {
		t.Fatalf("no config/reported with %s within %s; last: %+v", what, d, last)
	}
	return got
}

// getConfig runs outpostctl config get into a file and reads it back.
func getConfig(t *testing.T, b *testbroker.Broker, unit string) (string, config.Config) {
	t.Helper()
	p := filepath.Join(t.TempDir(), unit+".yaml")
	if _, stderr, code := ctl(t, b, "config", "get", unit, "-o", p); code != 0 {
		t.Fatalf("config get: exit %d: %s", code, stderr)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatalf("config get wrote a file that does not load: %v", err)
	}
	return p, cfg
}

func edit(t *testing.T, file, old, new string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", file, old)
	}
	p := filepath.Join(t.TempDir(), "edited.yaml")
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// countTelemetry counts telemetry/power messages of unit during d.
func countTelemetry(t *testing.T, c *control.Client, unit string, d time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	n := 0
	c.Watch(ctx, unit, func(e control.Event) {
		if strings.HasSuffix(e.Topic, "telemetry/power") {
			n++
		}
	})
	return n
}

func TestConfigPushOnDemoUnit(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	unit(t, b, "cfg-demo")
	waitOnline(t, b, "cfg-demo")
	c := dialControl(t, b)
	file, cur := getConfig(t, b, "cfg-demo")
	if cur.Uplink.Password != "" && cur.Uplink.Password != config.RedactedValue {
		t.Fatalf("config get shows a secret")
	}
	// The demo publishes power telemetry every 5 s at most; make it 1 s.
	edited := edit(t, file, "power:\n        interval: 5s\n        max_interval: 30s", "power:\n        interval: 1s\n        max_interval: 1s")
	if before := countTelemetry(t, c, "cfg-demo", 4*time.Second); before > 2 {
		t.Fatalf("%d power samples in 4 s before the change", before)
	}

	out, stderr, code := ctl(t, b, "config", "diff", "cfg-demo", edited)
	if code != 0 || !strings.Contains(out, "telemetry.power.interval: 5s → 1s") || !strings.Contains(out, "telemetry.power.max_interval: 30s → 1s") {
		t.Fatalf("config diff: exit %d\n%s%s", code, out, stderr)
	}
	// Not a terminal and no --yes: nothing is sent.
	_, stderr, code = ctl(t, b, "config", "push", "cfg-demo", edited)
	if code != 2 || !strings.Contains(stderr, "--yes") {
		t.Fatalf("push without --yes from a pipe: exit %d: %s", code, stderr)
	}
	out, stderr, code = ctl(t, b, "config", "push", "cfg-demo", edited, "--yes", "--as", "operator 12")
	t.Logf("config push:\n%s", out)
	if code != 0 || !strings.Contains(out, "would change 2 setting(s)") || !strings.Contains(out, "cfg-demo applied version 1") {
		t.Fatalf("config push: exit %d\n%s%s", code, out, stderr)
	}
	// In effect, without a restart: power telemetry every second.
	if after := countTelemetry(t, c, "cfg-demo", 4*time.Second); after < 3 {
		t.Errorf("%d power samples in 4 s after the change, want at least 3", after)
	}
	r, err := c.Reported(context.Background(), "cfg-demo")
	if err != nil || r.Version != 1 || r.Result != wire.ConfigApplied || r.RequestedBy != "operator 12" {
		t.Fatalf("reported %+v, %v", r, err)
	}
	// The history, and a rollback to the first version.
	out, _, code = ctl(t, b, "config", "history", "cfg-demo")
	if code != 0 || !strings.Contains(out, "*    1") || !strings.Contains(out, "by operator 12") || !strings.Contains(out, "telemetry.power.interval: 5s → 1s") {
		t.Fatalf("config history: exit %d\n%s", code, out)
	}
	out, stderr, code = ctl(t, b, "config", "rollback", "cfg-demo", "0")
	if code != 0 || !strings.Contains(out, "as version 2") || !strings.Contains(out, "telemetry.power.interval: 1s → 5s") || !strings.Contains(out, "applied version 2") {
		t.Fatalf("config rollback: exit %d\n%s%s", code, out, stderr)
	}
	// A file for another unit, and an invalid file, are refused before
	// anything is sent, naming the field.
	other := edit(t, file, "id: cfg-demo", "id: cfg-other")
	if _, stderr, code := ctl(t, b, "config", "push", "cfg-demo", other, "--yes"); code != 2 || !strings.Contains(stderr, `is for unit "cfg-other"`) {
		t.Errorf("push of another unit's file: exit %d: %s", code, stderr)
	}
	bad := edit(t, file, "interval: 5s", "interval: 0s")
	if _, stderr, code := ctl(t, b, "config", "push", "cfg-demo", bad, "--yes"); code != 2 || !strings.Contains(stderr, "telemetry.power.interval: 0s is outside 1s-1d") {
		t.Errorf("push of an invalid file: exit %d: %s", code, stderr)
	}
}

func TestConfigRejectionsAndRevert(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	path, _, unitLog := runUnit(t, b, "cfg-run", "")
	waitOnline(t, b, "cfg-run")
	c := dialControl(t, b)
	push := func(d wire.ConfigDesired) {
		t.Helper()
		if err := c.PushConfig(context.Background(), "cfg-run", d); err != nil {
			t.Fatal(err)
		}
	}

	// Invalid: every problem comes back with its field.
	push(wire.ConfigDesired{Version: 1, BaseVersion: 0, RequestedBy: "e2e", Config: json.RawMessage(`{"telemetry":{"powr":{"interval":"5m"}},"camera":{"fps":99}}`)})
	r := reportedWhere(t, c, "cfg-run", 15*time.Second, "version 1 handled", func(r wire.ConfigReported) bool { return r.DesiredVersion == 1 })
	errs := strings.Join(r.Errors, "\n")
	if r.Result != wire.ConfigRejected || r.Version != 0 || !strings.Contains(errs, "telemetry.powr: unknown key") || !strings.Contains(errs, "camera.fps:") {
		t.Fatalf("invalid change: %+v", r)
	}

	// Valid, as a merge patch.
	push(wire.ConfigDesired{Version: 2, BaseVersion: 0, RequestedBy: "e2e", Config: json.RawMessage(`{"telemetry":{"system":{"interval":"30s"}}}`)})
	r = reportedWhere(t, c, "cfg-run", 15*time.Second, "version 2 applied", func(r wire.ConfigReported) bool { return r.DesiredVersion == 2 })
	if r.Result != wire.ConfigApplied || r.Version != 2 {
		t.Fatalf("valid change: %+v", r)
	}
	if f, err := config.Load(path); err != nil || f.Telemetry.System.Interval.D() != 30*time.Second {
		t.Fatalf("the file after the change: %v, %v", f.Telemetry.System.Interval, err)
	}

	// Stale: made on version 0 while the unit runs 2.
	push(wire.ConfigDesired{Version: 3, BaseVersion: 0, RequestedBy: "operator 7", Config: json.RawMessage(`{"telemetry":{"system":{"interval":"1m"}}}`)})
	r = reportedWhere(t, c, "cfg-run", 15*time.Second, "version 3 handled", func(r wire.ConfigReported) bool { return r.DesiredVersion == 3 })
	if r.Result != wire.ConfigRejected || r.Version != 2 || !strings.Contains(strings.Join(r.Errors, ""), "base_version: this change was made on version 0, but the unit runs version 2") {
		t.Fatalf("stale change: %+v", r)
	}

	// The file cannot be replaced (a directory is in its way): nothing
	// changes, and the operator is told why.
	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(path, "in-the-way"), 0o750); err != nil {
		t.Fatal(err)
	}
	push(wire.ConfigDesired{Version: 4, BaseVersion: 2, Config: json.RawMessage(`{"telemetry":{"system":{"interval":"2m"}}}`)})
	r = reportedWhere(t, c, "cfg-run", 15*time.Second, "version 4 handled", func(r wire.ConfigReported) bool { return r.DesiredVersion == 4 })
	if r.Result != wire.ConfigRejected || r.Version != 2 || !strings.Contains(strings.Join(r.Errors, ""), "could not store the configuration, so nothing was changed") {
		t.Fatalf("unwritable file: %+v", r)
	}
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".moved", path); err != nil {
		t.Fatal(err)
	}

	// A new password (the broker takes any): it never leaves the unit,
	// nor reaches its log.
	push(wire.ConfigDesired{Version: 5, BaseVersion: 2, RequestedBy: "e2e", Config: json.RawMessage(`{"uplink":{"username":"cfg-run","password":"s3cret-pw"}}`)})
	r = reportedWhere(t, c, "cfg-run", 20*time.Second, "version 5 confirmed", func(r wire.ConfigReported) bool { return r.DesiredVersion == 5 && r.ConfirmBy == nil })
	raw, _ := json.Marshal(r)
	if r.Result != wire.ConfigApplied || r.Version != 5 || strings.Contains(string(raw), "s3cret") || !strings.Contains(string(raw), `"password":"[redacted]"`) {
		t.Fatalf("password change: %s", raw)
	}
	if out, _, _ := ctl(t, b, "config", "history", "cfg-run", "--json"); strings.Contains(out, "s3cret") || !strings.Contains(out, "uplink.password: set to [redacted]") {
		t.Fatalf("history shows the secret, or not its change:\n%s", out)
	}

	// A broker that does not answer: the unit reverts by itself within
	// its confirm window (8 s) and says why, through outpostctl.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "tcp://" + l.Addr().String()
	l.Close()
	file, _ := getConfig(t, b, "cfg-run")
	moved := edit(t, file, "broker: "+b.URL(), "broker: "+dead)
	start := time.Now()
	out, stderr, code := ctl(t, b, "config", "push", "cfg-run", moved, "--yes", "--wait", "40s")
	took := time.Since(start)
	t.Logf("push of a dead broker (%s):\n%s%s", took.Round(time.Millisecond), out, stderr)
	if code != 6 || !strings.Contains(out, "uplink.broker: "+b.URL()+" → "+dead) || !strings.Contains(out, "cfg-run reverted version 6; it runs version 5") ||
		!strings.Contains(out, "could not reach the control room with it within 8s") {
		t.Fatalf("dead broker: exit %d", code)
	}
	if took > 30*time.Second {
		t.Errorf("the revert took %s; the window is 8 s", took)
	}
	if f, err := config.Load(path); err != nil || f.Uplink.Broker != b.URL() {
		t.Fatalf("the file after the revert: broker %q, %v", f.Uplink.Broker, err)
	}
	out, _, _ = ctl(t, b, "config", "history", "cfg-run")
	if !strings.Contains(out, "*    5") || !strings.Contains(out, "reverted") {
		t.Errorf("history after the revert:\n%s", out)
	}
	// The retained change that failed is not taken again on reconnection.
	waitOnline(t, b, "cfg-run")
	if r, _ := c.Reported(context.Background(), "cfg-run"); r.Version != 5 || r.Result != wire.ConfigReverted {
		t.Errorf("after reconnecting: %+v", r)
	}
	if strings.Contains(unitLog.String(), "s3cret") {
		t.Errorf("the password is in the unit's log")
	}
}

// TestConfigKilledDuringApply kills the agent (SIGKILL) at random moments
// while it applies changes: each time, the file on disk is the old
// configuration or the new one, and the restarted unit reports what the
// file says.
func TestConfigKilledDuringApply(t *testing.T) {
	t.Parallel()
	b := testbroker.Start(t, testbroker.Options{})
	path, cmd, _ := runUnit(t, b, "cfg-kill", "")
	waitOnline(t, b, "cfg-kill")
	c := dialControl(t, b)
	intervals := []string{"2m", "3m"}
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 6 {
		r, err := c.Reported(context.Background(), "cfg-kill")
		if err != nil {
			t.Fatal(err)
		}
		want := intervals[i%2]
		// A change that restarts the components (recording) and one
		// that does not (telemetry), alternately.
		patch := fmt.Sprintf(`{"telemetry":{"system":{"interval":%q}},"recording":{"sync_interval":"%dms"}}`, want, 500+i)
		v := max(r.Version, r.DesiredVersion) + 1
		if err := c.PushConfig(context.Background(), "cfg-kill", wire.ConfigDesired{Version: v, BaseVersion: r.Version, Config: json.RawMessage(patch)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rnd.IntN(40)) * time.Millisecond) // the moment of the kill, not a wait for a result
		cmd.Process.Kill()
		cmd.Wait()
		f, err := config.Load(path)
		if err != nil {
			t.Fatalf("kill %d: the config file does not load: %v", i, err)
		}
		old := reportedInterval(t, r)
		if got := f.Telemetry.System.Interval.String(); got != want && got != old {
			t.Fatalf("kill %d: system interval %s, neither old %s nor new %s", i, got, old, want)
		}
		// Restarted, the unit takes the change if it had not yet, and
		// reports what its file says.
		cmd, _ = startRun(t, path)
		rep := reportedWhere(t, c, "cfg-kill", 20*time.Second, "a report after the restart", func(x wire.ConfigReported) bool {
			return x.TS.After(r.TS) && x.DesiredVersion >= v && x.ConfirmBy == nil
		})
		f, err = config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		got := f.Telemetry.System.Interval.String()
		if gotRep := reportedInterval(t, rep); gotRep != got {
			t.Fatalf("kill %d: the unit reports %s, its file says %s", i, gotRep, got)
		}
		t.Logf("kill %d: file and report agree on %s (version %d, %s)", i, got, rep.Version, rep.Result)
	}
}

func reportedInterval(t *testing.T, r wire.ConfigReported) string {
	t.Helper()
	var m struct {
		Telemetry struct {
			System struct {
				Interval string `json:"interval"`
			} `json:"system"`
		} `json:"telemetry"`
	}
	if err := json.Unmarshal(r.Config, &m); err != nil {
		t.Fatal(err)
	}
	return m.Telemetry.System.Interval
}
