// Package reconnect turns a camera backend's sessions (an opened,
// negotiated V4L2 device; an HTTP response being read) into a
// camera.Source that recovers by itself and never fails silently.
//
// # Behaviour
//
// Next returns the next frame of the current session. When a session
// fails (an unplugged camera, a closed stream), it is torn down and a new
// one is opened after a jittered, capped backoff (internal/backoff), as
// often as it takes. A failure is reported by Next at once if it needs a
// person (camera.ErrNeedsAttention), and otherwise when no frame has come
// for the frame timeout (camera.ErrNoFrames): a camera that is lost for a
// moment and comes back costs a gap in the footage and a line in the log,
// while one that stays away is reported every frame timeout until it
// returns. A session that stays open but delivers nothing (a stalled
// camera) is torn down at the frame timeout and reopened.
//
// After Next returns an error, the source is still usable: calling Next
// again keeps trying. A caller that closes it and opens a new source
// instead (as the agent's capture component does) loses nothing if it
// passes the same camera.Meter to each: counts, reconnects and the gap
// carry over.
//
// # Goroutines
//
// Each session has one reader goroutine, which calls Session.Read and
// hands results to Next. It is started by Next and stopped, and waited
// for, whenever the session is torn down, by Next or by Close; nothing of
// a session is touched after its Close returns.
package reconnect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/backoff"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// Session is one connection to a camera.
type Session interface {
	// Read blocks until the next frame and returns it, or returns an
	// error once the session is over. Frames the session drops (damaged,
	// oversized) are reported to the Meter, not returned.
	Read() (camera.Frame, error)
	// Close ends the session. It may be called while Read blocks and
	// makes it return promptly; once Close returns, the session touches
	// nothing of the device or connection.
	Close() error
}

// Connector opens a session and describes what it negotiated, e.g.
// "MJPEG 1280x720 @ 25 fps". Its context is cancelled when Connect
// returns, so a session must not tie its lifetime to it.
type Connector func(ctx context.Context) (Session, string, error)

// Options configures a Source.
type Options struct {
	// Name prefixes errors and names the camera in logs, e.g.
	// "v4l2: /dev/video0". It must not carry credentials.
	Name    string
	Connect Connector
	Clock   clock.Clock
	Log     *slog.Logger
	// Meter records health; it may be shared across sources for one
	// camera. Required.
	Meter *camera.Meter
	// FrameTimeout is how long without frames before Next reports
	// ErrNoFrames and a stalled session is reopened. Default 5 s.
	FrameTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts to open a
	// session (defaults 250 ms and 5 s).
	MinBackoff, MaxBackoff time.Duration
}

// logEvery bounds how often a repeated failure is logged.
const logEvery = time.Minute

type result struct {
	f   camera.Frame
	err error
}

// Source is a self-healing camera.Source over sessions. Next must not be
// called concurrently with itself; Close and Health may be called at any
// time.
type Source struct {
	o    Options
	bo   *backoff.Backoff
	done chan struct{}

	closeOnce sync.Once
	cmu       sync.Mutex
	cancel    context.CancelFunc // cancels a Connect in progress
	closed    bool

	// Owned by whoever holds nextMu.
	nextMu     sync.Mutex
	sess       Session
	results    chan result
	stopReader chan struct{}
	readerDone chan struct{}
	pending    *camera.Frame // the first frame, read by Start
	timer      clock.Timer   // Next's frame timeout, reused
	progress   time.Time     // last frame delivered, or last report
	retryAt    time.Time     // no attempt to connect before this
	lastErr    error         // most recent failure since the last frame
	starting   bool          // in Start: failures are the caller's to report
	logged     string        // text of the last failure logged
	loggedAt   time.Time
	repeats    int // failures not logged since
}

var _ camera.Source = (*Source)(nil)
var _ camera.Healther = (*Source)(nil)

// New returns a source that has not connected yet; call Start.
func New(o Options) *Source {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.FrameTimeout <= 0 {
		o.FrameTimeout = 5 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Second, o.MinBackoff)
	}
	if o.Meter == nil {
		o.Meter = camera.NewMeter(o.Clock, o.Name, o.FrameTimeout)
	}
	return &Source{o: o, bo: backoff.New(o.MinBackoff, o.MaxBackoff), done: make(chan struct{})}
}

// Start opens the first session and waits for its first frame, which Next
// then returns. It makes one attempt: an error says why it failed, and the
// caller should Close the source.
func (s *Source) Start(ctx context.Context) error {
	s.nextMu.Lock()
	defer s.nextMu.Unlock()
	s.progress = s.o.Clock.Now()
	s.starting = true
	defer func() { s.starting = false }()
	if err := s.connect(ctx); err != nil {
		return err
	}
	t := s.o.Clock.NewTimer(s.o.FrameTimeout)
	defer t.Stop()
	select {
	case r := <-s.results:
		if r.err != nil {
			s.lose(r.err)
			return s.classify(r.err)
		}
		s.pending = &r.f
		return nil
	case <-t.C():
		err := fmt.Errorf("%s: no frame within %v of opening the camera", s.o.Name, s.o.FrameTimeout)
		s.teardown()
		s.o.Meter.Lost(err, false)
		return camera.NoFrames(err)
	case <-ctx.Done():
		s.teardown()
		return ctx.Err()
	case <-s.done:
		return camera.ErrClosed
	}
}

// Next returns the next frame. See the package documentation for when it
// returns an error instead.
func (s *Source) Next(ctx context.Context) (camera.Frame, error) {
	s.nextMu.Lock()
	defer s.nextMu.Unlock()
	select {
	case <-s.done:
		return camera.Frame{}, camera.ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return camera.Frame{}, err
	}
	if f := s.pending; f != nil {
		s.pending = nil
		return s.deliver(*f), nil
	}
	if s.progress.IsZero() {
		s.progress = s.o.Clock.Now()
	}
	deadline := s.progress.Add(s.o.FrameTimeout)
	for {
		if s.sess == nil {
			if err := s.reopen(ctx, deadline); err != nil {
				return camera.Frame{}, err
			}
		}
		wait := deadline.Sub(s.o.Clock.Now())
		if wait <= 0 {
			return camera.Frame{}, s.timeout()
		}
		t := s.frameTimer(wait)
		select {
		case r := <-s.results:
			t.Stop()
			if r.err != nil {
				s.lose(r.err)
				if errors.Is(r.err, camera.ErrNeedsAttention) {
					s.progress = s.o.Clock.Now()
					return camera.Frame{}, s.classify(r.err)
				}
				continue
			}
			return s.deliver(r.f), nil
		case <-t.C():
			return camera.Frame{}, s.timeout()
		case <-ctx.Done():
			t.Stop()
			return camera.Frame{}, ctx.Err()
		case <-s.done:
			t.Stop()
			return camera.Frame{}, camera.ErrClosed
		}
	}
}

// frameTimer arms the timer Next waits for a frame with. One timer is
// reused, so that a frame costs no allocation.
func (s *Source) frameTimer(d time.Duration) clock.Timer {
	if s.timer == nil {
		s.timer = s.o.Clock.NewTimer(d)
		return s.timer
	}
	s.timer.Stop()
	select { // a tick left from an earlier wait
	case <-s.timer.C():
	default:
	}
	s.timer.Reset(d)
	return s.timer
}

// deliver records a frame about to be returned.
func (s *Source) deliver(f camera.Frame) camera.Frame {
	s.progress = s.o.Clock.Now()
	s.retryAt = time.Time{}
	s.bo.Reset()
	if gap := s.o.Meter.Frame(f.Time, f.Width, f.Height); gap > 0 {
		h := s.o.Meter.Health()
		s.o.Log.Warn("camera frames resumed", "camera", s.o.Name, "gap", gap.Round(time.Millisecond), "reconnects", h.Reconnects, "after", h.LastError)
	}
	s.lastErr, s.logged, s.repeats = nil, "", 0
	return f
}

// timeout reports that no frame came for the frame timeout. A session
// that is still open has stalled: it is torn down to be reopened.
func (s *Source) timeout() error {
	var err error
	if s.sess != nil {
		err = fmt.Errorf("%s: no frame for %v: the camera stopped sending; reopening it", s.o.Name, s.o.FrameTimeout)
		s.teardown()
		s.failed(err)
	} else if s.lastErr != nil {
		err = fmt.Errorf("%s: no frame for %v: %w", s.o.Name, s.o.FrameTimeout, s.lastErr)
	} else {
		err = fmt.Errorf("%s: no frame for %v while opening the camera", s.o.Name, s.o.FrameTimeout)
	}
	s.o.Meter.Lost(err, false)
	s.progress = s.o.Clock.Now()
	return camera.NoFrames(err)
}

// reopen waits out the backoff, bounded by deadline, and opens a session.
// It returns nil once a session is open.
func (s *Source) reopen(ctx context.Context, deadline time.Time) error {
	for {
		now := s.o.Clock.Now()
		if now.Before(s.retryAt) {
			until := s.retryAt
			if deadline.Before(until) {
				until = deadline
			}
			t := s.o.Clock.NewTimer(until.Sub(now))
			select {
			case <-t.C():
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-s.done:
				t.Stop()
				return camera.ErrClosed
			}
			if s.o.Clock.Now().Before(s.retryAt) {
				return s.timeout()
			}
		}
		err := s.connect(ctx)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, camera.ErrNeedsAttention), errors.Is(err, camera.ErrClosed), ctx.Err() != nil:
			s.progress = s.o.Clock.Now()
			return err
		}
		if !s.o.Clock.Now().Before(deadline) {
			return s.timeout()
		}
	}
}

// connect makes one attempt to open a session and starts its reader.
func (s *Source) connect(ctx context.Context) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.cmu.Lock()
	if s.closed {
		s.cmu.Unlock()
		return camera.ErrClosed
	}
	s.cancel = cancel
	s.cmu.Unlock()
	sess, mode, err := s.o.Connect(cctx)
	s.cmu.Lock()
	s.cancel = nil
	closed := s.closed
	s.cmu.Unlock()
	if closed {
		if sess != nil {
			sess.Close()
		}
		return camera.ErrClosed
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.failed(err)
		s.o.Meter.Lost(err, errors.Is(err, camera.ErrNeedsAttention))
		return s.classify(err)
	}
	if s.o.Meter.Connected(mode) {
		s.o.Log.Debug("camera reopened", "camera", s.o.Name, "mode", mode)
	} else {
		s.o.Log.Info("camera opened", "camera", s.o.Name, "mode", mode)
	}
	s.startReader(sess)
	return nil
}

func (s *Source) startReader(sess Session) {
	results, stop, done := make(chan result), make(chan struct{}), make(chan struct{})
	s.sess, s.results, s.stopReader, s.readerDone = sess, results, stop, done
	go func() {
		defer close(done)
		for {
			f, err := sess.Read()
			select {
			case results <- result{f, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
}

// teardown closes the session and waits for its reader to exit.
func (s *Source) teardown() {
	if s.sess == nil {
		return
	}
	close(s.stopReader)
	if err := s.sess.Close(); err != nil {
		s.o.Log.Debug("closing the camera session", "camera", s.o.Name, "err", err)
	}
	<-s.readerDone
	s.sess, s.results, s.stopReader, s.readerDone = nil, nil, nil, nil
}

// lose handles the end of a session with err.
func (s *Source) lose(err error) {
	s.teardown()
	s.failed(err)
	s.o.Meter.Lost(err, errors.Is(err, camera.ErrNeedsAttention))
}

// failed schedules the next attempt and logs the failure, repeats at most
// once a minute.
func (s *Source) failed(err error) {
	now := s.o.Clock.Now()
	d := s.bo.Next()
	s.retryAt = now.Add(d)
	s.lastErr = err
	if s.starting {
		return // Start's caller reports it, and decides when to retry
	}
	msg := err.Error()
	if msg == s.logged && now.Sub(s.loggedAt) < logEvery {
		s.repeats++
		s.o.Log.Debug("camera failed again", "camera", s.o.Name, "err", msg, "retry_in", d.Round(time.Millisecond))
		return
	}
	s.o.Log.Warn("camera failed; retrying", "camera", s.o.Name, "err", msg, "retry_in", d.Round(time.Millisecond), "repeats_since_last_logged", s.repeats)
	s.logged, s.loggedAt, s.repeats = msg, now, 0
}

// classify prefixes err with the camera's name, keeping its class.
func (s *Source) classify(err error) error {
	if errors.Is(err, camera.ErrClosed) {
		return err
	}
	return fmt.Errorf("%s: %w", s.o.Name, err)
}

// Close stops the source: a blocked Next returns camera.ErrClosed, a
// Connect in progress is cancelled, and the session is closed and its
// reader waited for.
func (s *Source) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.cmu.Lock()
		s.closed = true
		if s.cancel != nil {
			s.cancel()
		}
		s.cmu.Unlock()
		s.nextMu.Lock()
		s.teardown()
		s.pending = nil
		s.nextMu.Unlock()
		s.o.Meter.Closed()
	})
	return nil
}

// Health implements camera.Healther.
func (s *Source) Health() camera.Health { return s.o.Meter.Health() }
