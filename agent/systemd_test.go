package agent

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
)

// notifySocket stands in for systemd: a unixgram socket in a temporary
// directory that collects the agent's notifications.
type notifySocket struct {
	path string
	conn *net.UnixConn
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifySocket{path: path, conn: conn}
}

// next waits for one datagram and returns its assignments. The deadline
// only guards against a hang.
func (n *notifySocket) next(t *testing.T) []string {
	t.Helper()
	buf := make([]byte, 4096)
	n.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, err := n.conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return strings.Split(string(buf[:k]), "\n")
}

// pending returns the datagrams already queued, without waiting: a unix
// datagram is in the receiver's queue when the sender's write returns.
func (n *notifySocket) pending(t *testing.T) [][]string {
	t.Helper()
	rc, err := n.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	buf := make([]byte, 4096)
	for {
		var k int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			k, _, rerr = syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if errors.Is(rerr, syscall.EAGAIN) {
			return out
		}
		if rerr != nil {
			t.Fatal(rerr)
		}
		out = append(out, strings.Split(string(buf[:k]), "\n"))
	}
}

// fakeHealth is the supervisor's Statuses, set by the test.
type fakeHealth struct {
	mu  sync.Mutex
	sts []Status
}

func (f *fakeHealth) Statuses() []Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sts)
}

func (f *fakeHealth) set(name string, st State, since time.Time, restarts int, lastErr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.sts {
		if f.sts[i].Name == name {
			f.sts[i] = Status{Name: name, State: st, Since: since, Restarts: restarts, LastError: lastErr}
			return
		}
	}
	f.sts = append(f.sts, Status{Name: name, State: st, Since: since, Restarts: restarts, LastError: lastErr})
}

func systemdEnv(socket string, watchdog time.Duration) func(string) string {
	return func(k string) string {
		switch k {
		case "NOTIFY_SOCKET":
			return socket
		case "WATCHDOG_USEC":
			if watchdog > 0 {
				return strconv.FormatInt(watchdog.Microseconds(), 10)
			}
		}
		return ""
	}
}

func sdHas(assignments []string, a string) bool { return slices.Contains(assignments, a) }

func sdStatusOf(assignments []string) string {
	for _, a := range assignments {
		if s, ok := strings.CutPrefix(a, "STATUS="); ok {
			return s
		}
	}
	return ""
}

var sdT0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// TestSystemdRun runs the notifier as the agent does, on a fake clock:
// READY=1 with the first status and ping, a ping every WATCHDOG_USEC/2,
// STOPPING=1 when the context ends.
func TestSystemdRun(t *testing.T) {
	sock := newNotifySocket(t)
	clk := clock.NewFake(sdT0)
	h := &fakeHealth{}
	h.set("recorder", StateRunning, sdT0, 0, "")
	h.set("uplink", StateRunning, sdT0, 0, "")
	s, err := NewSystemd(systemdEnv(sock.path, 30*time.Second), h.Statuses, quietLog(), SystemdOptions{Clock: clk})
	if err != nil || s == nil {
		t.Fatalf("NewSystemd: %v, %v", s, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()

	first := sock.next(t)
	if !sdHas(first, "READY=1") || !sdHas(first, "WATCHDOG=1") || sdStatusOf(first) != "2/2 components running" {
		t.Fatalf("first notification %q: want READY=1, WATCHDOG=1 and STATUS=2/2 components running", first)
	}
	if clk.Waiters() != 1 { // the ticker is made before the first notification
		t.Fatalf("%d timers pending, want the notifier's ticker", clk.Waiters())
	}
	// Ticks every second; nothing is due until half the watchdog interval.
	for i := 1; i < 15; i++ {
		clk.Advance(time.Second)
	}
	clk.Advance(time.Second)
	if got := sock.next(t); !slices.Equal(got, []string{"WATCHDOG=1"}) {
		t.Fatalf("after 15 s: %q, want only WATCHDOG=1", got)
	}
	clk.Advance(15 * time.Second)
	if got := sock.next(t); !slices.Equal(got, []string{"WATCHDOG=1"}) {
		t.Fatalf("after 30 s: %q, want only WATCHDOG=1", got)
	}

	cancel()
	<-done
	if got := sock.next(t); !sdHas(got, "STOPPING=1") {
		t.Fatalf("on shutdown: %q, want STOPPING=1", got)
	}
}

// TestSystemdWatchdogOnlyWhileHealthy drives the notifier step by step:
// a crash-looping component keeps the pings going for FailingFor, then
// stops them; they resume once it has run for Recovered.
func TestSystemdWatchdogOnlyWhileHealthy(t *testing.T) {
	sock := newNotifySocket(t)
	h := &fakeHealth{}
	h.set("recorder", StateRunning, sdT0.Add(-time.Hour), 0, "")
	h.set("camera", StateRunning, sdT0.Add(-time.Hour), 0, "")
	s, err := NewSystemd(systemdEnv(sock.path, 30*time.Second), h.Statuses, quietLog(),
		SystemdOptions{FailingFor: 10 * time.Minute, Recovered: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s.start = sdT0
	step := func(at time.Duration) [][]string {
		t.Helper()
		s.step(sdT0.Add(at))
		return sock.pending(t)
	}
	pinged := func(got [][]string) bool {
		for _, d := range got {
			if sdHas(d, "WATCHDOG=1") {
				return true
			}
		}
		return false
	}

	if got := step(0); len(got) != 1 || !sdHas(got[0], "READY=1") || !sdHas(got[0], "WATCHDOG=1") {
		t.Fatalf("at start: %q, want READY=1 and WATCHDOG=1 in one datagram", got)
	}

	// The camera fails at 10 s and crash-loops: it runs for a moment
	// after each backoff, then fails again.
	restarts := 0
	failedAt := 10 * time.Second
	at := 15 * time.Second
	for ; at < failedAt+10*time.Minute; at += 15 * time.Second {
		if (at/(15*time.Second))%2 == 1 {
			restarts++
			h.set("camera", StateRestarting, sdT0.Add(at-time.Second), restarts, "no frame for 5s: is the camera plugged in?")
		} else {
			h.set("camera", StateRunning, sdT0.Add(at-2*time.Second), restarts, "no frame for 5s: is the camera plugged in?")
		}
		if got := step(at); !pinged(got) {
			t.Fatalf("at %s, camera failing for less than 10m: %q, want WATCHDOG=1", at, got)
		}
	}
	// Failing for 10 minutes now (first seen failing at 15 s).
	got := step(at)
	if pinged(got) {
		t.Fatalf("at %s, camera failing for 10m: %q, want no WATCHDOG=1", at, got)
	}
	if len(got) != 1 || !strings.HasPrefix(sdStatusOf(got[0]), "unhealthy, watchdog pings stopped (camera failing for over 10m0s)") {
		t.Fatalf("at %s: %q, want a STATUS saying the agent is unhealthy", at, got)
	}

	// The camera comes back for good: still failing until it has run
	// for a minute.
	back := at + 5*time.Second
	h.set("camera", StateRunning, sdT0.Add(back), restarts, "")
	for at += 15 * time.Second; at < back+time.Minute; at += 15 * time.Second {
		if got := step(at); pinged(got) {
			t.Fatalf("at %s, camera running again for %s only: %q, want no WATCHDOG=1", at, at-back, got)
		}
	}
	got = step(at)
	if len(got) != 1 || !sdHas(got[0], "WATCHDOG=1") || sdStatusOf(got[0]) != "2/2 components running" {
		t.Fatalf("at %s, camera running for %s: %q, want WATCHDOG=1 and STATUS=2/2 components running", at, at-back, got)
	}
	if got := step(at + time.Second); len(got) != 0 {
		t.Fatalf("one second later: %q, want nothing (no change, ping not due)", got)
	}
}

// TestSystemdReadyTimeout: a component that never runs (a camera missing
// at boot) delays READY=1 by at most ReadyTimeout.
func TestSystemdReadyTimeout(t *testing.T) {
	sock := newNotifySocket(t)
	h := &fakeHealth{}
	h.set("recorder", StateRunning, sdT0, 0, "")
	h.set("camera", StateStarting, sdT0, 0, "")
	s, err := NewSystemd(systemdEnv(sock.path, 0), h.Statuses, quietLog(), SystemdOptions{ReadyTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.start = sdT0
	s.step(sdT0)
	got := sock.pending(t)
	if len(got) != 1 || sdHas(got[0], "READY=1") || sdHas(got[0], "WATCHDOG=1") || sdStatusOf(got[0]) != "1/2 components running; camera starting" {
		t.Fatalf("at start: %q, want only STATUS=1/2 components running; camera starting", got)
	}
	s.step(sdT0.Add(29 * time.Second))
	if got := sock.pending(t); len(got) != 0 {
		t.Fatalf("at 29 s: %q, want nothing", got)
	}
	s.step(sdT0.Add(30 * time.Second))
	if got := sock.pending(t); len(got) != 1 || !slices.Equal(got[0], []string{"READY=1"}) {
		t.Fatalf("at 30 s: %q, want READY=1 (no watchdog is set, so no ping)", got)
	}
}

// TestSystemdEnvironment: no notifier outside systemd, no watchdog when
// WATCHDOG_PID names another process, and NotifySystemd's stop sends
// STOPPING=1.
func TestSystemdEnvironment(t *testing.T) {
	h := &fakeHealth{}
	if s, err := NewSystemd(func(string) string { return "" }, h.Statuses, quietLog(), SystemdOptions{}); s != nil || err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v, %v; want nil, nil", s, err)
	}
	if s, err := NewSystemd(nil, h.Statuses, quietLog(), SystemdOptions{}); s != nil || err != nil {
		t.Errorf("without an environment: %v, %v; want nil, nil", s, err)
	}
	if _, err := NewSystemd(systemdEnv("relative/path", 0), h.Statuses, quietLog(), SystemdOptions{}); err == nil {
		t.Error("a relative NOTIFY_SOCKET was accepted")
	}

	sock := newNotifySocket(t)
	other := func(k string) string {
		if k == "WATCHDOG_PID" {
			return "1"
		}
		return systemdEnv(sock.path, 30*time.Second)(k)
	}
	s, err := NewSystemd(other, h.Statuses, quietLog(), SystemdOptions{})
	if err != nil || s == nil || s.watchdog != 0 {
		t.Fatalf("WATCHDOG_PID of another process: %+v, %v; want a notifier without watchdog", s, err)
	}

	// No unit yet: not ready.
	s.start = sdT0
	s.step(sdT0)
	if got := sock.pending(t); len(got) != 1 || !slices.Equal(got[0], []string{"STATUS=starting"}) {
		t.Fatalf("before the unit is built: %q, want only STATUS=starting", got)
	}

	h.set("recorder", StateRunning, sdT0, 0, "")
	stop := NotifySystemd(context.Background(), systemdEnv(sock.path, 0), h.Statuses, quietLog())
	if got := sock.next(t); !sdHas(got, "READY=1") || sdStatusOf(got) != "1/1 components running" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	stop()
	if got := sock.next(t); !sdHas(got, "STOPPING=1") {
		t.Fatalf("after stop: %q, want STOPPING=1", got)
	}
	NotifySystemd(context.Background(), func(string) string { return "" }, h.Statuses, quietLog())() // a no-op
}
