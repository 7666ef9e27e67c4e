package watchdog

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
)

// fakeDev records what is written; writes fail once failWrites is set.
type fakeDev struct {
	mu         sync.Mutex
	written    []byte
	closed     bool
	failWrites bool
}

func (d *fakeDev) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failWrites {
		return 0, errors.New("write /dev/watchdog: input/output error")
	}
	d.written = append(d.written, b...)
	return len(b), nil
}

func (d *fakeDev) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

func (d *fakeDev) state() (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return string(d.written), d.closed
}

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		health     []bool // one per tick
		failWrites bool
		want       string
		wantErr    bool
	}{
		{"healthy", []bool{true, true, true}, false, "\n\n\nV", false},
		{"unhealthy stops feeding", []bool{true, false, false, true}, false, "\n\nV", false},
		{"never healthy", []bool{false, false}, false, "V", false},
		{"write fails", []bool{true}, true, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
			dev := &fakeDev{failWrites: tt.failWrites}
			w, err := New(dev, 5*time.Second, clk, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			asked := make(chan bool)
			var i int
			healthy := func() bool {
				ok := tt.health[i]
				i++
				asked <- ok
				return ok
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx, healthy) }()
			for range tt.health {
				for clk.Waiters() == 0 {
					<-time.After(time.Millisecond)
				}
				clk.Advance(5 * time.Second)
				<-asked
			}
			if tt.wantErr {
				if err := <-done; err == nil || !strings.Contains(err.Error(), "will reboot") {
					t.Fatalf("Run = %v, want a write error", err)
				}
				cancel()
				return
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got, closed := dev.state(); got != tt.want || !closed {
				t.Errorf("wrote %q, closed %v; want %q, closed", got, closed, tt.want)
			}
		})
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "watchdog"))
	if err == nil || !strings.Contains(err.Error(), "check the watchdog is enabled") {
		t.Fatalf("Open = %v", err)
	}
}

func TestNewInterval(t *testing.T) {
	if _, err := New(&fakeDev{}, 0, clock.NewFake(time.Time{}), slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("New accepted interval 0")
	}
}

// TestOpenFile feeds a plain file standing in for the device, checking the
// real file path end to end.
func TestOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "watchdog")
	if err := writeFile(path); err != nil {
		t.Fatal(err)
	}
	dev, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := New(dev, time.Second, clock.NewFake(time.Time{}), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx, func() bool { return true }); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != "V" {
		t.Errorf("device got %q, want the magic V", got)
	}
}

func writeFile(path string) error { return os.WriteFile(path, nil, 0o600) }

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
