// Package testbroker starts a real Mosquitto broker for tests: on a free
// loopback port, with its own temporary config, waiting until it accepts
// connections, and stopped at the test's cleanup. Every test that needs
// MQTT uses it; no test uses a fixed port.
package testbroker

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Broker is a running mosquitto.
type Broker struct {
	Host string
	Port int
	// Dir holds the broker's config and log.
	Dir string

	t    testing.TB
	conf string
	cmd  *exec.Cmd
	done chan struct{}
}

// Options adds to the generated config.
type Options struct {
	// Extra lines appended to the listener's config (TLS, ACL, ...).
	Extra []string
	// Port to listen on; 0 picks a free one.
	Port int
}

// Start starts mosquitto or fails the test, saying how to install it.
func Start(t testing.TB, o Options) *Broker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/mosquitto"); statErr == nil {
			bin = "/usr/sbin/mosquitto"
		} else {
			t.Fatalf("testbroker: mosquitto is not installed: run 'make test' (installs it as root) or 'apt-get install mosquitto'")
		}
	}
	port := o.Port
	if port == 0 {
		port = FreePort(t)
	}
	dir := t.TempDir()
	b := &Broker{Host: "127.0.0.1", Port: port, Dir: dir, t: t, conf: filepath.Join(dir, "mosquitto.conf")}
	lines := []string{
		fmt.Sprintf("listener %d 127.0.0.1", port),
		"allow_anonymous true",
		"persistence false",
		"log_dest file " + filepath.Join(dir, "mosquitto.log"),
		"log_type error",
		"log_type warning",
		"log_type notice",
		"log_type information",
	}
	lines = append(lines, o.Extra...)
	if err := os.WriteFile(b.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.start(bin)
	t.Cleanup(b.Stop)
	return b
}

func (b *Broker) start(bin string) {
	b.t.Helper()
	b.cmd = exec.Command(bin, "-c", b.conf)
	b.cmd.Stdout, b.cmd.Stderr = nil, nil
	if err := b.cmd.Start(); err != nil {
		b.t.Fatalf("testbroker: start mosquitto: %v", err)
	}
	b.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(b.cmd, b.done)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitListening(ctx, b.Addr(), b.done); err != nil {
		log, _ := os.ReadFile(filepath.Join(b.Dir, "mosquitto.log"))
		b.t.Fatalf("testbroker: mosquitto did not start on %s: %v\n%s", b.Addr(), err, log)
	}
}

// Addr is host:port.
func (b *Broker) Addr() string { return net.JoinHostPort(b.Host, fmt.Sprint(b.Port)) }

// URL is tcp://host:port.
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// Stop stops the broker (SIGTERM, then SIGKILL) and waits for it to exit.
// It may be called more than once.
func (b *Broker) Stop() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	select {
	case <-b.done:
		return
	default:
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

// Kill stops the broker abruptly, as a crash would.
func (b *Broker) Kill() {
	_ = b.cmd.Process.Kill()
	<-b.done
}

// Restart starts the broker again on the same port and config.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	bin := b.cmd.Path
	b.start(bin)
}

// Log returns the broker's log so far, for failure messages.
func (b *Broker) Log() string {
	log, _ := os.ReadFile(filepath.Join(b.Dir, "mosquitto.log"))
	return string(log)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitListening(ctx context.Context, addr string, exited <-chan struct{}) error {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("mosquitto exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
