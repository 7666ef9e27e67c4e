package uplink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-cctv/outpost/internal/backoff"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink/outbox"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// Priority is the class of a message sent through the outbox: when the
// outbox is full, the oldest messages of the lowest class go first, and
// when the link returns, higher classes are sent first.
type Priority = outbox.Class

// Priorities, highest first.
const (
	PriorityAlert     = outbox.ClassAlert
	PriorityEvent     = outbox.ClassEvent
	PriorityTelemetry = outbox.ClassTelemetry
)

// Options configures a Session. Zero fields take the defaults noted.
type Options struct {
	Broker    string // tcp://host:port, ssl://host:port, mqtts://host:port
	Topics    wire.Topics
	Username  string
	Password  string
	KeepAlive time.Duration // default 60 s
	// CAFile, CertFile and KeyFile enable TLS; they are read at every
	// connection, so that a renewed certificate is picked up.
	CAFile, CertFile, KeyFile string
	// Online returns the retained status published after each connection.
	Online func() wire.Status
	// ConfigReported returns the retained config/reported payload,
	// published after the first connection and whenever the broker lost
	// the unit's session (or the configuration's hash changed).
	ConfigReported func() wire.ConfigReported
	Clock          clock.Clock

	// Dir keeps the outbox (Dir/outbox), the data usage and the last
	// known good time. Empty keeps nothing: Send then publishes live.
	Dir string
	// OutboxSize bounds the outbox (default 16 MiB).
	OutboxSize int64
	// DrainWindow is how many outbox messages may await the broker's
	// acknowledgement at once (default 4); DrainRate bounds the bytes per
	// second the outbox sends (default 16 KiB/s), so that a backlog does
	// not swamp a cellular link when it returns.
	DrainWindow int
	DrainRate   int64
	// MonthlyBudget is the data allowance per calendar month; 0 is none.
	MonthlyBudget int64

	Commands CommandOptions

	// ConnectTimeout bounds each connection attempt (default 30 s) and
	// WriteTimeout each write to the network (default 20 s).
	ConnectTimeout, WriteTimeout time.Duration
	// MinBackoff and MaxBackoff bound the delay between connection
	// attempts (default 1 s, 1 min).
	MinBackoff, MaxBackoff time.Duration
	// BuildTime is the earliest time the clock may show (default: the
	// build's date, or the release floor compiled in).
	BuildTime time.Time
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	def(&o.KeepAlive, 60*time.Second)
	def(&o.ConnectTimeout, 30*time.Second)
	def(&o.WriteTimeout, 20*time.Second)
	def(&o.MinBackoff, time.Second)
	def(&o.MaxBackoff, time.Minute)
	if o.OutboxSize <= 0 {
		o.OutboxSize = 16 << 20
	}
	if o.DrainWindow <= 0 {
		o.DrainWindow = 4
	}
	if o.DrainRate <= 0 {
		o.DrainRate = 16 << 10
	}
	o.Commands.defaults()
}

// Session is the agent's MQTT session, run as a supervised component.
//
// Messages leave by two paths. Publish is live: it fails with ErrOffline
// while the link is down and keeps nothing (clip chunks, replies). Send is
// durable: the message is written to the disk-backed outbox first and
// published when the link allows, surviving restarts and power cuts
// (events, alerts, telemetry).
type Session struct {
	log     *slog.Logger
	opts    Options
	clk     clock.Clock
	factory clientFactory

	ready     chan struct{}
	readyOnce sync.Once
	wake      chan struct{} // the drainer has work: a message or a connection

	meter *meter
	floor *timeFloor

	mu         sync.Mutex
	conn       *conn // nil while down
	subs       map[string]func(topic string, payload []byte)
	subscribed map[string]bool // filters the broker's session holds
	handlers   map[string]Handler
	ob         *outbox.Outbox
	obErr      error
	cmds       *commander // set while Run runs
	running    bool
	reported   string // key of the config/reported last published
	connErr    error  // why the last connection attempt failed
	lostAt     time.Time
	lostQueued int
	firstConn  bool
	dropsSeen  uint64 // outbox drops already accounted for
	fullTold   bool   // outbox_full raised since the last connection

	reconnects    atomic.Uint64
	watchdogTrips atomic.Uint64
	cmdBusy       atomic.Uint64 // requests answered busy
	cmdDups       atomic.Uint64 // repeated request ids, not run again
	cmdDropped    atomic.Uint64 // replies dropped: the reply queue was full
	lastRead      atomic.Int64  // clock time in Unix ns of the last byte from the broker
}

// conn is one connection to the broker.
type conn struct {
	c        mqttClient
	since    time.Time
	present  bool         // the broker kept the unit's session
	local    atomic.Value // string: the local IP
	lost     chan struct{}
	lostOnce sync.Once
	lostErr  error
}

func (c *conn) markLost(err error) {
	c.lostOnce.Do(func() {
		c.lostErr = err
		close(c.lost)
	})
}

// NewSession returns a session; it connects when Run is called.
func NewSession(log *slog.Logger, opts Options) *Session {
	opts.defaults()
	s := &Session{
		log: log.With("component", "uplink"), opts: opts, clk: opts.Clock, factory: newPahoClient,
		ready: make(chan struct{}), wake: make(chan struct{}, 1),
		subs: map[string]func(string, []byte){}, subscribed: map[string]bool{}, handlers: map[string]Handler{},
	}
	var usagePath, floorPath string
	if opts.Dir != "" {
		usagePath = filepath.Join(opts.Dir, "usage.json")
		floorPath = filepath.Join(opts.Dir, "clock.json")
	}
	s.meter = newMeter(usagePath, opts.MonthlyBudget)
	s.floor = newTimeFloor(floorPath, opts.BuildTime)
	return s
}

// Name implements agent.Component.
func (s *Session) Name() string { return "uplink" }

// Ready is closed once the session accepts messages: the outbox is open
// (or could not be, and Send falls back to the live path). Dependents need
// not wait for the broker: what they Send is kept until it is reachable.
func (s *Session) Ready() <-chan struct{} { return s.ready }

// Topics is the unit's topic builder.
func (s *Session) Topics() wire.Topics { return s.opts.Topics }

// Connected reports whether the session currently has a connection.
func (s *Session) Connected() bool { return s.current() != nil }

func (s *Session) current() *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

// usesTLS reports whether the broker's address asks for TLS (ssl://,
// mqtts://); the CA and certificate files are used only then.
func (s *Session) usesTLS() bool {
	scheme, _, _ := strings.Cut(s.opts.Broker, "://")
	switch scheme {
	case "ssl", "tls", "mqtts", "tcps":
		return true
	}
	return false
}

// tlsConfig reads the CA, certificate and key files afresh.
func (s *Session) tlsConfig() (*tls.Config, error) {
	if !s.usesTLS() {
		return nil, nil
	}
	o := s.opts
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("uplink: CA file: %w: check uplink.tls.ca", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("uplink: CA file %s holds no PEM certificate: check uplink.tls.ca", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("uplink: client certificate: %w: check uplink.tls.cert and uplink.tls.key", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	// Verify against the session's clock, which tests can set.
	cfg.Time = s.clk.Now
	return cfg, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("uplink: encoding %T: %v", v, err)) // fixed structs always encode
	}
	return b
}

// Run opens the outbox, connects, keeps the session up (reconnecting with
// a jittered, capped backoff and discarding a client that stops hearing
// from the broker), drains the outbox and serves commands. When ctx is
// done it publishes the retained offline status, disconnects, and saves
// its state. It returns nil; it never gives up on the broker.
func (s *Session) Run(ctx context.Context) error {
	s.open()
	defer s.close()

	cmds := newCommander(s)
	s.mu.Lock()
	s.cmds, s.running = cmds, true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.cmds, s.running = nil, false
		s.mu.Unlock()
	}()
	s.readyOnce.Do(func() { close(s.ready) })

	var wg sync.WaitGroup
	defer wg.Wait()
	// The helpers stop when the loop returns, after the offline status.
	hctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	wg.Add(3)
	go func() { defer wg.Done(); cmds.run(hctx) }()
	go func() { defer wg.Done(); s.drain(hctx) }()
	go func() { defer wg.Done(); s.housekeep(hctx) }()

	s.loop(ctx)
	return nil
}

// open loads the session's state and opens the outbox. Failures are
// logged and reported, never fatal: a unit with a broken card must still
// talk to the control room.
func (s *Session) open() {
	if err := s.meter.load(s.clk.Now()); err != nil {
		s.log.Warn("data usage not restored; counting from zero", "err", err)
	}
	if err := s.floor.load(); err != nil {
		s.log.Warn("last known good time not restored", "err", err)
	}
	if s.opts.Dir == "" {
		return
	}
	ob, err := outbox.Open(s.log, outbox.Options{
		Dir: filepath.Join(s.opts.Dir, "outbox"), MaxBytes: s.opts.OutboxSize, Clock: s.clk,
	})
	s.mu.Lock()
	s.ob, s.obErr = ob, err
	s.mu.Unlock()
	if err != nil {
		s.log.Error("outbox unavailable: events and telemetry will be sent live only, and lost while the link is down", "err", err)
		return
	}
	st := ob.Stats()
	s.mu.Lock()
	s.dropsSeen = drops(st)
	s.mu.Unlock()
	if st.Queued > 0 {
		s.log.Info("outbox restored", "queued", st.Queued, "bytes", st.QueuedBytes)
	}
}

func drops(st outbox.Stats) uint64 { return st.DroppedAlert + st.DroppedEvent + st.DroppedTelemetry }

// noteDrops raises outbox_full once per outage when the outbox starts
// dropping messages for room.
func (s *Session) noteDrops(ob *outbox.Outbox) {
	st := ob.Stats()
	d := drops(st)
	s.mu.Lock()
	if d <= s.dropsSeen {
		s.mu.Unlock()
		return
	}
	s.dropsSeen = d
	tell := !s.fullTold
	s.fullTold = true
	s.mu.Unlock()
	if tell {
		s.log.Warn("outbox full: dropping the oldest messages of the lowest priority", "queued_bytes", st.QueuedBytes)
		s.event(wire.KindOutboxFull, wire.SeverityWarning,
			fmt.Sprintf("the offline queue is full (%d messages, %d bytes): the oldest telemetry is being dropped", st.Queued, st.QueuedBytes),
			map[string]any{"outbox_queued": st.Queued, "outbox_queued_bytes": st.QueuedBytes,
				"dropped_alert": st.DroppedAlert, "dropped_event": st.DroppedEvent, "dropped_telemetry": st.DroppedTelemetry})
	}
}

func (s *Session) close() {
	now := s.clk.Now()
	if err := s.meter.save(now); err != nil {
		s.log.Warn("saving data usage", "err", err)
	}
	if err := s.floor.save(); err != nil {
		s.log.Warn("saving the last known good time", "err", err)
	}
	s.mu.Lock()
	ob := s.ob
	s.ob = nil
	s.mu.Unlock()
	if ob != nil {
		if err := ob.Close(); err != nil {
			s.log.Warn("closing the outbox", "err", err)
		}
	}
}

func (s *Session) loop(ctx context.Context) {
	bo := backoff.New(s.opts.MinBackoff, s.opts.MaxBackoff)
	failures := 0
	for {
		if !s.waitForTime(ctx) {
			return
		}
		c, err := s.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			s.mu.Lock()
			s.connErr = err
			s.mu.Unlock()
			// Repeated failures are logged at 1, 2, 4, 8... attempts: the
			// card wears and the log is read over the same metered link.
			if failures&(failures-1) == 0 {
				s.log.Warn("cannot reach the broker; retrying", "broker", s.opts.Broker, "err", err, "attempt", failures)
			}
			if bo.Wait(ctx, s.clk) != nil {
				return
			}
			continue
		}
		failures = 0
		s.mu.Lock()
		s.connErr = nil
		s.mu.Unlock()
		s.up(ctx, c)
		s.hold(ctx, c)
		s.down(c)
		if ctx.Err() != nil {
			s.shutdown(c)
			return
		}
		c.c.Disconnect(0)
		s.reconnects.Add(1)
		if s.clk.Now().Sub(c.since) >= max(time.Minute, 3*s.opts.KeepAlive) {
			bo.Reset()
		}
		if bo.Wait(ctx, s.clk) != nil {
			return
		}
	}
}

// connect builds a client (reading the TLS files afresh) and connects it.
func (s *Session) connect(ctx context.Context) (*conn, error) {
	tlsCfg, err := s.tlsConfig()
	if err != nil {
		return nil, err
	}
	c := &conn{lost: make(chan struct{})}
	will := wire.Status{Header: wire.NewHeader(s.clk.Now()), State: wire.Offline, Reason: "lost"}
	c.c = s.factory(clientOptions{
		Broker: s.opts.Broker, ClientID: "outpost-" + s.opts.Topics.Unit,
		Username: s.opts.Username, Password: s.opts.Password, TLS: tlsCfg,
		KeepAlive: s.opts.KeepAlive, ConnectTimeout: s.opts.ConnectTimeout, WriteTimeout: s.opts.WriteTimeout,
		WillTopic: s.opts.Topics.Status(), Will: mustJSON(will),
		OnMessage: s.onMessage,
		OnLost:    c.markLost,
		OnRead:    s.onRead,
		OnWrite:   s.onWrite,
		OnDial: func(a net.Addr) {
			if ta, ok := a.(*net.TCPAddr); ok {
				c.local.Store(ta.IP.String())
			}
			s.meter.addHandshake(s.clk.Now())
		},
	})
	cctx, cancel := context.WithTimeout(ctx, s.opts.ConnectTimeout)
	present, err := c.c.Connect(cctx)
	cancel()
	if err != nil {
		c.c.Disconnect(0)
		return nil, err
	}
	c.since, c.present = s.clk.Now(), present
	s.lastRead.Store(c.since.UnixNano())
	s.mu.Lock()
	if !present {
		s.subscribed = map[string]bool{}
	}
	s.mu.Unlock()
	return c, nil
}

// up makes a new connection current: subscriptions first (so that a
// command sent once the unit shows as connected is not missed), then the
// retained status and config; then it takes the connection into service,
// wakes the drainer, and tells of the link's return.
func (s *Session) up(ctx context.Context, c *conn) {
	s.mu.Lock()
	lostAt, lostQueued, first := s.lostAt, s.lostQueued, !s.firstConn
	s.firstConn = true
	s.mu.Unlock()

	pctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	n := s.resubscribe(pctx, c)
	s.log.Info("connected", "broker", s.opts.Broker, "resubscribed", n, "session_present", c.present)
	if s.opts.Online != nil {
		st := s.opts.Online()
		if st.IP == "" {
			if ip, ok := c.local.Load().(string); ok {
				st.IP = ip
			}
		}
		if err := s.publishOn(pctx, c, s.opts.Topics.Status(), 1, true, mustJSON(st)); err != nil {
			s.log.Warn("publishing online status failed", "err", err)
		}
	}
	if s.opts.ConfigReported != nil {
		cr := s.opts.ConfigReported()
		s.mu.Lock()
		need := !c.present || s.reported != cr.Key() // a new broker session, or a new config or result
		s.mu.Unlock()
		if need {
			if err := s.publishOn(pctx, c, s.opts.Topics.ConfigReported(), 1, true, mustJSON(cr)); err != nil {
				s.log.Warn("publishing config/reported failed", "err", err)
			} else {
				s.mu.Lock()
				s.reported = cr.Key()
				s.mu.Unlock()
			}
		}
	}
	s.mu.Lock()
	s.conn, s.fullTold = c, false
	s.mu.Unlock()
	// Filters added while the connection was being set up.
	s.resubscribe(pctx, c)
	s.kick()
	if !first && !lostAt.IsZero() {
		off := c.since.Sub(lostAt)
		st := s.outboxStats()
		s.event(wire.KindLinkRestored, wire.SeverityInfo,
			fmt.Sprintf("link restored after %s offline; %d messages queued meanwhile", off.Round(time.Second), max(st.Queued-lostQueued, 0)),
			map[string]any{"offline_s": int64(off / time.Second), "outbox_queued": st.Queued, "reconnects": s.reconnects.Load()})
	}
}

// resubscribe subscribes c to the command filter and every registered
// filter the broker's session does not hold yet, and returns how many it
// subscribed.
func (s *Session) resubscribe(ctx context.Context, c *conn) int {
	s.mu.Lock()
	var todo []string
	for _, f := range append([]string{s.opts.Topics.CmdFilter()}, keys(s.subs)...) {
		if !s.subscribed[f] {
			todo = append(todo, f)
		}
	}
	s.mu.Unlock()
	n := 0
	for _, f := range todo {
		if err := c.c.Subscribe(ctx, f, 1); err != nil {
			s.log.Error("subscription failed", "filter", f, "err", err)
			continue
		}
		n++
		s.mu.Lock()
		s.subscribed[f] = true
		s.mu.Unlock()
	}
	return n
}

func keys(m map[string]func(string, []byte)) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// hold waits until ctx is done, the connection drops, or the watchdog finds
// the broker silent for three keep-alives.
func (s *Session) hold(ctx context.Context, c *conn) {
	ka := s.opts.KeepAlive
	tick := s.clk.NewTicker(max(ka/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.lost:
			s.log.Warn("connection lost; reconnecting", "err", c.lostErr)
			s.noteLost(c.lostErr)
			return
		case <-tick.C():
			idle := s.clk.Now().Sub(time.Unix(0, s.lastRead.Load()))
			if idle >= 3*ka {
				s.watchdogTrips.Add(1)
				s.log.Error("watchdog: nothing heard from the broker; discarding the MQTT client", "silent", idle.Round(time.Millisecond), "keepalive", ka)
				c.markLost(fmt.Errorf("uplink: watchdog: nothing heard from the broker for %s (3 keep-alives)", idle.Round(time.Millisecond)))
				s.noteLost(c.lostErr)
				s.event(wire.KindWatchdog, wire.SeverityWarning,
					fmt.Sprintf("nothing heard from the broker for %s; the MQTT client was rebuilt", idle.Round(time.Second)),
					map[string]any{"silent_s": int64(idle / time.Second), "keepalive_s": int64(ka / time.Second)})
				return
			}
		}
	}
}

func (s *Session) noteLost(err error) {
	now := s.clk.Now()
	st := s.outboxStats()
	s.mu.Lock()
	s.lostAt, s.lostQueued = now, st.Queued
	s.mu.Unlock()
	reason := "unknown"
	if err != nil {
		reason = err.Error()
	}
	s.event(wire.KindLinkLost, wire.SeverityWarning, "link to the control room lost: "+reason, map[string]any{"reason": reason})
}

// down takes a connection out of service; waiters on it return ErrOffline.
func (s *Session) down(c *conn) {
	s.mu.Lock()
	if s.conn == c {
		s.conn = nil
	}
	s.mu.Unlock()
	c.markLost(ErrOffline)
}

func (s *Session) shutdown(c *conn) {
	st := wire.Status{Header: wire.NewHeader(s.clk.Now()), State: wire.Offline, Reason: "shutdown"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// c is already out of service; publish on it directly.
	done := make(chan error, 1)
	t := c.c.Publish(s.opts.Topics.Status(), 1, true, mustJSON(st))
	go func() {
		select {
		case <-t.Done():
			done <- t.Error()
		case <-ctx.Done():
			done <- ctx.Err()
		}
	}()
	if err := <-done; err != nil {
		s.log.Warn("publishing offline status failed", "err", err)
	}
	c.c.Disconnect(250 * time.Millisecond)
	s.log.Info("disconnected")
}

// waitForTime holds the connection back while the clock is before the
// build time or the last known good time: certificates cannot be checked
// at 1970. Without TLS it does not wait. It returns false when ctx ends.
func (s *Session) waitForTime(ctx context.Context) bool {
	if !s.usesTLS() || s.floor.sane(s.clk.Now()) {
		return true
	}
	s.log.Warn("the clock is before the last known good time; waiting for network time before connecting",
		"clock", s.clk.Now().UTC(), "floor", s.floor.floor().UTC())
	s.event(wire.KindClockInvalid, wire.SeverityAlert,
		"the unit's clock is not set; it will connect once it has network time",
		map[string]any{"clock": s.clk.Now().UTC(), "floor": s.floor.floor().UTC()})
	t := s.clk.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C():
			if s.floor.sane(s.clk.Now()) {
				s.log.Info("the clock is set; connecting", "clock", s.clk.Now().UTC())
				return true
			}
		}
	}
}

func (s *Session) onRead(n int) {
	now := s.clk.Now()
	s.lastRead.Store(now.UnixNano())
	s.meter.addDown(now, n)
}

func (s *Session) onWrite(n int) { s.meter.addUp(s.clk.Now(), n) }

// onMessage routes a message from the broker: commands to the command
// queue, the rest to the handlers of matching subscriptions.
func (s *Session) onMessage(topic string, payload []byte) {
	base := s.opts.Topics.Base() + "cmd/"
	if name, ok := strings.CutPrefix(topic, base); ok && !strings.Contains(name, "/") {
		s.mu.Lock()
		cmds := s.cmds
		s.mu.Unlock()
		if cmds != nil {
			cmds.dispatch(name, payload)
		}
		return
	}
	s.mu.Lock()
	var hs []func(string, []byte)
	for f, h := range s.subs {
		if matchTopic(f, topic) {
			hs = append(hs, h)
		}
	}
	s.mu.Unlock()
	for _, h := range hs {
		h(topic, payload)
	}
}

// publishOn publishes on connection c and waits for the acknowledgement,
// the loss of c, or ctx.
func (s *Session) publishOn(ctx context.Context, c *conn, topic string, qos byte, retained bool, payload []byte) error {
	return waitToken(ctx, c, c.c.Publish(topic, qos, retained, payload), "publish "+topic)
}

func waitToken(ctx context.Context, c *conn, t token, what string) error {
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			if errors.Is(err, ErrOffline) {
				return fmt.Errorf("uplink: %s: %w", what, ErrOffline)
			}
			return fmt.Errorf("uplink: %s: %w", what, err)
		}
		return nil
	case <-c.lost:
		return fmt.Errorf("uplink: %s: %w", what, ErrOffline)
	case <-ctx.Done():
		return fmt.Errorf("uplink: %s: %w", what, ctx.Err())
	}
}

// Publish sends a message now, waiting at most until ctx is done for the
// broker's acknowledgement (QoS 1). It returns an error wrapping
// ErrOffline while there is no connection, or if the connection drops
// before the acknowledgement; nothing is kept for later.
func (s *Session) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	c := s.current()
	if c == nil {
		return ErrOffline
	}
	return s.publishOn(ctx, c, topic, qos, retained, payload)
}

// PublishJSON marshals v and publishes it.
func (s *Session) PublishJSON(ctx context.Context, topic string, qos byte, retained bool, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("uplink: encoding %s: %w", topic, err)
	}
	return s.Publish(ctx, topic, qos, retained, b)
}

// Subscribe registers a handler for a topic filter (MQTT wildcards + and #
// allowed), kept across reconnections. While connected it subscribes at
// once and returns the broker's refusal (wrapping ErrRefused) if there is
// one, in which case the filter is not kept; otherwise it subscribes at
// the next connection. The handler runs on a goroutine of its own for each
// message, possibly concurrently with itself; the broker's message is
// acknowledged when it returns, so it should hand long work elsewhere.
func (s *Session) Subscribe(ctx context.Context, filter string, h func(topic string, payload []byte)) error {
	if !validFilter(filter) {
		return fmt.Errorf("uplink: subscribe: %q is not a valid MQTT topic filter", filter)
	}
	s.mu.Lock()
	s.subs[filter] = h
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return nil // subscribed on the next connection
	}
	if err := c.c.Subscribe(ctx, filter, 1); err != nil {
		if errors.Is(err, ErrRefused) {
			s.mu.Lock()
			delete(s.subs, filter)
			s.mu.Unlock()
		}
		return err
	}
	s.mu.Lock()
	s.subscribed[filter] = true
	s.mu.Unlock()
	return nil
}

// Send hands a message to the durable path: it returns once the message is
// in the outbox on disk, and the outbox publishes it (QoS 1, not retained)
// when the link allows, highest priority first and oldest first within a
// priority. When the outbox is full the oldest messages of the lowest
// priority are dropped and counted; the message itself is dropped (the
// error wraps outbox.ErrDropped) if everything queued outranks it. When
// the outbox cannot be written, Send publishes live instead.
func (s *Session) Send(ctx context.Context, class Priority, topic string, payload []byte) error {
	return s.send(ctx, class, topic, false, payload)
}

// SendRetained is Send for a retained message, such as the unit's health:
// every state goes out in order, and the broker keeps the last.
func (s *Session) SendRetained(ctx context.Context, class Priority, topic string, payload []byte) error {
	return s.send(ctx, class, topic, true, payload)
}

func (s *Session) send(ctx context.Context, class Priority, topic string, retained bool, payload []byte) error {
	if !outbox.ValidClass(class) {
		return fmt.Errorf("uplink: send %s: %q is not a priority (alert, event or telemetry)", topic, class)
	}
	s.mu.Lock()
	ob, obErr, running := s.ob, s.obErr, s.running
	s.mu.Unlock()
	if !running {
		return fmt.Errorf("uplink: send %s: the session is not running", topic)
	}
	if ob == nil {
		if err := s.Publish(ctx, topic, 1, retained, payload); err != nil {
			if obErr != nil {
				return fmt.Errorf("uplink: send %s: no outbox (%v) and the live publish failed: %w", topic, obErr, err)
			}
			return err
		}
		return nil
	}
	if _, err := ob.Put(outbox.Message{Class: class, Topic: topic, Payload: payload, Retained: retained}); err != nil {
		if errors.Is(err, outbox.ErrDropped) {
			s.noteDrops(ob)
			return fmt.Errorf("uplink: send %s: %w", topic, err)
		}
		s.mu.Lock()
		s.obErr = err
		s.mu.Unlock()
		s.log.Error("outbox write failed; publishing live", "topic", topic, "err", err)
		if perr := s.Publish(ctx, topic, 1, retained, payload); perr != nil {
			return fmt.Errorf("uplink: send %s: %w; and the live publish failed: %w", topic, err, perr)
		}
		return nil
	}
	if obErr != nil {
		s.mu.Lock()
		s.obErr = nil // writable again
		s.mu.Unlock()
	}
	s.noteDrops(ob)
	s.kick()
	return nil
}

// SendJSON marshals v and sends it.
func (s *Session) SendJSON(ctx context.Context, class Priority, topic string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("uplink: encoding %s: %w", topic, err)
	}
	return s.Send(ctx, class, topic, b)
}

// event sends an event of the uplink's own through the outbox.
func (s *Session) event(kind, severity, msg string, data map[string]any) {
	e := wire.NewEvent(s.clk.Now(), kind, severity, msg)
	e.Data = data
	class := PriorityEvent
	if severity == wire.SeverityAlert {
		class = PriorityAlert
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.WriteTimeout)
	defer cancel()
	if err := s.SendJSON(ctx, class, s.opts.Topics.Events(), e); err != nil {
		s.log.Debug("event not sent", "kind", kind, "err", err)
	}
}

// kick wakes the drainer.
func (s *Session) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Session) outboxStats() outbox.Stats {
	s.mu.Lock()
	ob := s.ob
	s.mu.Unlock()
	if ob == nil {
		return outbox.Stats{}
	}
	return ob.Stats()
}

// housekeep saves the data usage and the last known good time now and
// then, and raises the data budget alerts.
func (s *Session) housekeep(ctx context.Context) {
	t := s.clk.NewTicker(time.Minute)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		n++
		now := s.clk.Now()
		if p, used, ok := s.meter.crossed(now); ok {
			sev := wire.SeverityWarning
			msg := fmt.Sprintf("%.0f%% of the monthly data budget used: telemetry intervals are longer and no thumbnails or unrequested clips are sent", used)
			if p == wire.PolicyExhausted {
				sev = wire.SeverityAlert
				msg = fmt.Sprintf("the monthly data budget is used up (%.0f%%): telemetry at its longest intervals; alerts, events and requested clips still go", used)
			}
			s.log.Warn("data budget", "policy", p, "used_pct", used)
			s.event(wire.KindDataBudget, sev, msg, map[string]any{"policy": string(p), "used_pct": used})
		}
		if s.Connected() {
			s.floor.observe(now)
		}
		if n%10 == 0 {
			if err := s.meter.save(now); err != nil {
				s.log.Warn("saving data usage", "err", err)
			}
			if err := s.floor.save(); err != nil {
				s.log.Warn("saving the last known good time", "err", err)
			}
		}
	}
}

// DataPolicy is what the data budget allows now.
func (s *Session) DataPolicy() wire.DataPolicy { return s.meter.policy(s.clk.Now()) }

// Stats is a snapshot of the session, for tests and reports.
type Stats struct {
	Connected bool
	// ConnectedSince is when the current connection was made (zero while
	// down).
	ConnectedSince time.Time
	Reconnects     uint64
	WatchdogTrips  uint64
	Outbox         outbox.Stats
	Usage          Usage
	// Requests answered busy, repeats recognised by id, and quick replies
	// dropped because their queue was full.
	CommandsBusy, CommandDuplicates, RepliesDropped uint64
	// ConnectError is why the last attempt to connect failed; nil once a
	// connection is made.
	ConnectError error
}

// Stats returns a snapshot of the session.
func (s *Session) Stats() Stats {
	var since time.Time
	if c := s.current(); c != nil {
		since = c.since
	}
	return Stats{
		Connected: since != time.Time{}, ConnectedSince: since, Reconnects: s.reconnects.Load(), WatchdogTrips: s.watchdogTrips.Load(),
		Outbox: s.outboxStats(), Usage: s.meter.usage(s.clk.Now()),
		CommandsBusy: s.cmdBusy.Load(), CommandDuplicates: s.cmdDups.Load(), RepliesDropped: s.cmdDropped.Load(),
		ConnectError: s.connectError(),
	}
}

func (s *Session) connectError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connErr
}

// Link is the telemetry/link payload without its header.
func (s *Session) Link() wire.Link {
	st := s.Stats()
	u := st.Usage
	l := wire.Link{
		Connected: st.Connected, Reconnects: st.Reconnects, WatchdogTrips: st.WatchdogTrips,
		DataUpTodayBytes: u.UpToday, DataDownTodayBytes: u.DownToday, DataUpMonthBytes: u.UpMonth, DataDownMonthBytes: u.DownMonth,
		DataPolicy:   u.Policy,
		OutboxQueued: st.Outbox.Queued, OutboxQueuedBytes: st.Outbox.QueuedBytes,
		OutboxDroppedAlert: st.Outbox.DroppedAlert, OutboxDroppedEvent: st.Outbox.DroppedEvent, OutboxDroppedTelemetry: st.Outbox.DroppedTelemetry,
	}
	if u.Budget > 0 {
		b, pct := u.Budget, u.UsedPct
		l.DataBudgetBytes, l.DataBudgetUsedPct = &b, &pct
	}
	s.mu.Lock()
	if s.obErr != nil {
		l.OutboxError = s.obErr.Error()
	}
	s.mu.Unlock()
	return l
}

// RepublishConfig publishes the config/reported payload afresh (retained),
// after the configuration or the result of a change did. While offline it
// returns ErrOffline, and the payload goes out at the next connection.
func (s *Session) RepublishConfig(ctx context.Context) error {
	if s.opts.ConfigReported == nil {
		return nil
	}
	cr := s.opts.ConfigReported()
	if err := s.PublishJSON(ctx, s.opts.Topics.ConfigReported(), 1, true, cr); err != nil {
		return err
	}
	s.mu.Lock()
	s.reported = cr.Key()
	s.mu.Unlock()
	return nil
}
