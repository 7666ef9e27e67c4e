package uplink

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testLog logs to the test's output, for debugging failures.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(b))
	return len(b), nil
}

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type fakeMsg struct {
	topic    string
	payload  []byte
	retained bool
}

// fakeBroker is a hand-written fake of the MQTT client side: the session's
// factory builds fakeClients attached to it. Publishes are recorded and
// acknowledged at once unless hold is set, in which case their tokens wait
// for complete.
type fakeBroker struct {
	mu         sync.Mutex
	clients    []*fakeClient
	connectErr error // returned by Connect while set
	present    bool  // reported as sessionPresent
	refuse     map[string]bool
	hold       bool
	pending    []*fakeToken
	subs       []string
	published  chan fakeMsg
	connects   int
	disconnect int
}

func newFakeBroker() *fakeBroker {
	return &fakeBroker{published: make(chan fakeMsg, 4096), refuse: map[string]bool{}}
}

func (b *fakeBroker) factory(o clientOptions) mqttClient {
	c := &fakeClient{b: b, o: o}
	b.mu.Lock()
	b.clients = append(b.clients, c)
	b.mu.Unlock()
	return c
}

func (b *fakeBroker) current() *fakeClient {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.clients) - 1; i >= 0; i-- {
		if c := b.clients[i]; c.isConnected() {
			return c
		}
	}
	return nil
}

// deliver sends a message from the "broker" to the connected client.
func (b *fakeBroker) deliver(t testing.TB, topic string, payload []byte) {
	t.Helper()
	c := b.current()
	if c == nil {
		t.Fatal("deliver: no connected client")
	}
	c.o.OnMessage(topic, payload)
}

// drop makes the connected client lose its connection.
func (b *fakeBroker) drop(err error) {
	if c := b.current(); c != nil {
		c.mu.Lock()
		c.connected = false
		c.mu.Unlock()
		c.o.OnLost(err)
	}
}

func (b *fakeBroker) setConnectErr(err error) {
	b.mu.Lock()
	b.connectErr = err
	b.mu.Unlock()
}

func (b *fakeBroker) stats() (connects, disconnects, clients int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.connects, b.disconnect, len(b.clients)
}

// complete acknowledges the n oldest held publishes.
func (b *fakeBroker) complete(n int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = min(n, len(b.pending))
	for _, t := range b.pending[:n] {
		t.finish(nil)
	}
	b.pending = b.pending[n:]
	return n
}

func (b *fakeBroker) held() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

type fakeClient struct {
	b *fakeBroker
	o clientOptions

	mu           sync.Mutex
	connected    bool
	disconnected bool
}

func (c *fakeClient) isConnected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

func (c *fakeClient) Connect(ctx context.Context) (bool, error) {
	c.b.mu.Lock()
	err, present := c.b.connectErr, c.b.present
	c.b.connects++
	c.b.mu.Unlock()
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	c.connected = true
	c.mu.Unlock()
	return present, nil
}

func (c *fakeClient) Publish(topic string, qos byte, retained bool, payload []byte) token {
	t := &fakeToken{done: make(chan struct{})}
	if !c.isConnected() {
		t.finish(ErrOffline)
		return t
	}
	c.b.published <- fakeMsg{topic: topic, payload: append([]byte(nil), payload...), retained: retained}
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	if c.b.hold {
		c.b.pending = append(c.b.pending, t)
	} else {
		t.finish(nil)
	}
	return t
}

func (c *fakeClient) Subscribe(ctx context.Context, filter string, qos byte) error {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	if c.b.refuse[filter] {
		return ErrRefused
	}
	c.b.subs = append(c.b.subs, filter)
	return nil
}

func (c *fakeClient) Disconnect(quiesce time.Duration) {
	c.mu.Lock()
	c.connected, c.disconnected = false, true
	c.mu.Unlock()
	c.b.mu.Lock()
	c.b.disconnect++
	c.b.mu.Unlock()
}

type fakeToken struct {
	once sync.Once
	done chan struct{}
	err  error
}

func (t *fakeToken) finish(err error) {
	t.once.Do(func() {
		t.err = err
		close(t.done)
	})
}

func (t *fakeToken) Done() <-chan struct{} { return t.done }
func (t *fakeToken) Error() error          { return t.err }

// running is a session started by startSession, stopped at cleanup.
type running struct {
	s    *Session
	b    *fakeBroker
	clk  *clock.Fake
	stop func()
}

// startSession runs a session against a fake broker on a fake clock and
// waits until it is connected.
func startSession(t *testing.T, o Options, b *fakeBroker) *running {
	t.Helper()
	clk := clock.NewFake(t0)
	if o.Clock == nil {
		o.Clock = clk
	} else {
		clk = o.Clock.(*clock.Fake)
	}
	if o.Broker == "" {
		o.Broker = "tcp://fake:1883"
	}
	if o.Topics == (wire.Topics{}) {
		o.Topics = wire.Topics{Prefix: "outpost", Unit: "u1"}
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = 10 * time.Second
	}
	s := NewSession(quiet(), o)
	s.factory = b.factory
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	r := &running{s: s, b: b, clk: clk, stop: func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s of cancellation")
		}
	}}
	t.Cleanup(r.stop)
	waitUntil(t, 5*time.Second, "session connected", s.Connected)
	return r
}

// waitUntil polls cond every millisecond until it holds, or fails after d.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// next returns the next published message on topic, skipping others, or
// fails after d.
func next(t testing.TB, ch <-chan fakeMsg, topic string, d time.Duration) fakeMsg {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case m := <-ch:
			if m.topic == topic {
				return m
			}
		case <-timer.C:
			t.Fatalf("nothing published on %s within %s", topic, d)
			return fakeMsg{}
		}
	}
}

// none checks that nothing is published on topic within d.
func none(t testing.TB, ch <-chan fakeMsg, topic string, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case m := <-ch:
			if m.topic == topic {
				t.Fatalf("unexpected message on %s: %s", topic, m.payload)
			}
		case <-timer.C:
			return
		}
	}
}

func decodeReply(t testing.TB, m fakeMsg) wire.Reply {
	t.Helper()
	r, err := wire.DecodeReply(m.payload)
	if err != nil {
		t.Fatalf("reply on %s: %v: %s", m.topic, err, m.payload)
	}
	return r
}

func request(id string, args any) []byte {
	req := wire.Request{Header: wire.NewHeader(t0), ID: id}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			panic(err)
		}
		req.Args = b
	}
	b, err := json.Marshal(req)
	if err != nil {
		panic(err)
	}
	return b
}
