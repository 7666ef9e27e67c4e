package v4l2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/hal/camera/internal/pool"
	"github.com/outpost-cctv/outpost/hal/camera/internal/reconnect"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// Config describes the camera to open.
type Config struct {
	// Path of the device: /dev/videoN, or better a stable
	// /dev/v4l/by-id/... path. It is reopened by path after a failure.
	Path string
	// Width, Height and FPS of the MJPEG mode to negotiate.
	Width, Height, FPS int
	// Buffers is how many driver buffers to stream with, 2-32; 0 means 4.
	Buffers int
	// YUYVFPS is the rate frames of a camera without MJPEG are encoded
	// at, at most FPS; 0 means 5.
	YUYVFPS int
	// FrameTimeout is how long without frames before the camera is
	// reported and reopened; 0 means 5 s.
	FrameTimeout time.Duration
	// MaxFrameSize caps a frame; larger ones are dropped. 0 means 4 MiB.
	MaxFrameSize int
	// Meter records health; nil makes one. Pass the same meter to every
	// Open of one camera to keep counts across reopenings.
	Meter *camera.Meter
}

func (c *Config) defaults() error {
	if c.Buffers == 0 {
		c.Buffers = 4
	}
	if c.YUYVFPS == 0 {
		c.YUYVFPS = 5
	}
	if c.FrameTimeout == 0 {
		c.FrameTimeout = 5 * time.Second
	}
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = 4 << 20
	}
	switch {
	case !strings.HasPrefix(c.Path, "/dev/"):
		return fmt.Errorf("v4l2: %q is not a device path: use /dev/videoN or /dev/v4l/by-id/...", c.Path)
	case c.Width <= 0 || c.Height <= 0 || c.FPS <= 0:
		return fmt.Errorf("v4l2: %s: size %dx%d at %d fps: all must be positive", c.Path, c.Width, c.Height, c.FPS)
	case c.Buffers < 2 || c.Buffers > 32:
		return fmt.Errorf("v4l2: %s: %d buffers: use 2-32", c.Path, c.Buffers)
	case c.YUYVFPS < 1:
		return fmt.Errorf("v4l2: %s: YUYV rate %d fps: must be at least 1", c.Path, c.YUYVFPS)
	case c.FrameTimeout < 0 || c.MaxFrameSize < 0:
		return fmt.Errorf("v4l2: %s: frame timeout and frame size cap must not be negative", c.Path)
	}
	return nil
}

// Camera is a V4L2 camera that reopens itself after failures. Next must
// not be called concurrently with itself; Close, Health and Recycle may be
// called at any time.
type Camera struct {
	cfg     Config
	clk     clock.Clock
	openDev openFunc
	pool    *pool.Pool
	src     *reconnect.Source
}

var (
	_ camera.Source   = (*Camera)(nil)
	_ camera.Healther = (*Camera)(nil)
)

// Open opens the camera at cfg.Path, negotiates MJPEG at the configured
// size and rate and waits for the first frame. An error that wraps
// camera.ErrNeedsAttention will not clear by retrying (the camera does not
// offer the mode, permissions); others may (the camera is not plugged in).
func Open(ctx context.Context, cfg Config, clk clock.Clock, log *slog.Logger) (*Camera, error) {
	return open(ctx, cfg, clk, log, openWebcam)
}

func open(ctx context.Context, cfg Config, clk clock.Clock, log *slog.Logger, openDev openFunc) (*Camera, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if clk == nil {
		clk = clock.Real{}
	}
	if cfg.Meter == nil {
		cfg.Meter = camera.NewMeter(clk, cfg.Path, cfg.FrameTimeout)
	}
	c := &Camera{cfg: cfg, clk: clk, openDev: openDev, pool: pool.New(cfg.Buffers+4, cfg.MaxFrameSize)}
	c.src = reconnect.New(reconnect.Options{
		Name: "v4l2: " + cfg.Path, Connect: c.connect, Clock: clk, Log: log,
		Meter: cfg.Meter, FrameTimeout: cfg.FrameTimeout,
	})
	if err := c.src.Start(ctx); err != nil {
		c.src.Close()
		return nil, err
	}
	return c, nil
}

// connect opens the device by path, negotiates and starts streaming.
func (c *Camera) connect(context.Context) (reconnect.Session, string, error) {
	dev, err := c.openDev(c.cfg.Path)
	if err != nil {
		return nil, "", openError(err)
	}
	caps := readCaps(dev)
	p, err := choose(caps, c.cfg)
	if err == nil {
		err = apply(dev, p, caps, c.cfg)
	}
	if err == nil {
		if err = dev.StartStreaming(); err != nil {
			err = withHint("start streaming", err)
		}
	}
	if err != nil {
		dev.Close()
		return nil, "", err
	}
	return newSession(dev, p, c.cfg, c.clk, c.cfg.Meter, c.pool), p.String(), nil
}

// openError explains why the device could not be opened.
func openError(err error) error {
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "not a video capture device"), strings.Contains(msg, "does not support the streaming"):
		return camera.NeedsAttention(fmt.Errorf("open: %w (a Raspberry Pi's /dev/video10 and above are codecs, not cameras: use the camera's /dev/v4l/by-id/... path)", err))
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return camera.NeedsAttention(withHint("open", err))
	}
	return withHint("open", err)
}

// Next returns the next frame; see camera.Source.
func (c *Camera) Next(ctx context.Context) (camera.Frame, error) { return c.src.Next(ctx) }

// Close stops streaming and closes the device.
func (c *Camera) Close() error { return c.src.Close() }

// Health implements camera.Healther.
func (c *Camera) Health() camera.Health { return c.src.Health() }

// Recycle hands back the Data of a frame the receiver has finished with,
// to be reused for a later frame: with it, capture allocates nothing per
// frame. The caller must not touch data afterwards. Optional.
func (c *Camera) Recycle(data []byte) { c.pool.Put(data) }

// Description is what Describe found out about a device.
type Description struct {
	Path, Name, Bus string
	Caps            Caps
}

// Describe opens the device at path and lists what it offers, without
// streaming.
func Describe(path string) (Description, error) { return describe(openWebcam, path) }

func describe(openDev openFunc, path string) (Description, error) {
	dev, err := openDev(path)
	if err != nil {
		return Description{}, fmt.Errorf("v4l2: %s: %w", path, openError(err))
	}
	defer dev.Close()
	d := Description{Path: path, Caps: readCaps(dev)}
	if n, ok := dev.(describer); ok {
		d.Name, _ = n.GetName()
		d.Bus, _ = n.GetBusInfo()
	}
	if len(d.Caps.Formats) == 0 {
		return d, camera.NeedsAttention(fmt.Errorf("v4l2: %s: the device lists no capture formats", path))
	}
	return d, nil
}

// String renders the description for a person.
func (d Description) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", d.Path)
	if d.Name != "" {
		fmt.Fprintf(&b, ": %s", d.Name)
	}
	if d.Bus != "" {
		fmt.Fprintf(&b, " (%s)", d.Bus)
	}
	b.WriteString("\n")
	for _, f := range d.Caps.Formats {
		fmt.Fprintf(&b, "  %s  %s\n", f.Format, f.Description)
		for _, s := range f.Sizes {
			fmt.Fprintf(&b, "    %-11s %s\n", s, s.ratesString())
		}
	}
	if !d.canCapture() {
		b.WriteString("  (no MJPEG or YUYV mode: Outpost cannot capture from this device)\n")
	}
	return b.String()
}

func (d Description) canCapture() bool {
	_, m := d.Caps.format(MJPEG)
	_, y := d.Caps.format(YUYV)
	return m || y
}
