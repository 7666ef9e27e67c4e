// Package demobroker runs an embedded MQTT broker for `outpost demo`, so a
// newcomer sees a unit working with nothing else installed. Units in the
// field use a real broker; this one listens on loopback only and keeps
// nothing on disk.
package demobroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Broker is a running embedded broker.
type Broker struct {
	Addr string // host:port it listens on
	srv  *mqtt.Server
}

// ErrAddrInUse is returned when the requested address is taken.
var ErrAddrInUse = errors.New("address already in use")

// Start listens on addr. When pickFree is true and addr's port is taken, the
// next free ports (up to 20) are tried; otherwise a busy port is an error.
func Start(ctx context.Context, log *slog.Logger, addr string, pickFree bool) (*Broker, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("demo broker: --listen %q: want HOST:PORT, e.g. 127.0.0.1:1883", addr)
	}
	var ln net.Listener
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil {
		return nil, fmt.Errorf("demo broker: --listen %q: port is not a number", addr)
	}
	tries := 1
	if pickFree {
		tries = 20
	}
	var lc net.ListenConfig
	for i := 0; i < tries; i++ {
		a := net.JoinHostPort(host, fmt.Sprint(p+i))
		ln, err = lc.Listen(ctx, "tcp", a)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("demo broker: listen on %s: %w", a, err)
		}
	}
	if ln == nil {
		if pickFree {
			return nil, fmt.Errorf("demo broker: ports %d-%d on %s are all in use: %w; pass --listen %s:PORT with a free port", p, p+tries-1, host, ErrAddrInUse, host)
		}
		return nil, fmt.Errorf("demo broker: %s: %w; stop whatever listens there (e.g. a mosquitto service) or pass another --listen", addr, ErrAddrInUse)
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: false, Logger: log.With("component", "demo-broker")})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("demo broker: %w", err)
	}
	l := listeners.NewNet("demo", ln)
	if err := srv.AddListener(l); err != nil {
		ln.Close()
		return nil, fmt.Errorf("demo broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("demo broker: %w", err)
	}
	return &Broker{Addr: ln.Addr().String(), srv: srv}, nil
}

// URL is the broker's address as an MQTT URL.
func (b *Broker) URL() string { return "tcp://" + b.Addr }

// Close stops the broker.
func (b *Broker) Close() error { return b.srv.Close() }
