package uplink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// mqttClient is all the session needs of an MQTT client. A client serves
// one connection: the session builds a new one for every attempt, so that
// renewed certificates are read and no state survives a broken link.
type mqttClient interface {
	// Connect connects within ctx. sessionPresent reports whether the
	// broker kept the unit's session (and so its subscriptions).
	Connect(ctx context.Context) (sessionPresent bool, err error)
	// Publish starts sending a message. The token completes when the
	// broker acknowledged it (QoS 1) or it was written (QoS 0).
	Publish(topic string, qos byte, retained bool, payload []byte) token
	// Subscribe subscribes within ctx. A filter the broker refuses is an
	// error wrapping ErrRefused.
	Subscribe(ctx context.Context, filter string, qos byte) error
	// Disconnect ends the connection, in an orderly way if it is up,
	// waiting at most quiesce; then it closes the network connection
	// whatever state the client is in. The client is not used again.
	Disconnect(quiesce time.Duration)
}

// token is the completion of a publish.
type token interface {
	Done() <-chan struct{}
	Error() error
}

// clientOptions is what a factory needs to build a client.
type clientOptions struct {
	Broker         string
	ClientID       string
	Username       string
	Password       string
	TLS            *tls.Config
	KeepAlive      time.Duration
	ConnectTimeout time.Duration
	WriteTimeout   time.Duration
	WillTopic      string
	Will           []byte
	// Clean asks for a clean session: the broker keeps nothing of it
	// (a one-off check), where the unit's own session is kept.
	Clean bool
	// OnMessage receives every message the broker sends, on a goroutine
	// of its own per message. OnLost runs once when the connection drops.
	OnMessage func(topic string, payload []byte)
	OnLost    func(error)
	// OnRead and OnWrite are told the bytes crossing the network
	// connection (below TLS), for metering and the watchdog; OnDial the
	// local address of a new connection.
	OnRead, OnWrite func(n int)
	OnDial          func(local net.Addr)
}

type clientFactory func(clientOptions) mqttClient

// ErrOffline is returned by Publish while there is no connection. Callers
// that must not lose a message use Send, which keeps it in the outbox.
var ErrOffline = errors.New("uplink: not connected to the broker")

// ErrRefused is wrapped by errors for subscriptions and connections the
// broker refused (an ACL, bad credentials).
var ErrRefused = errors.New("refused by the broker")

// pahoClient adapts paho to mqttClient. It dials the network connection
// itself, so that bytes are counted below TLS, writes have a deadline and
// a wedged client can be cut off by closing the socket.
type pahoClient struct {
	c mqtt.Client
	o clientOptions

	mu     sync.Mutex
	raw    net.Conn
	closed bool
}

func newPahoClient(o clientOptions) mqttClient {
	p := &pahoClient{o: o}
	ping := o.KeepAlive
	if ping < time.Second {
		ping = time.Second
	}
	po := mqtt.NewClientOptions().
		AddBroker(o.Broker).
		SetClientID(o.ClientID).
		SetKeepAlive(o.KeepAlive).
		SetPingTimeout(ping).
		SetConnectTimeout(o.ConnectTimeout).
		SetWriteTimeout(o.WriteTimeout).
		// The broker keeps the unit's session and queues commands sent
		// while it is offline; duplicates are recognised by request id.
		SetCleanSession(o.Clean).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(false).
		SetCustomOpenConnectionFn(p.dial)
	if o.Username != "" {
		po.SetUsername(o.Username).SetPassword(o.Password)
	}
	if o.WillTopic != "" {
		po.SetBinaryWill(o.WillTopic, o.Will, 1, true)
	}
	if o.OnMessage != nil {
		h := o.OnMessage
		po.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { h(m.Topic(), m.Payload()) })
	}
	if o.OnLost != nil {
		h := o.OnLost
		po.SetConnectionLostHandler(func(_ mqtt.Client, err error) { h(err) })
	}
	p.c = mqtt.NewClient(po)
	return p
}

// dial opens the network connection for paho: TCP, metered, with TLS on
// top for ssl://, tls:// and mqtts:// brokers.
func (p *pahoClient) dial(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.o.ConnectTimeout)
	defer cancel()
	d := net.Dialer{KeepAlive: -1} // MQTT's keep-alive watches the link; TCP's would cost data
	raw, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		raw.Close()
		return nil, errors.New("client discarded")
	}
	p.raw = raw
	p.mu.Unlock()
	if p.o.OnDial != nil {
		p.o.OnDial(raw.LocalAddr())
	}
	var c net.Conn = &meteredConn{Conn: raw, onRead: p.o.OnRead, onWrite: p.o.OnWrite, writeTimeout: p.o.WriteTimeout}
	switch u.Scheme {
	case "ssl", "tls", "mqtts", "tcps":
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if p.o.TLS != nil {
			cfg = p.o.TLS.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", u.Host, err)
		}
		c = tc
	}
	return c, nil
}

// wait waits for a paho token within ctx; paho tokens can otherwise wait
// forever.
func wait(ctx context.Context, t mqtt.Token, what string) error {
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return fmt.Errorf("uplink: %s: %w", what, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("uplink: %s: %w", what, ctx.Err())
	}
}

func (p *pahoClient) Connect(ctx context.Context) (bool, error) {
	t := p.c.Connect()
	if err := wait(ctx, t, "connect to "+p.o.Broker); err != nil {
		if ct, ok := t.(*mqtt.ConnectToken); ok {
			switch ct.ReturnCode() {
			case 4, 5: // bad user name or password; not authorised
				return false, fmt.Errorf("%w (%w): check uplink.username and uplink.password, or the unit's certificate", err, ErrRefused)
			}
		}
		return false, err
	}
	return t.(*mqtt.ConnectToken).SessionPresent(), nil
}

func (p *pahoClient) Publish(topic string, qos byte, retained bool, payload []byte) token {
	return pahoToken{p.c.Publish(topic, qos, retained, payload)}
}

// pahoToken reports paho's "not connected" as ErrOffline.
type pahoToken struct{ t mqtt.Token }

func (t pahoToken) Done() <-chan struct{} { return t.t.Done() }

func (t pahoToken) Error() error {
	err := t.t.Error()
	if errors.Is(err, mqtt.ErrNotConnected) {
		return ErrOffline
	}
	return err
}

func (p *pahoClient) Subscribe(ctx context.Context, filter string, qos byte) error {
	t := p.c.Subscribe(filter, qos, nil) // every message goes to OnMessage
	if err := wait(ctx, t, "subscribe "+filter); err != nil {
		return err
	}
	if st, ok := t.(*mqtt.SubscribeToken); ok {
		if q, ok := st.Result()[filter]; ok && q > 2 {
			return fmt.Errorf("uplink: subscribe %s: %w (return code %#x): the unit's ACL does not allow it", filter, ErrRefused, q)
		}
	}
	return nil
}

func (p *pahoClient) Disconnect(quiesce time.Duration) {
	if p.c.IsConnectionOpen() {
		p.c.Disconnect(uint(quiesce / time.Millisecond))
	}
	p.mu.Lock()
	p.closed = true
	raw := p.raw
	p.mu.Unlock()
	if raw != nil {
		raw.Close() // unblocks a client stuck on the socket
	}
	if !p.c.IsConnectionOpen() {
		// Stops paho's workers if the connection was lost meanwhile;
		// bounded by the zero quiesce.
		p.c.Disconnect(0)
	}
}

// meteredConn counts the bytes crossing a network connection and puts a
// deadline on every write, so that a link that swallows packets cannot
// block a writer forever.
type meteredConn struct {
	net.Conn
	onRead, onWrite func(n int)
	writeTimeout    time.Duration
}

func (c *meteredConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.onRead != nil {
		c.onRead(n)
	}
	return n, err
}

func (c *meteredConn) Write(b []byte) (int, error) {
	if c.writeTimeout > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Write(b)
	if n > 0 && c.onWrite != nil {
		c.onWrite(n)
	}
	return n, err
}
