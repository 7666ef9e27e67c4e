package camera

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
)

// Condition is the state of a camera's capture, as reported to the control
// room. The values are stable strings: they appear in telemetry.
type Condition string

const (
	// ConditionStarting: no frame has arrived yet, and the frame timeout
	// has not run out.
	ConditionStarting Condition = "starting"
	// ConditionOK: frames are arriving.
	ConditionOK Condition = "ok"
	// ConditionReconnecting: the camera was lost (unplugged, stream
	// closed) less than the frame timeout ago and is being reopened.
	ConditionReconnecting Condition = "reconnecting"
	// ConditionNoFrames: no frame for longer than the frame timeout,
	// whatever the cause. Nothing is being recorded.
	ConditionNoFrames Condition = "no_frames"
	// ConditionNeedsAttention: the last failure will not clear by itself
	// (the camera does not offer the configured mode, credentials are
	// refused, the URL serves no MJPEG). Someone must act.
	ConditionNeedsAttention Condition = "needs_attention"
	// ConditionClosed: the source was closed.
	ConditionClosed Condition = "closed"
)

// Health is a snapshot of a camera's capture.
type Health struct {
	// Source names the camera, without credentials.
	Source string `json:"source"`
	// Mode is what was negotiated or found, e.g. "MJPEG 1280x720 @ 25 fps";
	// empty until the camera has been opened.
	Mode      string    `json:"mode,omitempty"`
	Condition Condition `json:"condition"`
	// FPS is the rate frames were actually received at over the last few
	// seconds.
	FPS float64 `json:"fps"`
	// Frames is the number of frames delivered.
	Frames uint64 `json:"frames"`
	// Dropped counts frames thrown away as damaged (truncated, not a
	// JPEG) or larger than the frame size cap; DropReason says why the
	// last one was.
	Dropped    uint64 `json:"dropped"`
	DropReason string `json:"drop_reason,omitempty"`
	// SkippedBytes counts bytes between frames that belonged to no frame.
	SkippedBytes uint64 `json:"skipped_bytes"`
	// LastFrame is the capture time of the newest frame; zero if none.
	LastFrame time.Time `json:"last_frame,omitzero"`
	// Width and Height of the newest frame.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
	// Reconnects counts the times frames came again after the camera was
	// lost (each with a gap; attempts that delivered nothing do not count).
	Reconnects uint64 `json:"reconnects"`
	// LastGap is the time between the last frame before the most recent
	// loss and the first frame after it.
	LastGap time.Duration `json:"last_gap,omitempty"`
	// LastError is the most recent failure, and when it happened.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Healther is implemented by sources that report their capture health.
type Healther interface {
	Health() Health
}

// Classes of failure that Next returns. Test with errors.Is; the error's
// text carries the cause and what to do.
var (
	// ErrNoFrames: no frame arrived within the frame timeout, however that
	// came about (a stall, an unplugged camera, an unreachable server).
	// Retrying after a backoff is the right reaction.
	ErrNoFrames = errors.New("camera: no frames")
	// ErrNeedsAttention: a failure that retrying will not clear (the
	// camera does not offer the configured mode, the credentials are
	// refused, the URL serves no MJPEG). Retrying is harmless, but the
	// fault must be raised for a person to act on.
	ErrNeedsAttention = errors.New("camera: needs attention")
	// ErrClosed is returned by Next once the source is closed.
	ErrClosed = errors.New("camera: closed")
)

// classed is an error that belongs to a class (ErrNoFrames,
// ErrNeedsAttention) without carrying the class's text.
type classed struct {
	class, err error
}

func (e *classed) Error() string { return e.err.Error() }
func (e *classed) Unwrap() []error {
	return []error{e.err, e.class}
}

// NeedsAttention marks err as a failure that will not clear by itself.
// It returns nil for a nil err.
func NeedsAttention(err error) error {
	if err == nil {
		return nil
	}
	return &classed{ErrNeedsAttention, err}
}

// NoFrames marks err as the report of a frame timeout.
func NoFrames(err error) error {
	if err == nil {
		return nil
	}
	return &classed{ErrNoFrames, err}
}

// fpsWindow is how far back FPS looks.
const fpsWindow = 5 * time.Second

// Meter records a source's capture and computes its Health. It is safe for
// concurrent use. A Meter may outlive the sources that feed it: the agent
// hands the same Meter to every source it opens for a camera, so that
// counts, the reconnect count and the gap carry across reopenings.
type Meter struct {
	clk          clock.Clock
	frameTimeout time.Duration

	mu        sync.Mutex
	h         Health
	created   time.Time
	sessions  uint64     // sessions started
	lost      bool       // the last session was lost, no frame since
	attention bool       // the last failure needs attention, no frame since
	closed    bool       // the last source closed, no session since
	times     [256]int64 // ring of recent frame times (UnixNano)
	nTimes    int
}

// NewMeter returns a meter for the camera named source (which must not
// carry credentials). frameTimeout is how long without frames makes the
// condition no_frames.
func NewMeter(clk clock.Clock, source string, frameTimeout time.Duration) *Meter {
	if clk == nil {
		clk = clock.Real{}
	}
	return &Meter{clk: clk, frameTimeout: frameTimeout, created: clk.Now(), h: Health{Source: source}}
}

// Connected records that a session started, delivering mode. It reports
// whether a session ran before on this meter.
func (m *Meter) Connected(mode string) (again bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	again = m.sessions > 0
	m.sessions++
	m.closed, m.h.Mode = false, mode
	return again
}

// Lost records that the session failed with err, or that opening one
// failed. needsAttention says whether err will clear by itself.
func (m *Meter) Lost(err error, needsAttention bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lost = true
	m.attention = m.attention || needsAttention
	if err != nil {
		m.h.LastError = err.Error()
		m.h.LastErrorAt = m.clk.Now()
	}
}

// Closed records that the source was closed.
func (m *Meter) Closed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
}

// Frame records a delivered frame captured at t. The first frame after a
// loss counts a reconnection; Frame then returns the gap since the frame
// before the loss, else 0.
func (m *Meter) Frame(t time.Time, width, height int) (gap time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lost && !m.h.LastFrame.IsZero() {
		gap = t.Sub(m.h.LastFrame)
		m.h.LastGap = gap
		m.h.Reconnects++
	}
	m.lost, m.attention = false, false
	m.h.Frames++
	m.h.LastFrame = t
	m.h.Width, m.h.Height = width, height
	m.times[m.nTimes%len(m.times)] = t.UnixNano()
	m.nTimes++
	return gap
}

// Dropped records a frame thrown away, and why.
func (m *Meter) Dropped(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.h.Dropped++
	m.h.DropReason = reason
}

// Skipped records n bytes between frames that belonged to no frame.
func (m *Meter) Skipped(n uint64) {
	if n == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.h.SkippedBytes += n
}

// Health returns the current snapshot.
func (m *Meter) Health() Health {
	now := m.clk.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.h
	h.FPS = m.fps(now)
	stale := now.Sub(m.created) >= m.frameTimeout
	if !h.LastFrame.IsZero() {
		stale = now.Sub(h.LastFrame) >= m.frameTimeout
	}
	switch {
	case m.closed && !m.lost && !m.attention:
		h.Condition = ConditionClosed
	case m.attention:
		h.Condition = ConditionNeedsAttention
	case stale:
		h.Condition = ConditionNoFrames
	case m.lost:
		h.Condition = ConditionReconnecting
	case h.LastFrame.IsZero():
		h.Condition = ConditionStarting
	default:
		h.Condition = ConditionOK
	}
	return h
}

// fps counts the frames of the last fpsWindow (or since the meter was
// made, if later) and divides by that span. When the ring holds fewer
// seconds than the window, the span the ring covers is used instead.
func (m *Meter) fps(now time.Time) float64 {
	from := now.Add(-fpsWindow)
	if m.created.After(from) {
		from = m.created
	}
	span := now.Sub(from)
	n := min(m.nTimes, len(m.times))
	count := 0
	for i := range n {
		t := m.times[(m.nTimes-1-i)%len(m.times)]
		if t <= from.UnixNano() {
			break
		}
		count++
		if count == len(m.times) { // the ring is shorter than the window
			span = now.Sub(time.Unix(0, t))
		}
	}
	if count == 0 || span <= 0 {
		return 0
	}
	return float64(count) / span.Seconds()
}

// String renders h on one line for logs and the probe command.
func (h Health) String() string {
	s := fmt.Sprintf("%s: %s, %.1f fps, %d frames, %d dropped, %d reconnects", h.Source, h.Condition, h.FPS, h.Frames, h.Dropped, h.Reconnects)
	if h.LastError != "" {
		s += ", last error: " + h.LastError
	}
	return s
}
