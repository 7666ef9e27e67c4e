package uplink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/internal/backoff"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// Options configures a Session.
type Options struct {
	Broker    string // tcp://host:port, ssl://host:port
	Topics    wire.Topics
	Username  string
	Password  string
	KeepAlive time.Duration
	// CAFile, CertFile and KeyFile enable TLS; they are read at every
	// connection so that a renewed certificate is picked up.
	CAFile, CertFile, KeyFile string
	// Online returns the retained status published after each connection.
	Online func() wire.Status
	Clock  clock.Clock
}

// Session is the agent's MQTT session, run as a supervised component.
type Session struct {
	log     *slog.Logger
	opts    Options
	factory clientFactory

	mu     sync.Mutex
	client mqttClient
	up     bool
	ready  chan struct{}
	subs   map[string]func(topic string, payload []byte)
}

// NewSession returns a session; it connects when Run is called.
func NewSession(log *slog.Logger, opts Options) *Session {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	return &Session{
		log: log.With("component", "uplink"), opts: opts, factory: newPahoClient,
		ready: make(chan struct{}), subs: map[string]func(string, []byte){},
	}
}

// Name implements agent.Component.
func (s *Session) Name() string { return "uplink" }

// Ready is closed once the first connection has been made.
func (s *Session) Ready() <-chan struct{} { return s.ready }

// Connected reports whether the session currently has a connection.
func (s *Session) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

func (s *Session) tlsConfig() (*tls.Config, error) {
	o := s.opts
	if o.CAFile == "" && o.CertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("uplink: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("uplink: CA file %s holds no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("uplink: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func (s *Session) statusPayload(st wire.Status) []byte {
	b, err := json.Marshal(st)
	if err != nil {
		panic(err) // a fixed struct always marshals
	}
	return b
}

// Run connects, keeps the session up and, when ctx is done, publishes the
// retained offline status and disconnects.
func (s *Session) Run(ctx context.Context) error {
	tlsCfg, err := s.tlsConfig()
	if err != nil {
		return err
	}
	events := make(chan error, 1) // nil: connected; non-nil: lost
	notify := func(err error) {
		select {
		case events <- err:
		default:
			// A newer event is already pending; the loop reads state fresh.
		}
	}
	will := wire.Status{Header: wire.NewHeader(s.opts.Clock.Now()), State: wire.Offline, Reason: "lost"}
	c := s.factory(clientOptions{
		Broker: s.opts.Broker, ClientID: "outpost-" + s.opts.Topics.Unit,
		Username: s.opts.Username, Password: s.opts.Password, TLS: tlsCfg,
		KeepAlive: s.opts.KeepAlive, WillTopic: s.opts.Topics.Status(), Will: s.statusPayload(will),
		OnConnect: func() { notify(nil) },
		OnLost:    func(err error) { notify(err) },
	})

	// The first connection is retried like any reconnect; paho then
	// reconnects by itself.
	bo := backoff.New(time.Second, time.Minute)
	for {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := c.Connect(cctx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("cannot reach the broker; retrying", "broker", s.opts.Broker, "err", err, "attempt", bo.Attempts()+1)
		if bo.Wait(ctx, s.opts.Clock) != nil {
			return nil
		}
	}
	s.mu.Lock()
	s.client = c
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.client, s.up = nil, false
		s.mu.Unlock()
	}()

	for {
		select {
		case <-ctx.Done():
			s.shutdown(c)
			return nil
		case err := <-events:
			if err != nil {
				s.mu.Lock()
				s.up = false
				s.mu.Unlock()
				s.log.Warn("connection lost; reconnecting", "err", err)
				continue
			}
			s.onConnected(ctx, c)
		}
	}
}

func (s *Session) onConnected(ctx context.Context, c mqttClient) {
	s.log.Info("connected", "broker", s.opts.Broker)
	s.mu.Lock()
	s.up = true
	subs := make(map[string]func(string, []byte), len(s.subs))
	for k, v := range s.subs {
		subs[k] = v
	}
	s.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for filter, h := range subs {
		if err := c.Subscribe(pctx, filter, 1, h); err != nil {
			s.log.Warn("resubscribe failed", "filter", filter, "err", err)
		}
	}
	if s.opts.Online != nil {
		if err := c.Publish(pctx, s.opts.Topics.Status(), 1, true, s.statusPayload(s.opts.Online())); err != nil {
			s.log.Warn("publishing online status failed", "err", err)
		}
	}
	select {
	case <-s.ready:
	default:
		close(s.ready)
	}
}

func (s *Session) shutdown(c mqttClient) {
	st := wire.Status{Header: wire.NewHeader(s.opts.Clock.Now()), State: wire.Offline, Reason: "shutdown"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Publish(ctx, s.opts.Topics.Status(), 1, true, s.statusPayload(st)); err != nil && !errors.Is(err, ErrOffline) {
		s.log.Warn("publishing offline status failed", "err", err)
	}
	c.Disconnect(250 * time.Millisecond)
	s.log.Info("disconnected")
}

// Publish sends a message, waiting at most until ctx is done. It returns
// ErrOffline while there is no connection.
func (s *Session) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	s.mu.Lock()
	c, up := s.client, s.up
	s.mu.Unlock()
	if c == nil || !up {
		return ErrOffline
	}
	return c.Publish(ctx, topic, qos, retained, payload)
}

// PublishJSON marshals v and publishes it.
func (s *Session) PublishJSON(ctx context.Context, topic string, qos byte, retained bool, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("uplink: encoding %s: %w", topic, err)
	}
	return s.Publish(ctx, topic, qos, retained, b)
}

// Subscribe registers a handler for a topic filter, kept across
// reconnections. The handler runs on the client's goroutine and must hand
// slow work elsewhere.
func (s *Session) Subscribe(ctx context.Context, filter string, h func(topic string, payload []byte)) error {
	s.mu.Lock()
	s.subs[filter] = h
	c, up := s.client, s.up
	s.mu.Unlock()
	if c == nil || !up {
		return nil // subscribed on the next connection
	}
	return c.Subscribe(ctx, filter, 1, h)
}
