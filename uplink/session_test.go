package uplink

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// advanceUntil moves the fake clock on by step until cond holds, giving
// the session's goroutines a moment between steps; it fails after 5 s of
// real time.
func advanceUntil(t testing.TB, clk *clock.Fake, step time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (fake clock at %s)", what, clk.Now().Format(time.RFC3339))
		}
		clk.Advance(step)
		time.Sleep(time.Millisecond)
	}
}

// goOffline makes the broker refuse connections and drops the current one.
func goOffline(t testing.TB, r *running) {
	t.Helper()
	r.b.setConnectErr(errors.New("connection refused"))
	r.b.drop(errors.New("EOF"))
	waitUntil(t, 5*time.Second, "session offline", func() bool { return !r.s.Connected() })
}

func goOnline(t testing.TB, r *running) {
	t.Helper()
	r.b.setConnectErr(nil)
	advanceUntil(t, r.clk, 500*time.Millisecond, "reconnection", r.s.Connected)
}

// TestOutboxDrainsInOrderWithinWindowAndRate queues messages while
// offline and checks how they go out when the link returns: alerts, then
// events, then telemetry, oldest first within each; never more than the
// window awaiting acknowledgement; never faster than the rate.
func TestOutboxDrainsInOrderWithinWindowAndRate(t *testing.T) {
	b := newFakeBroker()
	r := startSession(t, Options{Dir: t.TempDir(), DrainWindow: 3, DrainRate: 2000}, b)
	goOffline(t, r)
	ctx := context.Background()
	payload := strings.Repeat("p", 180) // with the topic, 200 bytes a message
	var want []string
	send := func(class Priority, n int) {
		for i := range n {
			topic := fmt.Sprintf("outpost/u1/q/%s-%02d", class, i)
			if err := r.s.Send(ctx, class, topic, []byte(payload)); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(PriorityTelemetry, 10)
	send(PriorityEvent, 5)
	send(PriorityAlert, 5)
	for _, c := range []string{"alert", "event", "telemetry"} {
		n := map[string]int{"alert": 5, "event": 5, "telemetry": 10}[c]
		for i := range n {
			want = append(want, fmt.Sprintf("outpost/u1/q/%s-%02d", c, i))
		}
	}
	if st := r.s.Stats().Outbox; st.Queued < 20 {
		t.Fatalf("outbox holds %d messages, want at least 20", st.Queued)
	}

	b.mu.Lock()
	b.hold = true
	b.mu.Unlock()
	// Drain what was published before (status) and count from here.
	for len(b.published) > 0 {
		<-b.published
	}
	goOnline(t, r)

	var got []string
	collect := func() {
		for {
			select {
			case m := <-b.published:
				if strings.HasPrefix(m.topic, "outpost/u1/q/") {
					got = append(got, m.topic)
				}
			default:
				return
			}
		}
	}
	// The window: three held, no more, whatever the time.
	waitUntil(t, 5*time.Second, "three publishes awaiting acknowledgement", func() bool { return b.held() >= 3 })
	time.Sleep(20 * time.Millisecond)
	if h := b.held(); h != 3 {
		t.Fatalf("%d publishes await acknowledgement, window is 3", h)
	}
	// The rate: 2000 bytes a second, 200 bytes a message, the bucket
	// starting with one second's worth. Acknowledge freely; move the fake
	// clock only when the drainer waits for the rate.
	start := r.clk.Now()
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < len(want) {
		if time.Now().After(deadline) {
			t.Fatalf("not drained: got %d of %d", len(got), len(want))
		}
		b.complete(3)
		time.Sleep(2 * time.Millisecond)
		collect()
		elapsed := r.clk.Now().Sub(start)
		if allowed := int((2000+2000*elapsed.Seconds())/200) + 1; len(got) > allowed {
			t.Fatalf("%d messages out after %s of fake time; the rate allows %d", len(got), elapsed, allowed)
		}
		if b.held() == 0 {
			r.clk.Advance(100 * time.Millisecond)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("order:\n got  %v\n want %v", got, want)
	}
	if elapsed := r.clk.Now().Sub(start); elapsed < time.Second {
		t.Errorf("20 messages of 200 bytes went out in %s at 2000 bytes/s", elapsed)
	}
	b.mu.Lock()
	b.hold = false
	b.mu.Unlock()
	b.complete(100)
	waitUntil(t, 5*time.Second, "outbox empty", func() bool { return r.s.Stats().Outbox.Queued == 0 })
}

// A message whose publish fails when the connection drops stays queued
// and goes out after the reconnection.
func TestInFlightMessageSurvivesDrop(t *testing.T) {
	b := newFakeBroker()
	r := startSession(t, Options{Dir: t.TempDir()}, b)
	b.mu.Lock()
	b.hold = true
	b.mu.Unlock()
	if err := r.s.Send(context.Background(), PriorityEvent, "outpost/u1/q/e", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	next(t, b.published, "outpost/u1/q/e", 5*time.Second)
	goOffline(t, r) // the token never completes
	b.mu.Lock()
	b.hold = false
	b.pending = nil
	b.mu.Unlock()
	goOnline(t, r)
	next(t, b.published, "outpost/u1/q/e", 5*time.Second)
	waitUntil(t, 5*time.Second, "outbox empty", func() bool { return r.s.Stats().Outbox.Queued == 0 })
}

func TestReconnectResubscribesOnlyForANewSession(t *testing.T) {
	b := newFakeBroker()
	r := startSession(t, Options{}, b)
	if err := r.s.Subscribe(context.Background(), "outpost/u1/xfer/+/ack", func(string, []byte) {}); err != nil {
		t.Fatal(err)
	}
	subs := func() int {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.subs)
	}
	if n := subs(); n != 2 {
		t.Fatalf("%d subscriptions, want 2", n)
	}
	// The broker kept the session: nothing to redo.
	b.mu.Lock()
	b.present = true
	b.mu.Unlock()
	goOffline(t, r)
	goOnline(t, r)
	if n := subs(); n != 2 {
		t.Fatalf("resubscribed although the broker kept the session: %d", n)
	}
	// A broker that lost the session gets every subscription again.
	b.mu.Lock()
	b.present = false
	b.mu.Unlock()
	goOffline(t, r)
	goOnline(t, r)
	if n := subs(); n != 4 {
		t.Fatalf("%d subscriptions after a lost session, want 4", n)
	}
	if st := r.s.Stats(); st.Reconnects != 2 {
		t.Errorf("reconnects %d, want 2", st.Reconnects)
	}
	// Messages reach the subscription's handler through wildcards.
	got := make(chan string, 1)
	r.s.Subscribe(context.Background(), "outpost/u1/xfer/#", func(topic string, _ []byte) { got <- topic })
	b.deliver(t, "outpost/u1/xfer/t1/ack", nil)
	select {
	case tp := <-got:
		if tp != "outpost/u1/xfer/t1/ack" {
			t.Fatal(tp)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler not called")
	}
}

func TestRefusedSubscriptionIsAnErrorAndNotKept(t *testing.T) {
	b := newFakeBroker()
	b.refuse["#"] = true
	r := startSession(t, Options{}, b)
	err := r.s.Subscribe(context.Background(), "#", func(string, []byte) {})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("subscribe #: %v", err)
	}
	if err := r.s.Subscribe(context.Background(), "a/#/b", func(string, []byte) {}); err == nil {
		t.Fatal("an invalid filter was accepted")
	}
	r.s.mu.Lock()
	_, kept := r.s.subs["#"]
	r.s.mu.Unlock()
	if kept {
		t.Fatal("a refused filter is kept for the next connection")
	}
}

// TestWatchdog: a client that hears nothing from the broker for three
// keep-alives is discarded and a new one connects; one that hears pings
// is left alone.
func TestWatchdog(t *testing.T) {
	b := newFakeBroker()
	r := startSession(t, Options{KeepAlive: 10 * time.Second}, b)
	// Pings answered every keep-alive: no trip over two minutes.
	for range 12 {
		r.clk.Advance(10 * time.Second)
		b.current().o.OnRead(2)
		time.Sleep(time.Millisecond)
	}
	if n := r.s.Stats().WatchdogTrips; n != 0 {
		t.Fatalf("watchdog tripped on a live link: %d", n)
	}
	// Silence (paho wedged, or a black-holed link paho does not notice).
	first := b.current()
	advanceUntil(t, r.clk, 2500*time.Millisecond, "the watchdog to trip", func() bool { return r.s.Stats().WatchdogTrips == 1 })
	silent := r.clk.Now()
	advanceUntil(t, r.clk, 500*time.Millisecond, "a new client", func() bool {
		c := b.current()
		return c != nil && c != first
	})
	first.mu.Lock()
	discarded := first.disconnected
	first.mu.Unlock()
	if !discarded {
		t.Fatal("the old client was not discarded")
	}
	_, _, clients := b.stats()
	if clients != 2 {
		t.Fatalf("%d clients built, want 2", clients)
	}
	if took := r.clk.Now().Sub(silent); took > 3*time.Second {
		t.Errorf("reconnected %s after the trip; the first backoff is 1 s ±20%%", took)
	}
}

// jumpClock is a fake clock whose wall time can be stepped, as NTP steps
// a board's clock, without running the timers through the years between.
type jumpClock struct {
	*clock.Fake
	offset atomic.Int64
}

func (j *jumpClock) Now() time.Time       { return j.Fake.Now().Add(time.Duration(j.offset.Load())) }
func (j *jumpClock) jump(d time.Duration) { j.offset.Add(int64(d)) }

// TestWaitsForTimeBeforeTLS: at 1970 certificates cannot be checked; the
// session queues, raises an alert and connects once the clock is set.
func TestWaitsForTimeBeforeTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, ca.certPEM, 0o600)
	jc := &jumpClock{Fake: clock.NewFake(time.Unix(0, 0))}
	b := newFakeBroker()
	s := NewSession(quiet(), Options{
		Broker: "ssl://fake:8883", Topics: wire.Topics{Prefix: "outpost", Unit: "u1"}, CAFile: caFile,
		Clock: jc, Dir: filepath.Join(dir, "state"), BuildTime: t0.Add(-30 * 24 * time.Hour),
	})
	s.factory = b.factory
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitUntil(t, 5*time.Second, "the alert to be queued", func() bool { return s.Stats().Outbox.Queued >= 1 })
	for range 20 {
		jc.Advance(5 * time.Second)
		time.Sleep(time.Millisecond)
	}
	if connects, _, _ := b.stats(); connects != 0 {
		t.Fatalf("connected %d times with the clock at 1970", connects)
	}
	// Telemetry taken meanwhile is kept.
	if err := s.Send(ctx, PriorityTelemetry, "outpost/u1/telemetry/power", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	jc.jump(t0.Sub(jc.Now()))
	advanceUntil(t, jc.Fake, time.Second, "connection once the time is known", s.Connected)
	m := next(t, b.published, "outpost/u1/events", 5*time.Second)
	var e wire.Event
	if err := json.Unmarshal(m.payload, &e); err != nil || e.Kind != wire.KindClockInvalid || e.Severity != wire.SeverityAlert {
		t.Fatalf("first event %s (%v)", m.payload, err)
	}
	next(t, b.published, "outpost/u1/telemetry/power", 5*time.Second)
}

func TestTimeFloor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock.json")
	build := t0.Add(-100 * 24 * time.Hour)
	f := newTimeFloor(path, build)
	if f.sane(build.Add(-time.Second)) || !f.sane(build) {
		t.Fatal("the build time is not the floor")
	}
	f.observe(time.Unix(0, 0)) // an insane time is not recorded
	f.observe(t0)
	if err := f.save(); err != nil {
		t.Fatal(err)
	}
	g := newTimeFloor(path, build)
	if err := g.load(); err != nil {
		t.Fatal(err)
	}
	if got, want := g.floor(), t0.Add(-floorSlack); !got.Equal(want) {
		t.Fatalf("floor after reload %s, want %s", got, want)
	}
	if g.sane(t0.Add(-25*time.Hour)) || !g.sane(t0.Add(-23*time.Hour)) {
		t.Fatal("slack around the last good time")
	}
	os.WriteFile(path, []byte("{"), 0o600)
	if err := newTimeFloor(path, build).load(); err == nil {
		t.Fatal("a damaged file was read")
	}
	if newTimeFloor("", time.Time{}).floor().Before(releaseFloor()) {
		t.Fatal("default floor below the release floor")
	}
}

// Without an outbox Send publishes live, and says so when it cannot.
func TestSendWithoutOutbox(t *testing.T) {
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	os.WriteFile(notADir, nil, 0o600)
	b := newFakeBroker()
	r := startSession(t, Options{Dir: notADir}, b)
	if err := r.s.Send(context.Background(), PriorityEvent, "outpost/u1/events", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	next(t, b.published, "outpost/u1/events", 5*time.Second)
	if l := r.s.Link(); l.OutboxError == "" {
		t.Error("the outbox failure is not reported in telemetry/link")
	}
	goOffline(t, r)
	err := r.s.Send(context.Background(), PriorityEvent, "outpost/u1/events", []byte(`{}`))
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "no outbox") {
		t.Fatalf("send offline without an outbox: %v", err)
	}
	if err := r.s.Send(context.Background(), "urgent", "outpost/u1/events", nil); err == nil {
		t.Fatal("unknown priority accepted")
	}
}

func TestSendBeforeRun(t *testing.T) {
	s := NewSession(quiet(), Options{})
	if err := s.Send(context.Background(), PriorityEvent, "t", nil); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("%v", err)
	}
	if err := s.Publish(context.Background(), "t", 1, false, nil); !errors.Is(err, ErrOffline) {
		t.Fatalf("%v", err)
	}
}

// The session publishes its status and config retained, and events when
// the link drops and returns.
func TestStatusConfigAndLinkEvents(t *testing.T) {
	b := newFakeBroker()
	var reported atomic.Int32
	r := startSession(t, Options{
		Dir:    t.TempDir(),
		Online: func() wire.Status { return wire.Status{Header: wire.NewHeader(t0), State: wire.Online, Version: "v9"} },
		ConfigReported: func() wire.ConfigReported {
			reported.Add(1)
			return wire.ConfigReported{Header: wire.NewHeader(t0), Hash: "abc", Result: wire.ConfigApplied, Config: json.RawMessage(`{}`)}
		},
	}, b)
	st := next(t, b.published, "outpost/u1/status", 5*time.Second)
	if !st.retained || !strings.Contains(string(st.payload), `"state":"online"`) {
		t.Fatalf("status %s retained=%v", st.payload, st.retained)
	}
	if cr := next(t, b.published, "outpost/u1/config/reported", 5*time.Second); !cr.retained {
		t.Fatal("config/reported not retained")
	}
	// The will is the offline status.
	c := b.current()
	if c.o.WillTopic != "outpost/u1/status" || !strings.Contains(string(c.o.Will), `"reason":"lost"`) {
		t.Fatalf("will %s %s", c.o.WillTopic, c.o.Will)
	}
	b.mu.Lock()
	b.present = true
	b.mu.Unlock()
	goOffline(t, r)
	goOnline(t, r)
	next(t, b.published, "outpost/u1/status", 5*time.Second)
	var kinds []string
	for len(kinds) < 2 {
		m := next(t, b.published, "outpost/u1/events", 5*time.Second)
		var e wire.Event
		if err := json.Unmarshal(m.payload, &e); err != nil || e.ID == "" {
			t.Fatalf("event %s: %v", m.payload, err)
		}
		kinds = append(kinds, e.Kind)
	}
	if kinds[0] != wire.KindLinkLost || kinds[1] != wire.KindLinkRestored {
		t.Fatalf("events %v", kinds)
	}
	// The broker kept the session and the config did not change: not
	// published again.
	none(t, b.published, "outpost/u1/config/reported", 20*time.Millisecond)
}

// testCA is a certificate authority made for a test.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Outpost test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// A full outbox drops the oldest telemetry, counts it, and says so once
// per outage with an outbox_full event.
func TestOutboxFullIsTold(t *testing.T) {
	b := newFakeBroker()
	r := startSession(t, Options{Dir: t.TempDir(), OutboxSize: 64 << 10}, b)
	goOffline(t, r)
	payload := []byte(strings.Repeat("t", 1000))
	for i := range 100 {
		if err := r.s.Send(context.Background(), PriorityTelemetry, fmt.Sprintf("outpost/u1/telemetry/t%d", i), payload); err != nil {
			t.Fatal(err)
		}
	}
	st := r.s.Stats().Outbox
	if st.DroppedTelemetry == 0 || st.QueuedBytes > 64<<10 {
		t.Fatalf("outbox %+v", st)
	}
	if l := r.s.Link(); l.OutboxDroppedTelemetry != st.DroppedTelemetry {
		t.Fatalf("telemetry/link reports %d dropped, outbox %d", l.OutboxDroppedTelemetry, st.DroppedTelemetry)
	}
	goOnline(t, r)
	var kinds []string
	deadline := time.After(5 * time.Second)
	for len(kinds) < 3 {
		select {
		case m := <-b.published:
			if m.topic == "outpost/u1/events" {
				var e wire.Event
				json.Unmarshal(m.payload, &e)
				kinds = append(kinds, e.Kind)
			}
		case <-deadline:
			t.Fatalf("events %v", kinds)
		}
	}
	full := 0
	for _, k := range kinds {
		if k == wire.KindOutboxFull {
			full++
		}
	}
	if full != 1 {
		t.Fatalf("events %v: want one outbox_full", kinds)
	}
}
