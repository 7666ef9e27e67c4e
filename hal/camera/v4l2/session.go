package v4l2

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blackjack/webcam"
	"golang.org/x/sys/unix"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/hal/camera/internal/pool"
	"github.com/outpost-cctv/outpost/hal/camera/mjpeg"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// pollSeconds is how long one wait for a frame lasts. It bounds how long
// Close waits for the read loop to let go of the device.
const pollSeconds = 1

// errStopped is returned by Read once the session is closed.
var errStopped = errors.New("session closed")

// session is a streaming device. Its read loop is the only code that sees
// driver buffers (see the package documentation).
type session struct {
	dev      device
	p        plan
	maxFrame int
	clk      clock.Clock
	meter    *camera.Meter
	pool     *pool.Pool
	enc      *yuyvEncoder // for YUYV
	interval time.Duration
	nextDue  time.Time // for YUYV: when the next frame is encoded

	stopping atomic.Bool
	mu       sync.Mutex // held while the device is used
	closed   bool
}

func newSession(dev device, p plan, cfg Config, clk clock.Clock, meter *camera.Meter, pl *pool.Pool) *session {
	s := &session{dev: dev, p: p, maxFrame: cfg.MaxFrameSize, clk: clk, meter: meter, pool: pl}
	if p.format == YUYV {
		s.enc = newYUYVEncoder(p.width, p.height)
		s.interval = time.Duration(float64(time.Second) / p.encodeFPS)
	}
	return s
}

// Read returns the next frame, skipping dropped ones.
func (s *session) Read() (camera.Frame, error) {
	for {
		if s.stopping.Load() {
			return camera.Frame{}, errStopped
		}
		f, ok, err := s.readOne()
		if err != nil {
			return camera.Frame{}, err
		}
		if ok {
			return f, nil
		}
	}
}

// readOne waits for one driver buffer, takes its frame and requeues it.
// ok is false if no frame came in time or the frame was dropped.
func (s *session) readOne() (f camera.Frame, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return camera.Frame{}, false, errStopped
	}
	if err := s.dev.WaitForFrame(pollSeconds); err != nil {
		var timeout *webcam.Timeout
		if errors.As(err, &timeout) || errors.Is(err, unix.EINTR) {
			return camera.Frame{}, false, nil
		}
		return camera.Frame{}, false, withHint("wait for a frame", err)
	}
	buf, index, err := s.dev.GetFrame()
	if err != nil {
		if errors.Is(err, unix.EAGAIN) {
			return camera.Frame{}, false, nil
		}
		return camera.Frame{}, false, withHint("take a frame", err)
	}
	f, ok, err = s.take(buf, s.clk.Now())
	// buf is not touched after this point.
	if rerr := s.dev.ReleaseFrame(index); rerr != nil {
		if ok {
			s.pool.Put(f.Data)
		}
		return camera.Frame{}, false, withHint("hand a buffer back to the driver", rerr)
	}
	return f, ok, err
}

// take copies or encodes the frame in the driver buffer buf into memory
// of its own. It never keeps buf.
func (s *session) take(buf []byte, now time.Time) (camera.Frame, bool, error) {
	if s.p.format == YUYV {
		return s.takeYUYV(buf, now)
	}
	info, err := mjpeg.Check(buf)
	if err != nil {
		var bad *mjpeg.BadFrameError
		if errors.As(err, &bad) {
			s.meter.Dropped(bad.Reason)
			return camera.Frame{}, false, nil
		}
		return camera.Frame{}, false, err
	}
	if info.Width != s.p.width || info.Height != s.p.height {
		return camera.Frame{}, false, camera.NeedsAttention(fmt.Errorf("the camera sends %dx%d frames, not the %dx%d it accepted: choose another camera.width and camera.height", info.Width, info.Height, s.p.width, s.p.height))
	}
	if info.Len > s.maxFrame {
		s.meter.Dropped(mjpeg.ReasonOversize)
		return camera.Frame{}, false, nil
	}
	data := append(s.pool.Get(info.Len), buf[:info.Len]...)
	return camera.Frame{Data: data, Codec: camera.MJPEG, Time: now, Width: info.Width, Height: info.Height}, true, nil
}

// takeYUYV encodes a YUYV frame if one is due at the encode rate.
func (s *session) takeYUYV(buf []byte, now time.Time) (camera.Frame, bool, error) {
	captureInterval := time.Duration(float64(time.Second) / s.p.fps)
	if !s.nextDue.IsZero() && now.Before(s.nextDue.Add(-captureInterval/2)) {
		return camera.Frame{}, false, nil // not due: skipped, not dropped
	}
	if s.nextDue.IsZero() || now.Sub(s.nextDue) > s.interval {
		s.nextDue = now // first frame, or fell behind: start afresh
	}
	s.nextDue = s.nextDue.Add(s.interval)

	w, h := s.p.width, s.p.height
	if len(buf) < 2*w*h {
		s.meter.Dropped(mjpeg.ReasonTruncated)
		return camera.Frame{}, false, nil
	}
	stride := len(buf) / h // drivers may pad rows
	data, err := s.enc.encode(s.pool.Get(w*h/4), buf, stride)
	if err != nil {
		return camera.Frame{}, false, fmt.Errorf("encode a YUYV frame: %w", err)
	}
	if len(data) > s.maxFrame {
		s.pool.Put(data)
		s.meter.Dropped(mjpeg.ReasonOversize)
		return camera.Frame{}, false, nil
	}
	return camera.Frame{Data: data, Codec: camera.MJPEG, Time: now, Width: w, Height: h}, true, nil
}

// Close stops the stream and closes the device, once the read loop has
// let go of it (at most one poll later).
func (s *session) Close() error {
	s.stopping.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.dev.Close()
}
