package control

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// conn is what the control client needs of an MQTT connection. paho is
// wrapped here once for the control-room side, as uplink wraps it for the
// unit.
type conn interface {
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
	Subscribe(ctx context.Context, filter string, qos byte, h func(topic string, payload []byte)) error
	Unsubscribe(ctx context.Context, filters ...string) error
	Close()
}

// Options says how to reach the fleet's broker.
type Options struct {
	Broker   string // tcp://host:port or ssl://host:port
	Username string
	Password string
	CAFile   string
	CertFile string
	KeyFile  string
	// Prefix is the topic prefix of the fleet (default "outpost").
	Prefix string
	// ClientID defaults to a random "outpostctl-…" id.
	ClientID string
}

func tlsConfig(o Options) (*tls.Config, error) {
	if o.CAFile == "" && o.CertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("control: --ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("control: --ca %s holds no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" || o.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("control: --cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

type pahoConn struct{ c mqtt.Client }

// ErrBroker wraps failures to reach the broker, so callers can tell a
// broker problem from a unit problem.
var ErrBroker = errors.New("control: cannot reach the broker")

func dial(ctx context.Context, o Options) (conn, error) {
	tc, err := tlsConfig(o)
	if err != nil {
		return nil, err
	}
	po := mqtt.NewClientOptions().AddBroker(o.Broker).SetClientID(o.ClientID).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(false).
		SetKeepAlive(30 * time.Second).SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(20 * time.Second).SetOrderMatters(true)
	if o.Username != "" {
		po.SetUsername(o.Username).SetPassword(o.Password)
	}
	if tc != nil {
		po.SetTLSConfig(tc)
	}
	// Ordered delivery: chunks of a transfer arrive in the order sent, so a
	// gap is a loss, not a reordering. Handlers only hand messages to a
	// channel, so ordering never stalls the client.
	c := mqtt.NewClient(po)
	if err := wait(ctx, c.Connect()); err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrBroker, o.Broker, err)
	}
	return &pahoConn{c}, nil
}

func wait(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pahoConn) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	if err := wait(ctx, p.c.Publish(topic, qos, retained, payload)); err != nil {
		return fmt.Errorf("control: publish %s: %w", topic, err)
	}
	return nil
}

func (p *pahoConn) Subscribe(ctx context.Context, filter string, qos byte, h func(string, []byte)) error {
	t := p.c.Subscribe(filter, qos, func(_ mqtt.Client, m mqtt.Message) { h(m.Topic(), m.Payload()) })
	if err := wait(ctx, t); err != nil {
		return fmt.Errorf("control: subscribe %s: %w", filter, err)
	}
	if st, ok := t.(*mqtt.SubscribeToken); ok {
		for f, q := range st.Result() {
			if q == 0x80 {
				return fmt.Errorf("control: the broker refused the subscription to %s: check this client's ACL", f)
			}
		}
	}
	return nil
}

func (p *pahoConn) Unsubscribe(ctx context.Context, filters ...string) error {
	return wait(ctx, p.c.Unsubscribe(filters...))
}

func (p *pahoConn) Close() { p.c.Disconnect(250) }
