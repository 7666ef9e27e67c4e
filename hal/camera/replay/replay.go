// Package replay plays a raw MJPEG file (JPEG images back to back, as
// `ffmpeg -f mjpeg` writes them) as a camera: for demonstrations, for
// testing the agent on recorded footage, and for benchmarks.
//
// A raw MJPEG stream carries no timing, so frames are paced at the
// configured rate (Config.FPS), each stamped with the time it is
// delivered; a reader that falls behind gets the next frame at once, and
// one that falls more than a second behind starts a new schedule rather
// than a burst. Config.Fast delivers frames as fast as they can be read.
// The file loops unless Config.Once is set.
//
// Damaged frames in the file are dropped and counted, as from a camera. A
// file with no frame at all fails at Open.
package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/hal/camera/internal/pool"
	"github.com/outpost-cctv/outpost/hal/camera/mjpeg"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// ErrEnd is returned by Next at the end of the file when Config.Once is
// set.
var ErrEnd = fmt.Errorf("replay: end of the file: %w", io.EOF)

// Config describes the file to play.
type Config struct {
	// Path of the raw MJPEG file.
	Path string
	// FPS is the rate frames are delivered at, 1-120.
	FPS int
	// Once stops at the end of the file instead of starting over.
	Once bool
	// Fast delivers frames as fast as they can be read, ignoring FPS.
	Fast bool
	// MaxFrameSize caps a frame; larger ones are dropped. 0 means 4 MiB.
	MaxFrameSize int
	// Meter records health; nil makes one.
	Meter *camera.Meter
}

// Camera plays a file. Next must not be called concurrently with itself;
// Close, Health and Recycle may be called at any time.
type Camera struct {
	cfg      Config
	clk      clock.Clock
	log      *slog.Logger
	pool     *pool.Pool
	interval time.Duration
	done     chan struct{}
	once     sync.Once

	// Owned by whoever holds nextMu.
	nextMu  sync.Mutex
	f       *os.File
	rd      *mjpeg.Reader
	pending *camera.Frame
	start   time.Time // schedule origin
	k       int64     // frames delivered since start
	inPass  int       // frames read in this pass over the file
	skipped uint64
}

var (
	_ camera.Source   = (*Camera)(nil)
	_ camera.Healther = (*Camera)(nil)
)

// Open opens the file and reads its first frame.
func Open(ctx context.Context, cfg Config, clk clock.Clock, log *slog.Logger) (*Camera, error) {
	if !cfg.Fast && (cfg.FPS < 1 || cfg.FPS > 120) {
		return nil, fmt.Errorf("replay: %s: %d fps: must be 1-120", cfg.Path, cfg.FPS)
	}
	if cfg.MaxFrameSize <= 0 {
		cfg.MaxFrameSize = 4 << 20
	}
	if clk == nil {
		clk = clock.Real{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Meter == nil {
		cfg.Meter = camera.NewMeter(clk, "file:"+cfg.Path, 5*time.Second)
	}
	f, err := os.Open(cfg.Path)
	if err != nil {
		err = camera.NeedsAttention(fmt.Errorf("replay: %w", err))
		cfg.Meter.Lost(err, true)
		return nil, err
	}
	c := &Camera{cfg: cfg, clk: clk, log: log, pool: pool.New(8, cfg.MaxFrameSize), done: make(chan struct{}), f: f}
	if !cfg.Fast {
		c.interval = time.Second / time.Duration(cfg.FPS)
	}
	c.rd = mjpeg.NewReader(f, mjpeg.Options{Mode: mjpeg.Raw, MaxFrame: cfg.MaxFrameSize, Alloc: c.pool.Get})
	first, err := c.read()
	if err != nil {
		f.Close()
		if errors.Is(err, ErrEnd) {
			err = camera.NeedsAttention(fmt.Errorf("replay: %s: no JPEG frame in the file: is it raw MJPEG (ffmpeg -f mjpeg)?", cfg.Path))
		}
		cfg.Meter.Lost(err, errors.Is(err, camera.ErrNeedsAttention))
		return nil, err
	}
	c.pending = &first
	mode := fmt.Sprintf("MJPEG %dx%d from a file @ %d fps", first.Width, first.Height, cfg.FPS)
	if cfg.Fast {
		mode = fmt.Sprintf("MJPEG %dx%d from a file, as fast as it reads", first.Width, first.Height)
	}
	cfg.Meter.Connected(mode)
	log.Info("camera opened", "camera", "file:"+cfg.Path, "mode", mode)
	return c, nil
}

// read returns the next good frame of the file, starting over at its end
// unless Once is set.
func (c *Camera) read() (camera.Frame, error) {
	for {
		data, info, err := c.rd.Next()
		if n := c.rd.Skipped(); n != c.skipped {
			c.cfg.Meter.Skipped(n - c.skipped)
			c.skipped = n
		}
		if err == nil {
			c.inPass++
			return camera.Frame{Data: data, Codec: camera.MJPEG, Width: info.Width, Height: info.Height}, nil
		}
		var bad *mjpeg.BadFrameError // declared here: errors.As moves it to the heap
		switch {
		case errors.As(err, &bad):
			c.cfg.Meter.Dropped(bad.Reason)
			continue
		case err != io.EOF:
			return camera.Frame{}, fmt.Errorf("replay: %s: %w", c.cfg.Path, err)
		case c.cfg.Once || c.inPass == 0:
			return camera.Frame{}, ErrEnd
		}
		if _, err := c.f.Seek(0, io.SeekStart); err != nil {
			return camera.Frame{}, fmt.Errorf("replay: %s: starting over: %w", c.cfg.Path, err)
		}
		c.rd.Reset(c.f)
		c.skipped, c.inPass = 0, 0
	}
}

// Next returns the next frame when it is due.
func (c *Camera) Next(ctx context.Context) (camera.Frame, error) {
	c.nextMu.Lock()
	defer c.nextMu.Unlock()
	select {
	case <-c.done:
		return camera.Frame{}, camera.ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return camera.Frame{}, err
	}
	var f camera.Frame
	if c.pending != nil {
		f, c.pending = *c.pending, nil
	} else {
		var err error
		if f, err = c.read(); err != nil {
			return camera.Frame{}, err
		}
	}
	if !c.cfg.Fast {
		if err := c.wait(ctx); err != nil {
			keep := f // a copy, so that f itself stays off the heap
			c.pending = &keep
			return camera.Frame{}, err
		}
	}
	f.Time = c.clk.Now()
	c.cfg.Meter.Frame(f.Time, f.Width, f.Height)
	return f, nil
}

// wait waits until the next frame is due.
func (c *Camera) wait(ctx context.Context) error {
	now := c.clk.Now()
	if c.start.IsZero() || now.Sub(c.start.Add(time.Duration(c.k)*c.interval)) > time.Second {
		c.start, c.k = now, 0 // the first frame, or far behind: a new schedule
	}
	due := c.start.Add(time.Duration(c.k) * c.interval)
	if d := due.Sub(now); d > 0 {
		t := c.clk.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C():
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return camera.ErrClosed
		}
	}
	c.k++
	return nil
}

// Close closes the file.
func (c *Camera) Close() error {
	var err error
	c.once.Do(func() {
		close(c.done)
		c.nextMu.Lock()
		defer c.nextMu.Unlock()
		err = c.f.Close()
		c.cfg.Meter.Closed()
	})
	return err
}

// Health implements camera.Healther.
func (c *Camera) Health() camera.Health { return c.cfg.Meter.Health() }

// Recycle hands back the Data of a frame the receiver has finished with,
// to be reused: with it, replay allocates nothing per frame. The caller
// must not touch data afterwards. Optional.
func (c *Camera) Recycle(data []byte) { c.pool.Put(data) }
