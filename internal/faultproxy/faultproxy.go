// Package faultproxy is a TCP proxy for tests that puts the faults of a
// cellular link between a client and a server: added latency, a bandwidth
// cap, dropped connections (now, or periodically), refused connections,
// and a black hole that swallows bytes without closing anything, as a
// carrier NAT does when it forgets a flow.
//
// It listens on 127.0.0.1 only and forwards to a loopback address only:
// it is test equipment, never a network service.
package faultproxy

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// Proxy forwards connections from Addr to the target, with faults set by
// its methods. The zero value is not usable; call Start.
type Proxy struct {
	target string
	ln     net.Listener

	mu        sync.Mutex
	latency   time.Duration
	rate      int // bytes per second each way; 0: unlimited
	blackhole bool
	refuse    bool
	conns     map[*pair]struct{}
	stats     Stats
	dropEvery time.Duration
	dropStop  chan struct{}
	closed    bool

	wg sync.WaitGroup
}

// Stats counts what the proxy did.
type Stats struct {
	Accepted, Refused, Dropped int
	// Open is the number of connections open now.
	Open int
	// BytesUp flowed client to server, BytesDown server to client;
	// Swallowed vanished into the black hole.
	BytesUp, BytesDown, Swallowed int64
}

// Start listens on 127.0.0.1 on a free port and forwards to target, which
// must be a loopback address (127.0.0.0/8, ::1 or localhost) and port.
func Start(target string) (*Proxy, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: target %q: %w", target, err)
	}
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("faultproxy: target %q is not a loopback address: the proxy only forwards to 127.0.0.1, ::1 or localhost", target)
		}
	}
	if port == "" || port == "0" {
		return nil, fmt.Errorf("faultproxy: target %q has no port", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[*pair]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port, to give the client.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetLatency delays every byte by d in each direction (d each way).
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// SetBandwidth caps each direction of each connection at bytesPerSecond;
// 0 removes the cap.
func (p *Proxy) SetBandwidth(bytesPerSecond int) {
	p.mu.Lock()
	p.rate = bytesPerSecond
	p.mu.Unlock()
}

// SetBlackhole on: bytes in either direction are read and discarded, and
// nothing is closed. A connection that lost bytes stays swallowed for good
// (its stream is broken); connections made after the black hole ends work.
func (p *Proxy) SetBlackhole(on bool) {
	p.mu.Lock()
	p.blackhole = on
	p.mu.Unlock()
}

// SetRefuse on: new connections are closed at once, as by a server that
// is down.
func (p *Proxy) SetRefuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

// Drop closes every open connection now and returns how many there were.
func (p *Proxy) Drop() int {
	p.mu.Lock()
	ps := make([]*pair, 0, len(p.conns))
	for c := range p.conns {
		ps = append(ps, c)
	}
	p.stats.Dropped += len(ps)
	p.mu.Unlock()
	for _, c := range ps {
		c.close()
	}
	return len(ps)
}

// DropEvery drops every open connection every d; 0 stops.
func (p *Proxy) DropEvery(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dropStop != nil {
		close(p.dropStop)
		p.dropStop = nil
	}
	p.dropEvery = d
	if d <= 0 || p.closed {
		return
	}
	stop := make(chan struct{})
	p.dropStop = stop
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.Drop()
			}
		}
	}()
}

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Open = len(p.conns)
	return s
}

// Close stops listening, closes every connection and waits for every
// goroutine of the proxy to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if p.dropStop != nil {
		close(p.dropStop)
		p.dropStop = nil
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.Drop()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		refuse, closed := p.refuse, p.closed
		if refuse {
			p.stats.Refused++
		}
		p.mu.Unlock()
		if refuse || closed {
			c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			p.mu.Lock()
			p.stats.Refused++
			p.mu.Unlock()
			c.Close()
			continue
		}
		pr := &pair{client: c, server: s, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			pr.close()
			continue
		}
		p.conns[pr] = struct{}{}
		p.stats.Accepted++
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(pr, c, s, true)
		go p.pipe(pr, s, c, false)
	}
}

// pair is one proxied connection.
type pair struct {
	client, server net.Conn
	once           sync.Once
	done           chan struct{}
	mu             sync.Mutex
	swallowed      bool
}

func (c *pair) close() {
	c.once.Do(func() {
		close(c.done)
		c.client.Close()
		c.server.Close()
	})
}

type chunk struct {
	b  []byte
	at time.Time // when it may be delivered
}

// pipe copies src to dst with the proxy's faults. A reader goroutine keeps
// reading (so that a black hole never pushes back on the sender) and
// queues chunks for a writer that waits out the latency and the bandwidth.
func (p *Proxy) pipe(c *pair, src, dst net.Conn, up bool) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.close()
	}()
	queue := make(chan chunk, 1024)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(queue)
		buf := make([]byte, 16<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.mu.Lock()
				hole, lat := p.blackhole, p.latency
				p.mu.Unlock()
				c.mu.Lock()
				if hole {
					c.swallowed = true
				}
				gone := c.swallowed
				c.mu.Unlock()
				if gone {
					p.mu.Lock()
					p.stats.Swallowed += int64(n)
					p.mu.Unlock()
				} else {
					select {
					case queue <- chunk{b: append([]byte(nil), buf[:n]...), at: time.Now().Add(lat)}:
					case <-c.done:
						return
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer wg.Wait()
	var next time.Time // the bandwidth cap's earliest next write
	for ch := range queue {
		if !p.wait(c, ch.at) {
			return
		}
		for b := ch.b; len(b) > 0; {
			p.mu.Lock()
			rate := p.rate
			p.mu.Unlock()
			n := len(b)
			if rate > 0 {
				n = min(n, max(rate/20, 1)) // about 50 ms worth at a time
				if !p.wait(c, next) {
					return
				}
			}
			if _, err := dst.Write(b[:n]); err != nil {
				return
			}
			p.mu.Lock()
			if up {
				p.stats.BytesUp += int64(n)
			} else {
				p.stats.BytesDown += int64(n)
			}
			p.mu.Unlock()
			if rate > 0 {
				if now := time.Now(); next.Before(now) {
					next = now
				}
				next = next.Add(time.Duration(n) * time.Second / time.Duration(rate))
			}
			b = b[n:]
		}
	}
	// The source ended: a link that drops closes both ways (the deferred
	// close), rather than half-closing.
}

// wait sleeps until t, or returns false if the connection closes first.
func (p *Proxy) wait(c *pair, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-c.done:
			return false
		default:
			return true
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-c.done:
		return false
	}
}
