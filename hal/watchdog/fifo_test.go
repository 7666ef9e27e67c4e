//go:build unix

package watchdog

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
)

// TestFIFO feeds a named pipe standing in for /dev/watchdog, read from the
// other end as the driver would: the feeds come through only while the
// health check passes, then the magic 'V', then the end of the stream when
// the device is closed.
func TestFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "watchdog")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	// Open the reading end first, or opening the writing end blocks.
	rd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	dev, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	w, err := New(dev, 5*time.Second, clk, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	health := []bool{true, false, true}
	asked := make(chan struct{})
	var i int
	healthy := func() bool {
		defer func() { asked <- struct{}{} }()
		ok := health[i]
		i++
		return ok
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, healthy) }()
	for range health {
		for clk.Waiters() == 0 {
			time.Sleep(time.Millisecond)
		}
		clk.Advance(5 * time.Second)
		<-asked
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Run has closed the writing end: the reader gets all, then EOF.
	if err := syscall.SetNonblock(int(rd.Fd()), false); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "\n\nV" {
		t.Errorf("the device read %q, want two feeds and the magic V", got)
	}
}
