package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/testbroker"
)

// These tests run the real outpost binary against a real mosquitto and read
// what it publishes with mosquitto_sub, a third-party client.

var outpostBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "outpost-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	outpostBin = filepath.Join(dir, "outpost")
	build := exec.Command("go", "build", "-o", outpostBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building outpost:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type message struct{ topic, payload string }

// subscribe runs mosquitto_sub on filter and streams what it prints.
func subscribe(t *testing.T, b *testbroker.Broker, filter string) <-chan message {
	t.Helper()
	return subscribeWith(t, b, "-t", filter, "-q", "1")
}

// expect reads messages until one on topic satisfies ok, or fails after d.
func expect(t *testing.T, ch <-chan message, d time.Duration, topic string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case m, open := <-ch:
			if !open {
				t.Fatalf("mosquitto_sub ended before a message on %s", topic)
			}
			if m.topic != topic {
				continue
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(m.payload), &v); err != nil {
				t.Fatalf("%s: payload is not JSON: %v: %s", topic, err, m.payload)
			}
			if v["v"] != float64(1) || v["ts"] == nil {
				t.Fatalf("%s: payload lacks v or ts: %s", topic, m.payload)
			}
			if ok == nil || ok(v) {
				return v
			}
		case <-timer.C:
			t.Fatalf("no matching message on %s within %s", topic, d)
		}
	}
}

func startDemo(t *testing.T, args ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	return startOutpost(t, append([]string{"demo", "--data", t.TempDir()}, args...)...)
}

// startOutpost runs the outpost binary with args until it exits or the
// test ends, collecting what it prints.
func startOutpost(t *testing.T, args ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(outpostBin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, &out
}

func waitExit(t *testing.T, cmd *exec.Cmd, d time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode(), time.Since(start)
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("outpost did not exit within %s", d)
		return -1, 0
	}
}

// TestDemoAgainstMosquitto: the demo publishes a retained status and
// telemetry to an external broker; SIGKILL makes the broker publish the
// last will (offline, lost).
func TestDemoAgainstMosquitto(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	msgs := subscribe(t, b, "outpost/#")
	// The agent in this process, not under the update launcher: killing
	// the launcher stops its agent cleanly (SIGTERM), which is not what
	// this test is about.
	cmd, out := startDemo(t, "--broker", b.URL(), "--unit-id", "u1", "--launcher=false")

	st := expect(t, msgs, 10*time.Second, "outpost/u1/status", func(v map[string]any) bool { return v["state"] == "online" })
	if st["version"] == nil || st["boot"] == nil {
		t.Errorf("online status lacks version or boot: %v", st)
	}
	pw := expect(t, msgs, 10*time.Second, "outpost/u1/telemetry/power", nil)
	if _, ok := pw["battery_v"].(float64); !ok {
		t.Errorf("power telemetry lacks battery_v: %v", pw)
	}
	sig := expect(t, msgs, 10*time.Second, "outpost/u1/telemetry/signal", nil)
	if _, ok := sig["quality"].(string); !ok {
		t.Errorf("signal telemetry lacks quality: %v", sig)
	}
	expect(t, msgs, 10*time.Second, "outpost/u1/health", nil)

	// A late subscriber sees the retained status at once.
	late := subscribe(t, b, "outpost/u1/status")
	expect(t, late, 5*time.Second, "outpost/u1/status", func(v map[string]any) bool { return v["state"] == "online" })

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, 5*time.Second)
	// mosquitto notices the dead connection at once (socket closed) and
	// publishes the will.
	expect(t, msgs, 15*time.Second, "outpost/u1/status", func(v map[string]any) bool {
		return v["state"] == "offline" && v["reason"] == "lost"
	})
	_ = out
}

func TestDemoSIGTERMStopsCleanly(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	msgs := subscribe(t, b, "outpost/u2/status")
	cmd, out := startDemo(t, "--broker", b.URL(), "--unit-id", "u2")
	expect(t, msgs, 10*time.Second, "outpost/u2/status", func(v map[string]any) bool { return v["state"] == "online" })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, took := waitExit(t, cmd, 10*time.Second)
	if code != 0 || took > 5*time.Second {
		t.Fatalf("exit code %d after %s (want 0 within 5s); output:\n%s", code, took, out)
	}
	expect(t, msgs, 5*time.Second, "outpost/u2/status", func(v map[string]any) bool {
		return v["state"] == "offline" && v["reason"] == "shutdown"
	})
}

func TestDemoEmbeddedBrokerAndDuration(t *testing.T) {
	port := testbroker.FreePort(t)
	cmd, out := startDemo(t, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--duration", "3s")
	// The embedded broker serves third-party clients too.
	b := &testbroker.Broker{Host: "127.0.0.1", Port: port}
	waitPort(t, b.Addr())
	msgs := subscribe(t, b, "outpost/#")
	expect(t, msgs, 10*time.Second, "outpost/demo-unit/status", func(v map[string]any) bool { return v["state"] == "online" })
	code, _ := waitExit(t, cmd, 15*time.Second)
	if code != 0 {
		t.Fatalf("exit code %d; output:\n%s", code, out)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("mosquitto_sub -h 127.0.0.1 -p %d", port)) {
		t.Errorf("banner does not show how to subscribe:\n%s", out)
	}
}

func TestDemoRefusesBusyListenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmd, out := startDemo(t, "--listen", l.Addr().String(), "--duration", "5s")
	code, _ := waitExit(t, cmd, 10*time.Second)
	if code == 0 || !strings.Contains(out.String(), "already in use") || !strings.Contains(out.String(), l.Addr().String()) {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}

func TestConfigCheck(t *testing.T) {
	ok := exec.Command(outpostBin, "config", "check", "../../configs/outpost.example.yaml")
	if b, err := ok.CombinedOutput(); err != nil || !strings.Contains(string(b), "OK") {
		t.Fatalf("example config: %v: %s", err, b)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("unit:\n  id: x\ncamera:\n  fps: 90\n"), 0o644)
	cmd := exec.Command(outpostBin, "config", "check", bad)
	b, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(b), "bad.yaml:4: camera.fps: 90 is outside 1-30") {
		t.Fatalf("exit %d: %s", cmd.ProcessState.ExitCode(), b)
	}
}

func waitPort(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never accepted connections", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
