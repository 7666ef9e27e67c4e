package uplink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// mqttClient is all the session needs of an MQTT client.
type mqttClient interface {
	Connect(ctx context.Context) error
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
	Subscribe(ctx context.Context, filter string, qos byte, h func(topic string, payload []byte)) error
	Disconnect(quiesce time.Duration)
}

// clientOptions is what a factory needs to build a client.
type clientOptions struct {
	Broker    string
	ClientID  string
	Username  string
	Password  string
	TLS       *tls.Config
	KeepAlive time.Duration
	WillTopic string
	Will      []byte
	// OnConnect runs after every successful (re)connection; OnLost when
	// the connection drops. Both run on the client's goroutine and must
	// not block.
	OnConnect func()
	OnLost    func(error)
}

type clientFactory func(clientOptions) mqttClient

// pahoClient adapts paho to mqttClient, bounding every token wait by ctx.
type pahoClient struct{ c mqtt.Client }

func newPahoClient(o clientOptions) mqttClient {
	po := mqtt.NewClientOptions().
		AddBroker(o.Broker).
		SetClientID(o.ClientID).
		SetKeepAlive(o.KeepAlive).
		SetPingTimeout(10 * time.Second).
		SetConnectTimeout(20 * time.Second).
		SetWriteTimeout(20 * time.Second).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectRetry(false).
		SetMaxReconnectInterval(time.Minute).
		SetOrderMatters(false)
	if o.Username != "" {
		po.SetUsername(o.Username).SetPassword(o.Password)
	}
	if o.TLS != nil {
		po.SetTLSConfig(o.TLS)
	}
	if o.WillTopic != "" {
		po.SetBinaryWill(o.WillTopic, o.Will, 1, true)
	}
	if o.OnConnect != nil {
		po.SetOnConnectHandler(func(mqtt.Client) { o.OnConnect() })
	}
	if o.OnLost != nil {
		po.SetConnectionLostHandler(func(_ mqtt.Client, err error) { o.OnLost(err) })
	}
	return &pahoClient{c: mqtt.NewClient(po)}
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

func (p *pahoClient) Connect(ctx context.Context) error {
	return wait(ctx, p.c.Connect(), "connect")
}

func (p *pahoClient) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	if !p.c.IsConnectionOpen() {
		return ErrOffline
	}
	return wait(ctx, p.c.Publish(topic, qos, retained, payload), "publish "+topic)
}

func (p *pahoClient) Subscribe(ctx context.Context, filter string, qos byte, h func(string, []byte)) error {
	return wait(ctx, p.c.Subscribe(filter, qos, func(_ mqtt.Client, m mqtt.Message) {
		h(m.Topic(), m.Payload())
	}), "subscribe "+filter)
}

func (p *pahoClient) Disconnect(quiesce time.Duration) {
	p.c.Disconnect(uint(quiesce / time.Millisecond))
}

// ErrOffline is returned by Publish while there is no connection. Callers
// that must not lose a message keep it (the outbox) and retry.
var ErrOffline = errors.New("uplink: not connected to the broker")
