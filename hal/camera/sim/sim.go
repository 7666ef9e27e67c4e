// Package sim is a simulated camera: it delivers real baseline JPEG frames of
// a street scene, with sensor noise and a van crossing the view on a fixed
// schedule, paced by an injected clock. It lets the whole agent (capture,
// motion detection, footage store, upload) run and be tested without a
// camera attached.
//
// Every frame is encoded when the camera is created, so delivering a frame
// costs next to nothing and the simulator does not compete with the agent
// for the CPU.
package sim

import (
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"math"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// ErrClosed is returned by Next once the camera is closed.
var ErrClosed = errors.New("camera sim: closed")

// Config describes the simulated camera.
type Config struct {
	// Width and Height of the frames in pixels; positive and even.
	Width, Height int
	// FPS is the frame rate, 1-60.
	FPS int
	// MotionEvery is the period of the scripted motion: a van starts to
	// cross the view at MotionEvery, 2×MotionEvery, ... after the first
	// frame. Zero means a street without traffic.
	MotionEvery time.Duration
	// MotionDuration is how long a crossing takes; positive and shorter than
	// MotionEvery when MotionEvery is set.
	MotionDuration time.Duration
	// Quality is the JPEG quality, 1-100; zero means 75.
	Quality int
}

// DefaultConfig is a 1280×720 camera at 25 frames per second with a van
// passing every 30 seconds, taking 4 seconds to cross.
func DefaultConfig() Config {
	return Config{Width: 1280, Height: 720, FPS: 25, MotionEvery: 30 * time.Second, MotionDuration: 4 * time.Second, Quality: 75}
}

func (c Config) validate() error {
	switch {
	case c.Width <= 0 || c.Width%2 != 0:
		return fmt.Errorf("camera sim: width %d: must be positive and even", c.Width)
	case c.Height <= 0 || c.Height%2 != 0:
		return fmt.Errorf("camera sim: height %d: must be positive and even", c.Height)
	case c.Width > 8192 || c.Height > 8192:
		return fmt.Errorf("camera sim: size %dx%d: must be at most 8192x8192", c.Width, c.Height)
	case c.FPS < 1 || c.FPS > 60:
		return fmt.Errorf("camera sim: fps %d: must be 1-60", c.FPS)
	case c.Quality < 0 || c.Quality > 100:
		return fmt.Errorf("camera sim: quality %d: must be 1-100, or 0 for the default", c.Quality)
	case c.MotionEvery < 0:
		return fmt.Errorf("camera sim: motion every %v: must not be negative", c.MotionEvery)
	case c.MotionEvery > 0 && (c.MotionDuration <= 0 || c.MotionDuration >= c.MotionEvery):
		return fmt.Errorf("camera sim: motion duration %v: must be positive and shorter than motion every (%v)", c.MotionDuration, c.MotionEvery)
	}
	return nil
}

// Stats counts the frames a camera has handled.
type Stats struct {
	// Frames is the number of frames delivered by Next.
	Frames uint64
	// Dropped is the number of frame slots skipped because the consumer
	// called Next too late to take them.
	Dropped uint64
}

// Camera is a simulated camera. Next may be called from several goroutines,
// though a camera normally has a single reader; calls are served in turn.
type Camera struct {
	cfg      Config
	clk      clock.Clock
	interval time.Duration
	static   [][]byte // noise variants of the empty street
	motion   [][]byte // van positions, left to right

	done      chan struct{}
	closeOnce sync.Once

	// nextMu serialises Next; next is the index of the next frame slot.
	nextMu sync.Mutex
	next   int64

	mu      sync.Mutex // guards the fields below
	started bool
	start   time.Time
	stats   Stats
}

var _ camera.Source = (*Camera)(nil)

// New renders and encodes every frame the camera will deliver and returns
// the camera. Pacing starts with the first call to Next.
func New(cfg Config, clk clock.Clock) (*Camera, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if clk == nil {
		return nil, errors.New("camera sim: nil clock")
	}
	if cfg.Quality == 0 {
		cfg.Quality = jpeg.DefaultQuality
	}
	c := &Camera{
		cfg:      cfg,
		clk:      clk,
		interval: time.Second / time.Duration(cfg.FPS),
		static:   make([][]byte, noiseVariants),
		done:     make(chan struct{}),
	}
	l := layout{cfg.Width, cfg.Height}
	rows := (cfg.Height + stripHeight - 1) / stripHeight

	// The empty street, once per noise variant.
	var jobs []stripJob
	static := make([][][]byte, noiseVariants)
	for v := range static {
		static[v] = make([][]byte, rows)
		for r := range rows {
			jobs = append(jobs, stripJob{row: r, seed: uint64(v + 1), out: &static[v][r]})
		}
	}

	// The van at evenly spaced positions, from half out of view on the left
	// to half out on the right so that every position shows some of it.
	// Only the strips it covers are encoded.
	var motion [][][]byte
	var r0 int
	if cfg.MotionEvery > 0 {
		n := int(math.Ceil(cfg.MotionDuration.Seconds() * float64(cfg.FPS)))
		motion = make([][][]byte, max(1, min(n, maxMotionPositions)))
		y0, y1 := vanRows(l)
		r0 = max(y0, 0) / stripHeight
		r1 := min((y1+stripHeight-1)/stripHeight, rows)
		vw := l.x(vanWidth)
		for i := range motion {
			x := -vw/2 + int((float64(i)+0.5)/float64(len(motion))*float64(cfg.Width)+0.5)
			motion[i] = make([][]byte, r1-r0)
			for r := r0; r < r1; r++ {
				jobs = append(jobs, stripJob{row: r, seed: uint64(i%noiseVariants + 1), van: true, vanX: x, out: &motion[i][r-r0]})
			}
		}
	}

	header, err := encodeStrips(l, cfg.Quality, jobs)
	if err != nil {
		return nil, err
	}
	for v := range static {
		c.static[v] = joinStrips(header, static[v])
	}
	c.motion = make([][]byte, len(motion))
	strips := make([][]byte, rows)
	for i, band := range motion {
		// The same noise seed as the static variant, so the borrowed strips
		// match the re-encoded ones seamlessly.
		copy(strips, static[i%noiseVariants])
		copy(strips[r0:], band)
		c.motion[i] = joinStrips(header, strips)
	}
	return c, nil
}

// Next waits for the next frame slot and returns its frame. Frame k is due
// k frame intervals after the first call to Next. A caller that falls behind
// gets the latest due frame, never a burst of stale ones; the slots it
// missed are counted in Stats.Dropped.
func (c *Camera) Next(ctx context.Context) (camera.Frame, error) {
	if err := ctx.Err(); err != nil {
		return camera.Frame{}, err
	}
	c.nextMu.Lock()
	defer c.nextMu.Unlock()
	select {
	case <-c.done:
		return camera.Frame{}, ErrClosed
	default:
	}

	now := c.clk.Now()
	c.mu.Lock()
	if !c.started {
		c.started, c.start = true, now
	}
	start := c.start
	c.mu.Unlock()

	k := c.next
	if due := start.Add(time.Duration(k) * c.interval); now.Before(due) {
		t := c.clk.NewTimer(due.Sub(now))
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return camera.Frame{}, ctx.Err()
		case <-c.done:
			t.Stop()
			return camera.Frame{}, ErrClosed
		}
		now = c.clk.Now()
	}
	var dropped int64
	if latest := int64(now.Sub(start) / c.interval); latest > k {
		dropped, k = latest-k, latest
	}
	c.next = k + 1

	c.mu.Lock()
	c.stats.Frames++
	c.stats.Dropped += uint64(dropped)
	c.mu.Unlock()

	return camera.Frame{
		Data:   c.picture(k, now.Sub(start)),
		Codec:  camera.MJPEG,
		Time:   now,
		Width:  c.cfg.Width,
		Height: c.cfg.Height,
	}, nil
}

// picture chooses the frame shown in slot k, delivered at offset off from
// the start: the van's position if a crossing is under way, otherwise the
// empty street with the slot's noise.
func (c *Camera) picture(k int64, off time.Duration) []byte {
	if in, progress := c.crossing(off); in {
		i := min(int(progress*float64(len(c.motion))), len(c.motion)-1)
		return c.motion[i]
	}
	return c.static[k%int64(len(c.static))]
}

// crossing reports whether offset off from the start falls inside a
// scripted crossing and, if so, how far through it is (0 to 1).
func (c *Camera) crossing(off time.Duration) (bool, float64) {
	every := c.cfg.MotionEvery
	if every <= 0 || off < every {
		return false, 0
	}
	phase := off % every
	if phase >= c.cfg.MotionDuration {
		return false, 0
	}
	return true, float64(phase) / float64(c.cfg.MotionDuration)
}

// InMotion reports whether a frame delivered at t shows the crossing van.
// Crossings start at MotionEvery, 2×MotionEvery, ... after the first call
// to Next and last MotionDuration; before that first call there is no
// motion.
func (c *Camera) InMotion(t time.Time) bool {
	c.mu.Lock()
	started, start := c.started, c.start
	c.mu.Unlock()
	if !started {
		return false
	}
	in, _ := c.crossing(t.Sub(start))
	return in
}

// Stats returns the frame counters.
func (c *Camera) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Close stops the camera: a waiting Next returns, and later calls fail with
// ErrClosed. Closing twice is harmless.
func (c *Camera) Close() error {
	c.closeOnce.Do(func() { close(c.done) })
	return nil
}
