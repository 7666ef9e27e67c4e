package uplink

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/faultproxy"
	"github.com/outpost-cctv/outpost/internal/testbroker"
)

// These tests run the session against a real mosquitto, with keep-alives
// of a second so that hours of link behaviour take seconds.

// TestSlowHandlerKeepsLinkAlive: a command that runs for many keep-alive
// periods (a clip export, say) holds a worker, not the MQTT client: other
// commands are answered meanwhile and the connection is never lost.
func TestSlowHandlerKeepsLinkAlive(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	ctl := mustCtl(t, ctlOptions{broker: b.URL()})
	ctl.sub("outpost/u1/reply/+", 1)
	ls := runSession(t, Options{Broker: b.URL(), KeepAlive: time.Second})
	release := make(chan struct{})
	started := make(chan struct{})
	ls.s.Handle("export", func(ctx context.Context, req Request) (any, error) {
		close(started)
		select {
		case <-release:
			return map[string]any{"frames": 750}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	ls.s.Handle("ping", func(ctx context.Context, req Request) (any, error) { return "pong", nil })
	waitUntil(t, 10*time.Second, "connected", ls.s.Connected)

	ctl.pub("outpost/u1/cmd/export", 1, request("slow", nil))
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow command did not start")
	}
	// Four keep-alive periods with the handler blocked, commands flowing.
	readBefore := ls.s.Stats().Usage.DownToday
	end := time.Now().Add(4 * time.Second)
	for i := 0; time.Now().Before(end); i++ {
		id := fmt.Sprintf("ping%d", i)
		ctl.pub("outpost/u1/cmd/ping", 1, request(id, nil))
		got := next(t, ctl.ch, "outpost/u1/reply/"+id, 5*time.Second)
		if r := decodeReply(t, got); !r.OK {
			t.Fatalf("%s: %+v", id, r.Error)
		}
		// Idle between commands, so that keep-alive pings are needed.
		time.Sleep(300 * time.Millisecond)
	}
	close(release)
	if r := decodeReply(t, next(t, ctl.ch, "outpost/u1/reply/slow", 5*time.Second)); !r.OK || string(r.Result) != `{"frames":750}` {
		t.Fatalf("slow reply %+v", r)
	}
	st := ls.s.Stats()
	if st.Reconnects != 0 || st.WatchdogTrips != 0 || !st.Connected {
		t.Fatalf("the link suffered: %+v", st)
	}
	if st.Usage.DownToday <= readBefore {
		t.Fatal("nothing read from the broker meanwhile")
	}
	if strings.Contains(b.Log(), "exceeded timeout") {
		t.Fatalf("the broker timed the unit out:\n%s", b.Log())
	}
}

// seqPayload is a test message carrying its sequence number.
func seqPayload(n int) []byte { return []byte(fmt.Sprintf(`{"seq":%d}`, n)) }

func seqOf(t testing.TB, m fakeMsg) int {
	var v struct{ Seq *int }
	if err := json.Unmarshal(m.payload, &v); err != nil || v.Seq == nil {
		t.Fatalf("%s: not a test message: %s", m.topic, m.payload)
	}
	return *v.Seq
}

// receiver counts test messages by sequence number.
type receiver struct {
	mu   sync.Mutex
	seen map[int]int
}

func (r *receiver) add(n int) {
	r.mu.Lock()
	r.seen[n]++
	r.mu.Unlock()
}

func (r *receiver) has(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range n {
		if r.seen[i] == 0 {
			return false
		}
	}
	return true
}

func (r *receiver) dups() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := 0
	for _, c := range r.seen {
		d += c - 1
	}
	return d
}

func (r *receiver) missing(n int) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var m []int
	for i := range n {
		if r.seen[i] == 0 {
			m = append(m, i)
		}
	}
	return m
}

// TestBrokerKilledMidStream: mosquitto is killed (SIGKILL) while the unit
// sends, and restarted; everything the unit sent arrives, repeats being
// recognisable by their sequence number.
//
// What a killed broker had acknowledged but not yet passed on would be
// lost by the broker, not the unit. mosquitto writes a message to its
// subscribers' sockets before acknowledging it to the publisher, and a
// QoS 0 subscriber sends the broker nothing the kill could leave unread,
// so its socket is closed gracefully and it receives everything the unit
// had acknowledged. The unit is kept away (by the proxy) until the
// control room has subscribed again after the restart.
func TestBrokerKilledMidStream(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	px, err := faultproxy.Start(b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	rcv := &receiver{seen: map[int]int{}}
	listen := func() *ctlClient {
		c := mustCtl(t, ctlOptions{broker: b.URL()})
		c.sub("outpost/u1/q/#", 0)
		return c
	}
	ctl := listen()
	ls := runSession(t, Options{Broker: "tcp://" + px.Addr(), Dir: t.TempDir(), DrainRate: 1 << 20, DrainWindow: 8})
	waitUntil(t, 10*time.Second, "connected", ls.s.Connected)

	const total = 300
	var sent atomic.Int32
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		for i := range total {
			if err := ls.s.Send(context.Background(), PriorityTelemetry, "outpost/u1/q/"+strconv.Itoa(i%3), seqPayload(i)); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
			sent.Add(1)
			time.Sleep(3 * time.Millisecond)
		}
	}()
	drain := func(c *ctlClient, until func() bool, d time.Duration) {
		collect(t, c.ch, d, func(m fakeMsg) bool { rcv.add(seqOf(t, m)); return true }, until)
	}
	drain(ctl, func() bool { return rcv.has(50) }, 10*time.Second)

	px.SetRefuse(true)
	b.Kill()
	waitUntil(t, 10*time.Second, "the unit to notice", func() bool { return !ls.s.Connected() })
	drain(ctl, func() bool { return len(ctl.ch) == 0 }, time.Second) // what arrived before the kill
	b.Restart()
	ctl = listen()
	px.SetRefuse(false)
	<-sendDone
	drain(ctl, func() bool { return rcv.has(total) }, 30*time.Second)
	if m := rcv.missing(total); len(m) > 0 {
		t.Fatalf("lost %d messages: %v", len(m), m)
	}
	st := ls.s.Stats()
	if st.Reconnects < 1 {
		t.Errorf("stats %+v", st)
	}
	waitUntil(t, 10*time.Second, "outbox empty", func() bool { return ls.s.Stats().Outbox.Queued == 0 })
	t.Logf("%d messages through a broker kill: %d repeats, %d reconnections", total, rcv.dups(), st.Reconnects)
}

// TestAgentRestartWhileOffline: messages queued while the broker is out of
// reach survive the agent stopping abruptly (its outbox directory as a
// power cut leaves it) and go out from the new agent.
func TestAgentRestartWhileOffline(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	px, err := faultproxy.Start(b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	px.SetRefuse(true)
	dir := t.TempDir()
	first := runSession(t, Options{Broker: "tcp://" + px.Addr(), Dir: dir})
	waitUntil(t, 10*time.Second, "the session to run", func() bool {
		return first.s.Send(context.Background(), PriorityEvent, "outpost/u1/q/e", seqPayload(0)) == nil
	})
	const total = 60
	for i := 1; i < total; i++ {
		class := []Priority{PriorityAlert, PriorityEvent, PriorityTelemetry}[i%3]
		if err := first.s.Send(context.Background(), class, "outpost/u1/q/"+string(class), seqPayload(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The power cut: what is on disk now is all the next agent gets.
	cut := t.TempDir()
	copyDir(t, dir, cut)
	first.stop()

	ctl := mustCtl(t, ctlOptions{broker: b.URL()})
	ctl.sub("outpost/u1/q/#", 1)
	px.SetRefuse(false)
	second := runSession(t, Options{Broker: "tcp://" + px.Addr(), Dir: cut})
	rcv := &receiver{seen: map[int]int{}}
	var order []string
	collect(t, ctl.ch, 20*time.Second, func(m fakeMsg) bool {
		rcv.add(seqOf(t, m))
		order = append(order, m.topic[len("outpost/u1/q/"):])
		return true
	}, func() bool { return rcv.has(total) })
	if d := rcv.dups(); d != 0 {
		t.Errorf("%d repeats without any reconnection", d)
	}
	// Alerts, then events, then telemetry.
	rank := map[string]int{"alert": 0, "event": 1, "e": 1, "telemetry": 2}
	for i := 1; i < len(order); i++ {
		if rank[order[i]] < rank[order[i-1]] {
			t.Fatalf("priority order broken at %d: %v", i, order)
		}
	}
	waitUntil(t, 10*time.Second, "outbox empty", func() bool { return second.s.Stats().Outbox.Queued == 0 })
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o750)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o640)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFlakyLinkRecovers runs the session through a proxy that behaves
// like a bad cellular link: latency and a bandwidth cap throughout,
// connections dropped every second and a half for a while, then a black
// hole that swallows everything without closing. Every message sent
// meanwhile arrives; after the black hole the session is back within the
// stated bound (connect timeout + backoff cap + 1 s); and when the session
// stops, the goroutine count returns to where it was.
func TestFlakyLinkRecovers(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	px, err := faultproxy.Start(b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	ctl := mustCtl(t, ctlOptions{broker: b.URL(), id: "control-room"})
	ctl.sub("outpost/u1/q/#", 1)
	px.SetLatency(40 * time.Millisecond)
	px.SetBandwidth(32 << 10)

	rcv := &receiver{seen: map[int]int{}}
	stopReading := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case m := <-ctl.ch:
				rcv.add(seqOf(t, m))
			case <-stopReading:
				return
			}
		}
	}()
	defer func() { close(stopReading); <-readerDone }()

	base := runtime.NumGoroutine()
	const connectTimeout, maxBackoff = 2 * time.Second, time.Second
	ls := runSession(t, Options{Broker: "tcp://" + px.Addr(), Dir: t.TempDir(), KeepAlive: time.Second,
		ConnectTimeout: connectTimeout, MaxBackoff: maxBackoff, DrainRate: 8 << 10})
	waitUntil(t, 10*time.Second, "connected", ls.s.Connected)
	n := 0
	send := func(k int) {
		for range k {
			if err := ls.s.Send(context.Background(), PriorityTelemetry, "outpost/u1/q/t", seqPayload(n)); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	// Drops.
	px.DropEvery(1500 * time.Millisecond)
	for range 10 {
		send(5)
		time.Sleep(300 * time.Millisecond)
	}
	px.DropEvery(0)
	if ls.s.Stats().Reconnects < 1 {
		t.Fatal("no reconnection through the drops")
	}
	// Black hole: nothing arrives, nothing closes. It starts on a live
	// connection and lasts two seconds.
	waitUntil(t, 10*time.Second, "connected after the drops", ls.s.Connected)
	px.SetBlackhole(true)
	holed := time.Now()
	send(20)
	waitUntil(t, 10*time.Second, "the dead link noticed", func() bool { return !ls.s.Connected() })
	if took := time.Since(holed); took > 3*time.Second+500*time.Millisecond {
		t.Errorf("the black hole was noticed after %s; the bound is three keep-alives", took)
	}
	hole := time.NewTimer(time.Until(holed.Add(2 * time.Second)))
	<-hole.C
	px.SetBlackhole(false)
	lifted := time.Now()
	bound := connectTimeout + maxBackoff + time.Second
	waitUntil(t, bound+5*time.Second, "reconnection after the black hole", func() bool {
		st := ls.s.Stats()
		return st.Connected && st.ConnectedSince.After(holed)
	})
	if took := time.Since(lifted); took > bound {
		t.Errorf("back %s after the link returned; the bound is %s", took.Round(time.Millisecond), bound)
	} else {
		t.Logf("back %s after the black hole lifted (bound %s)", took.Round(time.Millisecond), bound)
	}
	send(10)
	waitUntil(t, 30*time.Second, "every message delivered", func() bool { return rcv.has(n) })
	waitUntil(t, 10*time.Second, "outbox empty", func() bool { return ls.s.Stats().Outbox.Queued == 0 })
	st := ls.s.Stats()
	t.Logf("%d messages, %d repeats, %d reconnections, %d watchdog trips, proxy %+v", n, rcv.dups(), st.Reconnects, st.WatchdogTrips, px.Stats())

	ls.stop()
	goroutinesBackTo(t, base, 10*time.Second)
}

// A link that swallows everything without closing is noticed within three
// keep-alives (paho's ping timeout, or else the watchdog), and left for a
// new connection.
func TestDeadLinkNoticedWithinThreeKeepAlives(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	px, err := faultproxy.Start(b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	ls := runSession(t, Options{Broker: "tcp://" + px.Addr(), KeepAlive: time.Second})
	waitUntil(t, 10*time.Second, "connected", ls.s.Connected)
	px.SetBlackhole(true)
	start := time.Now()
	waitUntil(t, 10*time.Second, "the dead link noticed", func() bool { return !ls.s.Connected() })
	if took := time.Since(start); took > 3*time.Second+500*time.Millisecond {
		t.Errorf("a black-holed link was noticed after %s; the bound is 3 keep-alives", took)
	}
	px.SetBlackhole(false)
	waitUntil(t, 10*time.Second, "reconnected", ls.s.Connected)
}
