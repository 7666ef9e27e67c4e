package vedirect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.bug.st/serial"

	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// DefaultTimeout is how long Read waits for a valid block: the device sends
// one a second, so three seconds allow for one damaged block and a partial
// one at the start.
const DefaultTimeout = 3 * time.Second

// Opener opens the byte stream of the device, e.g. its serial port.
type Opener func(ctx context.Context) (io.ReadCloser, error)

// Sensor reads a VE.Direct device. Each Read opens the stream, returns the
// first complete block with a right checksum, which, since the stream was
// just opened, is the latest the device sent, and closes the stream again.
// So a cable pulled out and put back, or a USB adapter that re-enumerates,
// costs one failed Read and nothing more.
type Sensor struct {
	name    string
	open    Opener
	clk     clock.Clock
	log     *slog.Logger
	timeout time.Duration

	mu      sync.Mutex // serialises Reads: the port has one reader
	lastErr string     // last field error logged, to log each once
}

var _ power.Sensor = (*Sensor)(nil)

// NewSensor returns a sensor reading the stream open returns; name says
// which device it is in errors. A timeout of 0 means DefaultTimeout.
func NewSensor(name string, open Opener, timeout time.Duration, clk clock.Clock, log *slog.Logger) *Sensor {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Sensor{name: name, open: open, clk: clk, log: log.With("component", "vedirect"), timeout: timeout}
}

// Open returns a sensor reading the serial port at path (e.g.
// /dev/ttyUSB0) at 19200 8N1. It does not touch the port until Read.
func Open(path string, timeout time.Duration, clk clock.Clock, log *slog.Logger) *Sensor {
	return NewSensor(path, SerialOpener(path), timeout, clk, log)
}

// SerialOpener opens path as a VE.Direct serial port.
func SerialOpener(path string) Opener {
	return func(ctx context.Context) (io.ReadCloser, error) {
		p, err := serial.Open(path, &serial.Mode{BaudRate: 19200, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
		if err != nil {
			return nil, fmt.Errorf("vedirect: open %s: %w: check the VE.Direct cable is plugged in and the agent may use the port (dialout group)", path, err)
		}
		// A short read timeout lets Read notice its context ending.
		if err := p.SetReadTimeout(100 * time.Millisecond); err != nil {
			p.Close()
			return nil, fmt.Errorf("vedirect: %s: set read timeout: %w", path, err)
		}
		return &timeoutReader{p}, nil
	}
}

// timeoutReader turns the serial library's (0, nil) on a read timeout into
// errReadTimeout, so the decoder does not spin.
type timeoutReader struct{ p serial.Port }

var errReadTimeout = errors.New("vedirect: read timeout")

func (t *timeoutReader) Read(b []byte) (int, error) {
	n, err := t.p.Read(b)
	if n == 0 && err == nil {
		return 0, errReadTimeout
	}
	return n, err
}

func (t *timeoutReader) Close() error { return t.p.Close() }

// Read returns the latest valid block as a reading. It fails, saying what
// to check, when the port cannot be opened or no valid block arrives within
// the timeout.
func (s *Sensor) Read(ctx context.Context) (power.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rc, err := s.open(ctx)
	if err != nil {
		return power.Reading{}, err
	}
	var once sync.Once
	var closeErr error
	closeIt := func() { once.Do(func() { closeErr = rc.Close() }) }
	// Closing the stream unblocks a Read that ignores timeouts.
	stop := context.AfterFunc(ctx, closeIt)
	b, stats, err := s.next(ctx, rc)
	stop()
	closeIt()
	if err != nil {
		return power.Reading{}, err
	}
	if closeErr != nil {
		s.log.Debug("close port", "port", s.name, "err", closeErr)
	}
	v, ferr := Decode(b)
	if ferr != nil && ferr.Error() != s.lastErr {
		s.log.Warn("fields out of range, reported as unknown", "port", s.name, "err", ferr)
	}
	s.lastErr = ""
	if ferr != nil {
		s.lastErr = ferr.Error()
	}
	if stats.bad > 0 {
		s.log.Debug("blocks discarded", "port", s.name, "count", stats.bad, "last", stats.lastBad)
	}
	return v.Reading(s.clk.Now()), nil
}

type readStats struct {
	bytes   int64
	bad     int
	lastBad error
}

type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	*c.n += int64(n)
	return n, err
}

func (s *Sensor) next(ctx context.Context, r io.Reader) (Block, readStats, error) {
	var st readStats
	d := NewDecoder(countingReader{r, &st.bytes})
	for {
		b, err := d.Next()
		var be *BlockError
		switch {
		case err == nil:
			return b, st, nil
		case errors.As(err, &be):
			st.bad++
			st.lastBad = err
			continue
		case errors.Is(err, errReadTimeout) && ctx.Err() == nil:
			continue
		}
		if ctx.Err() != nil {
			if st.bytes == 0 {
				return nil, st, fmt.Errorf("vedirect: %s: nothing received in %s: check the cable's TX wire and that the device is powered: %w", s.name, s.timeout, ctx.Err())
			}
			return nil, st, fmt.Errorf("vedirect: %s: no valid block in %s (%d bytes, %d blocks discarded, last: %v): check the port runs at 19200 baud and the cable is a VE.Direct one: %w", s.name, s.timeout, st.bytes, st.bad, st.lastBad, ctx.Err())
		}
		if errors.Is(err, io.EOF) {
			return nil, st, fmt.Errorf("vedirect: %s: stream ended before a valid block: %w", s.name, err)
		}
		return nil, st, fmt.Errorf("vedirect: %s: read: %w: check the device is still connected", s.name, err)
	}
}
