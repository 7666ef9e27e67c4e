package vedirect

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/internal/ptytest"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// readerOpener opens a fresh reader each time, counting opens and closes.
type readerOpener struct {
	mu            sync.Mutex
	data          string
	err           error
	opens, closes int
}

type closer struct {
	io.Reader
	o *readerOpener
}

func (c closer) Close() error {
	c.o.mu.Lock()
	defer c.o.mu.Unlock()
	c.o.closes++
	return nil
}

func (o *readerOpener) open(ctx context.Context) (io.ReadCloser, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return nil, o.err
	}
	o.opens++
	return closer{strings.NewReader(o.data), o}, nil
}

func TestSensorRead(t *testing.T) {
	noise, err := os.ReadFile(filepath.Join("testdata", "noise.txt"))
	if err != nil {
		t.Fatal(err)
	}
	denied := errors.New("open /dev/ttyUSB0: permission denied")
	tests := []struct {
		name    string
		o       *readerOpener
		wantV   string
		wantErr string
	}{
		{"good block", &readerOpener{data: enc(mpptBlock)}, "12.85", ""},
		{"first of several", &readerOpener{data: enc(mpptBlock) + enc(Block{{"V", "1000"}})}, "12.85", ""},
		{"noise then good", &readerOpener{data: string(noise)}, "13.1", ""},
		{"only bad blocks", &readerOpener{data: string(noise[:len(noise)-1])}, "", "stream ended before a valid block"},
		{"open fails", &readerOpener{err: denied}, "", "permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSensor("test", tt.o.open, time.Second, clock.NewFake(t0), quiet())
			r, err := s.Read(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Read error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if got := fmtp(r.BatteryV); got != tt.wantV || !r.Time.Equal(t0) {
				t.Errorf("BatteryV %s at %v, want %s at %v", got, r.Time, tt.wantV, t0)
			}
			if tt.o.opens != 1 || tt.o.closes != 1 {
				t.Errorf("opened %d times, closed %d; want 1, 1", tt.o.opens, tt.o.closes)
			}
		})
	}
}

// TestSensorTimeout reads a stream that never sends anything.
func TestSensorTimeout(t *testing.T) {
	var pw *io.PipeWriter
	open := func(ctx context.Context) (io.ReadCloser, error) {
		var pr *io.PipeReader
		pr, pw = io.Pipe()
		return pr, nil
	}
	s := NewSensor("test", open, 50*time.Millisecond, clock.NewFake(t0), quiet())
	_, err := s.Read(context.Background())
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "nothing received") {
		t.Fatalf("Read error %v, want a timeout saying nothing was received", err)
	}
	pw.Close()
}

// TestSensorPTY plays a charge controller on the master side of a real
// pseudo-terminal and reads it through the serial library on the slave
// side: noise, a damaged block, a hex frame, then good blocks.
func TestSensorPTY(t *testing.T) {
	master, path := ptytest.Open(t)
	noise, err := os.ReadFile(filepath.Join("testdata", "noise.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer playController(master, noise)()

	s := Open(path, 2*time.Second, clock.NewFake(t0), quiet())
	for i := range 3 { // each Read opens and closes the port afresh
		r, err := s.Read(context.Background())
		if err != nil {
			t.Fatalf("Read %d: %v", i, err)
		}
		if fmtp(r.BatteryV) != "13.1" || fmtp(r.BatteryA) != "-0.25" || r.ChargeState != "float" || r.SOCPercent != nil {
			t.Fatalf("Read %d: %+v", i, r)
		}
	}
}

func TestSensorPortMissing(t *testing.T) {
	s := Open(filepath.Join(t.TempDir(), "ttyUSB9"), time.Second, clock.NewFake(t0), quiet())
	_, err := s.Read(context.Background())
	if err == nil || !strings.Contains(err.Error(), "check the VE.Direct cable") {
		t.Fatalf("Read error %v, want one saying what to check", err)
	}
}

// playController writes data to master every 20 ms until stop is called.
func playController(master *os.File, data []byte) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := master.Write(data); err != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); master.Close(); wg.Wait() }
}

// TestSensorReplugged reads through a symlink, as /dev/serial/by-id is, to
// a pty that then disappears, and to a new one that takes its place: the
// reading in between fails with an error, and the next one succeeds.
func TestSensorReplugged(t *testing.T) {
	link := filepath.Join(t.TempDir(), "usb-VictronEnergy")
	good := AppendBlock(nil, Block{{"V", "12000"}, {"SOC", "500"}})
	master, path := ptytest.Open(t)
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	stop := playController(master, good)
	s := Open(link, time.Second, clock.NewFake(t0), quiet())
	if _, err := s.Read(context.Background()); err != nil {
		stop()
		t.Fatalf("first Read: %v", err)
	}
	stop() // unplugged
	_, err := s.Read(context.Background())
	if err == nil {
		t.Fatal("Read of an unplugged device succeeded")
	}
	t.Logf("unplugged: %v", err)
	master2, path2 := ptytest.Open(t)
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(path2, link); err != nil {
		t.Fatal(err)
	}
	defer playController(master2, good)()
	r, err := s.Read(context.Background())
	if err != nil {
		t.Fatalf("Read after replugging: %v", err)
	}
	if fmtp(r.BatteryV) != "12" || fmtp(r.SOCPercent) != "50" {
		t.Errorf("reading %+v", r)
	}
}
