package testbroker

import (
	"net"
	"strconv"
)

// Via returns a Broker value that points at addr (a proxy in front of this
// broker) for clients that should reach it through that proxy. Only its
// address fields are set: it cannot stop or restart the broker.
func (b *Broker) Via(addr string) *Broker {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return &Broker{Host: host, Port: p, Dir: b.Dir}
}
