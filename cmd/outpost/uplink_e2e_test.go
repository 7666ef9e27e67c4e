package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/testbroker"
)

// These tests cover the uplink through the real binary: every documented
// topic, commands answered from mosquitto_pub, and what is queued while
// the broker is away (stopped, or the agent killed meanwhile).

// fastConfig is a unit whose telemetry samples every second and publishes
// at least every two, so that an outage of a few seconds queues some.
func fastConfig(t *testing.T, unit string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "outpost.yaml")
	streams := ""
	for _, s := range []string{"power", "signal", "system", "storage", "link"} {
		streams += fmt.Sprintf("  %s:\n    interval: 1s\n    max_interval: 2s\n", s)
	}
	cfg := fmt.Sprintf("unit:\n  id: %s\n  site: e2e\nuplink:\n  keepalive: 10s\ntelemetry:\n%s", unit, streams)
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// subscribeWith runs mosquitto_sub with extra arguments and streams what
// it prints.
func subscribeWith(t *testing.T, b *testbroker.Broker, args ...string) <-chan message {
	t.Helper()
	bin, err := exec.LookPath("mosquitto_sub")
	if err != nil {
		t.Fatal("mosquitto_sub is not installed: run 'make test' (installs mosquitto-clients as root)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"-h", b.Host, "-p", fmt.Sprint(b.Port), "-v"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan message, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			topic, payload, _ := strings.Cut(sc.Text(), " ")
			ch <- message{topic, payload}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = cmd.Wait()
	})
	return ch
}

func publish(t *testing.T, b *testbroker.Broker, topic, payload string, extra ...string) {
	t.Helper()
	args := append([]string{"-h", b.Host, "-p", fmt.Sprint(b.Port), "-q", "1", "-t", topic, "-m", payload}, extra...)
	if out, err := exec.Command("mosquitto_pub", args...).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub %s: %v: %s", topic, err, out)
	}
}

// TestEveryTopicAndCommands: in a demo against mosquitto, a subscriber to
// outpost/+/# sees every topic the unit publishes; commands published with
// mosquitto_pub are answered, malformed ones with an error naming the
// problem, and the agent keeps running.
func TestEveryTopicAndCommands(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	msgs := subscribe(t, b, "outpost/+/#")
	cmd, out := startDemo(t, "--broker", b.URL(), "--unit-id", "u4")

	seen := map[string]map[string]any{}
	want := []string{"status", "config/reported", "events", "health",
		"telemetry/power", "telemetry/signal", "telemetry/system", "telemetry/storage", "telemetry/link"}
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	for len(seen) < len(want) {
		select {
		case m := <-msgs:
			rest, ok := strings.CutPrefix(m.topic, "outpost/u4/")
			if !ok {
				continue
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(m.payload), &v); err != nil || v["v"] != float64(1) || v["ts"] == nil {
				t.Fatalf("%s: not a v1 JSON payload with ts: %s", m.topic, m.payload)
			}
			seen[rest] = v
		case <-timer.C:
			t.Fatalf("within 20s saw only %v; output:\n%s", keys(seen), out)
		}
	}
	if seen["status"]["config_version"] != seen["config/reported"]["hash"] {
		t.Errorf("status config_version %v, config/reported hash %v", seen["status"]["config_version"], seen["config/reported"]["hash"])
	}
	if _, ok := seen["telemetry/storage"]["footage_bytes"]; !ok {
		t.Error("storage telemetry lacks footage_bytes (null until the store reports)")
	}

	for _, tc := range []struct {
		name, payload, replyID, code, msg string
	}{
		{"ping", `{"v":1,"id":"e2e-ok"}`, "e2e-ok", "", ""},
		{"ping", `{"v":1,"id":"e2e-bad",`, "e2e-bad", "bad_request", "malformed JSON"},
		{"ping", `not json`, "_invalid", "bad_request", "malformed JSON"},
		{"ping", `{"v":1,"id":"e2e-type","args":{"x":1}}`, "e2e-type", "bad_request", `unknown field "x"`},
		{"reboot", `{"v":1,"id":"e2e-unknown"}`, "e2e-unknown", "unknown_command", "reboot"},
		{"ping", `{"v":1,"id":"e2e-big","pad":"` + strings.Repeat("x", 20000) + `"}`, "e2e-big", "too_large", "at most"},
	} {
		publish(t, b, "outpost/u4/cmd/"+tc.name, tc.payload)
		r := expect(t, msgs, 10*time.Second, "outpost/u4/reply/"+tc.replyID, nil)
		if tc.code == "" {
			if r["ok"] != true {
				t.Errorf("%s: %v", tc.replyID, r)
			}
			continue
		}
		e, _ := r["error"].(map[string]any)
		if r["ok"] != false || e["code"] != tc.code || !strings.Contains(fmt.Sprint(e["message"]), tc.msg) {
			t.Errorf("%s: reply %v, want %s containing %q", tc.replyID, r, tc.code, tc.msg)
		}
	}
	if cmd.ProcessState != nil {
		t.Fatalf("the agent exited:\n%s", out)
	}
}

func keys(m map[string]map[string]any) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	return k
}

// TestBrokerOutageDeliversWhatWasQueued: mosquitto is stopped for a few
// seconds and started again; the events and telemetry the unit produced
// meanwhile arrive afterwards. The control room's subscriber keeps a
// persistent session on a broker that saves it, as a control room's
// broker does.
func TestBrokerOutageDeliversWhatWasQueued(t *testing.T) {
	store := t.TempDir()
	os.Chmod(store, 0o777) // mosquitto saves as its own user
	os.Chmod(filepath.Dir(store), 0o755)
	b := testbroker.Start(t, testbroker.Options{Extra: []string{"persistence true", "persistence_location " + store + "/"}})
	msgs := subscribeWith(t, b, "-t", "outpost/u5/#", "-q", "1", "-c", "-i", "e2e-control-room")
	_, out := startDemo(t, "--broker", b.URL(), "--config", fastConfig(t, "u5"))
	expect(t, msgs, 15*time.Second, "outpost/u5/telemetry/power", nil)

	b.Stop()
	stopped := time.Now()
	outage := time.NewTimer(5 * time.Second)
	<-outage.C
	b.Restart()
	restarted := time.Now()

	// Telemetry sampled while the broker was down, and the link_lost event.
	during := func(v map[string]any) bool {
		ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(v["ts"]))
		return err == nil && ts.After(stopped.Add(time.Second)) && ts.Before(restarted.Add(-time.Second))
	}
	expectAll(t, msgs, 30*time.Second, out, []want{
		{"outpost/u5/telemetry/power", during},
		{"outpost/u5/telemetry/signal", during},
		{"outpost/u5/events", func(v map[string]any) bool { return v["kind"] == "link_lost" }},
		{"outpost/u5/events", func(v map[string]any) bool { return v["kind"] == "link_restored" }},
	})
}

// want is one message expectAll waits for.
type want struct {
	topic string
	ok    func(map[string]any) bool
}

// expectAll reads messages until each want has been matched by one, in
// any order, or fails after d.
func expectAll(t *testing.T, ch <-chan message, d time.Duration, out *strings.Builder, ws []want) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for len(ws) > 0 {
		select {
		case m, open := <-ch:
			if !open {
				t.Fatal("mosquitto_sub ended")
			}
			var v map[string]any
			if json.Unmarshal([]byte(m.payload), &v) != nil {
				continue
			}
			for i, w := range ws {
				if w.topic == m.topic && w.ok(v) {
					ws = append(ws[:i], ws[i+1:]...)
					break
				}
			}
		case <-timer.C:
			var left []string
			for _, w := range ws {
				left = append(left, w.topic)
			}
			t.Fatalf("within %s, nothing matched on %v; output:\n%s", d, left, out)
		}
	}
}

// TestAgentKilledWhileOffline: the agent runs with the broker down, is
// killed (SIGKILL), and started again once the broker is back: what the
// first process had queued arrives.
func TestAgentKilledWhileOffline(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	b.Stop()
	data := t.TempDir()
	cfg := fastConfig(t, "u6")
	cmd, out := startAgent(t, data, b.URL(), cfg)
	// Wait until the first process has queued samples on disk.
	waitFor(t, 15*time.Second, "the outbox to fill", func() bool { return outboxBytes(data) > 2000 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, 5*time.Second)
	killed := time.Now()
	if !strings.Contains(out.String(), "cannot reach the broker") {
		t.Errorf("the agent did not say the broker was unreachable:\n%s", out)
	}

	b.Restart()
	// A retained marker tells when the subscriber is subscribed.
	publish(t, b, "outpost/u6/marker", `{"v":1,"ts":"2026-01-01T00:00:00Z"}`, "-r")
	msgs := subscribe(t, b, "outpost/u6/#")
	expect(t, msgs, 10*time.Second, "outpost/u6/marker", nil)
	startAgent(t, data, b.URL(), cfg)
	before := func(v map[string]any) bool {
		ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(v["ts"]))
		return err == nil && ts.Before(killed)
	}
	expectAll(t, msgs, 20*time.Second, out, []want{
		{"outpost/u6/events", func(v map[string]any) bool { return v["kind"] == "agent_started" && before(v) }},
		{"outpost/u6/telemetry/power", before},
	})
}

func startAgent(t *testing.T, data, broker, cfg string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	return startOutpost(t, "demo", "--data", data, "--broker", broker, "--config", cfg)
}

// outboxBytes is the size of the unit's outbox segments.
func outboxBytes(data string) int64 {
	m, _ := filepath.Glob(filepath.Join(data, "uplink", "outbox", "*.obx"))
	var n int64
	for _, f := range m {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
