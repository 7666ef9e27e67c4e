package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoServer echoes every connection until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func start(t *testing.T) *Proxy {
	t.Helper()
	p, err := Start(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes b and reads it back, within 10 s.
func roundTrip(t *testing.T, c net.Conn, b []byte) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(b))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b) {
		t.Fatal("echo differs")
	}
	return time.Since(start)
}

func TestForwards(t *testing.T) {
	p := start(t)
	c := dial(t, p)
	roundTrip(t, c, []byte("hello"))
	// The proxy counts a write after it returns, which may be after the
	// echo has reached the client.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := p.Stats()
		if st.Accepted == 1 && st.BytesUp == 5 && st.BytesDown == 5 && st.Open == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLatency(t *testing.T) {
	p := start(t)
	p.SetLatency(100 * time.Millisecond)
	c := dial(t, p)
	if rtt := roundTrip(t, c, []byte("x")); rtt < 200*time.Millisecond {
		t.Fatalf("round trip %s with 100 ms each way", rtt)
	}
}

func TestBandwidth(t *testing.T) {
	p := start(t)
	p.SetBandwidth(64 << 10)
	c := dial(t, p)
	// 32 KiB up then down at 64 KiB/s each way: at least half a second
	// in total (a quarter each way, pipelined).
	if took := roundTrip(t, c, bytes.Repeat([]byte("b"), 32<<10)); took < 450*time.Millisecond {
		t.Fatalf("32 KiB echoed in %s at 64 KiB/s", took)
	}
}

func TestDrop(t *testing.T) {
	p := start(t)
	c := dial(t, p)
	roundTrip(t, c, []byte("x"))
	if n := p.Drop(); n != 1 {
		t.Fatalf("dropped %d", n)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after a drop: %v", err)
	}
	// New connections work.
	roundTrip(t, dial(t, p), []byte("again"))
}

func TestDropEvery(t *testing.T) {
	p := start(t)
	p.DropEvery(50 * time.Millisecond)
	c := dial(t, p)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v", err)
	}
	p.DropEvery(0)
	if st := p.Stats(); st.Dropped < 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBlackhole(t *testing.T) {
	p := start(t)
	c := dial(t, p)
	roundTrip(t, c, []byte("before"))
	p.SetBlackhole(true)
	c.Write([]byte("into the hole"))
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from a black hole: %v (want a timeout: nothing arrives, nothing closes)", err)
	}
	// New connections are swallowed too while it lasts.
	c2 := dial(t, p)
	c2.Write([]byte("x"))
	c2.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c2.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("new connection in the black hole: %v", err)
	}
	p.SetBlackhole(false)
	// A swallowed connection stays broken; a new one works.
	c.Write([]byte("after"))
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("swallowed connection came back: %v", err)
	}
	roundTrip(t, dial(t, p), []byte("fresh"))
	if st := p.Stats(); st.Swallowed < int64(len("into the hole")) {
		t.Fatalf("stats %+v", st)
	}
}

func TestRefuse(t *testing.T) {
	p := start(t)
	p.SetRefuse(true)
	c := dial(t, p)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on a refused connection: %v", err)
	}
	p.SetRefuse(false)
	roundTrip(t, dial(t, p), []byte("ok"))
}

func TestOnlyLoopback(t *testing.T) {
	for _, target := range []string{"192.0.2.1:1883", "example.com:1883", "0.0.0.0:1883", "127.0.0.1", "127.0.0.1:0"} {
		if p, err := Start(target); err == nil {
			p.Close()
			t.Errorf("Start(%q) accepted", target)
		}
	}
	for _, target := range []string{"127.0.0.1:1", "[::1]:1", "localhost:1"} {
		p, err := Start(target)
		if err != nil {
			t.Errorf("Start(%q): %v", target, err)
			continue
		}
		if !strings.HasPrefix(p.Addr(), "127.0.0.1:") {
			t.Errorf("listens on %s", p.Addr())
		}
		p.Close()
	}
}

// Close ends every goroutine the proxy started.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	target := echoServer(t)
	base := runtime.NumGoroutine()
	p, err := Start(target)
	if err != nil {
		t.Fatal(err)
	}
	p.SetLatency(10 * time.Millisecond)
	p.DropEvery(time.Hour)
	var cs []net.Conn
	for range 5 {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
		roundTrip(t, c, []byte("x"))
	}
	p.SetBlackhole(true)
	cs[0].Write([]byte("lost"))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		c.Close()
	}
	// The echo server's goroutines for these connections end as the
	// closes reach it.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}
