package uplink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// CheckLink connects to the broker as the unit does (same address,
// credentials and TLS files) under a client id of its own and a clean
// session, so that a running agent is not disturbed; it publishes a
// message on the unit's check topic and waits for the broker to deliver it
// back. It returns the time to connect and the round trip.
func CheckLink(ctx context.Context, o Options) (connect, roundTrip time.Duration, err error) {
	s := NewSession(slog.New(slog.DiscardHandler), o)
	tlsCfg, err := s.tlsConfig()
	if err != nil {
		return 0, 0, err
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	topic := s.opts.Topics.Base() + "check/" + hex.EncodeToString(id[:])
	got := make(chan struct{}, 1)
	c := s.factory(clientOptions{
		Broker: s.opts.Broker, ClientID: "outpost-check-" + s.opts.Topics.Unit + "-" + hex.EncodeToString(id[:2]),
		Username: s.opts.Username, Password: s.opts.Password, TLS: tlsCfg, Clean: true,
		KeepAlive: 30 * time.Second, ConnectTimeout: s.opts.ConnectTimeout, WriteTimeout: s.opts.WriteTimeout,
		OnMessage: func(t string, _ []byte) {
			if t == topic {
				select {
				case got <- struct{}{}:
				default:
				}
			}
		},
		OnLost: func(error) {}, OnRead: func(int) {}, OnWrite: func(int) {}, OnDial: func(net.Addr) {},
	})
	defer c.Disconnect(250 * time.Millisecond)
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, s.opts.ConnectTimeout)
	_, err = c.Connect(cctx)
	cancel()
	if err != nil {
		return 0, 0, err
	}
	connect = time.Since(start)
	if err := c.Subscribe(ctx, topic, 1); err != nil {
		return connect, 0, fmt.Errorf("uplink: subscribing to %s: %w", topic, err)
	}
	start = time.Now()
	if err := waitToken(ctx, &conn{c: c, lost: make(chan struct{})}, c.Publish(topic, 1, false, []byte("check")), "check"); err != nil {
		return connect, 0, err
	}
	select {
	case <-got:
		return connect, time.Since(start), nil
	case <-ctx.Done():
		return connect, 0, fmt.Errorf("uplink: the broker accepted a message on %s but did not deliver it back: check the broker's ACL lets the unit read its own topics", topic)
	}
}
