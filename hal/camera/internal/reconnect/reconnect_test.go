package reconnect

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/clock"
)

var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeSession delivers what the test pushes into it.
type fakeSession struct {
	items  chan result
	closed chan struct{}
	once   sync.Once
}

func newFakeSession() *fakeSession {
	return &fakeSession{items: make(chan result), closed: make(chan struct{})}
}

var errSessionClosed = errors.New("session closed")

func (f *fakeSession) Read() (camera.Frame, error) {
	select {
	case r := <-f.items:
		return r.f, r.err
	case <-f.closed:
		return camera.Frame{}, errSessionClosed
	}
}

func (f *fakeSession) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeSession) isClosed() bool {
	select {
	case <-f.closed:
		return true
	default:
		return false
	}
}

// push hands the reader a frame or an error; it fails the test if nobody
// reads it.
func (f *fakeSession) push(t *testing.T, r result) {
	t.Helper()
	select {
	case f.items <- r:
	case <-time.After(2 * time.Second):
		t.Fatal("nobody read from the session")
	}
}

// harness scripts connections: each Connect takes the next outcome.
type harness struct {
	t        *testing.T
	clk      *clock.Fake
	src      *Source
	meter    *camera.Meter
	outcomes chan outcome
	connects chan context.Context // every Connect's context, as it starts
}

type outcome struct {
	sess *fakeSession
	err  error
	// block makes Connect wait for its context to end.
	block bool
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, clk: clock.NewFake(epoch), outcomes: make(chan outcome, 16), connects: make(chan context.Context, 16)}
	h.meter = camera.NewMeter(h.clk, "fake", 5*time.Second)
	h.src = New(Options{
		Name: "fake: cam0", Clock: h.clk, Meter: h.meter, FrameTimeout: 5 * time.Second,
		MinBackoff: time.Second, MaxBackoff: 4 * time.Second,
		Connect: func(ctx context.Context) (Session, string, error) {
			h.connects <- ctx
			o := <-h.outcomes
			if o.block {
				<-ctx.Done()
				return nil, "", ctx.Err()
			}
			if o.err != nil {
				return nil, "", o.err
			}
			return o.sess, "MJPEG 64x48 @ 25 fps", nil
		},
	})
	t.Cleanup(func() { h.src.Close() })
	return h
}

func (h *harness) frame(n int) camera.Frame {
	return camera.Frame{Data: []byte{byte(n)}, Codec: camera.MJPEG, Time: h.clk.Now(), Width: 64, Height: 48}
}

// connected scripts the next Connect to succeed and returns its session.
func (h *harness) connected() *fakeSession {
	s := newFakeSession()
	h.outcomes <- outcome{sess: s}
	return s
}

// waitTimer returns once a goroutine waits on the fake clock.
func (h *harness) waitTimer() {
	h.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for h.clk.Waiters() == 0 {
		if time.Now().After(deadline) {
			h.t.Fatal("nothing waiting on the clock")
		}
		time.Sleep(50 * time.Microsecond)
	}
}

type nextResult struct {
	f   camera.Frame
	err error
}

func (h *harness) nextAsync(ctx context.Context) <-chan nextResult {
	ch := make(chan nextResult, 1)
	go func() {
		f, err := h.src.Next(ctx)
		ch <- nextResult{f, err}
	}()
	return ch
}

func receive(t *testing.T, ch <-chan nextResult) nextResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(2 * time.Second):
		t.Fatal("Next did not return")
		return nextResult{}
	}
}

func (h *harness) start(sess *fakeSession) {
	h.t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- h.src.Start(context.Background()) }()
	<-h.connects
	sess.push(h.t, result{f: h.frame(0)})
	if err := <-errc; err != nil {
		h.t.Fatal(err)
	}
	r := receive(h.t, h.nextAsync(context.Background()))
	if r.err != nil || r.f.Data[0] != 0 {
		h.t.Fatalf("first Next = %v, %v; want the frame Start read", r.f.Data, r.err)
	}
}

func TestFramesFlow(t *testing.T) {
	h := newHarness(t)
	s := h.connected()
	h.start(s)
	for i := 1; i <= 3; i++ {
		ch := h.nextAsync(context.Background())
		h.clk.Advance(40 * time.Millisecond)
		s.push(t, result{f: h.frame(i)})
		if r := receive(t, ch); r.err != nil || r.f.Data[0] != byte(i) {
			t.Fatalf("Next = %v, %v; want frame %d", r.f.Data, r.err, i)
		}
	}
	hl := h.src.Health()
	if hl.Condition != camera.ConditionOK || hl.Frames != 4 || hl.Reconnects != 0 || hl.Mode != "MJPEG 64x48 @ 25 fps" {
		t.Fatalf("health %+v", hl)
	}
}

// TestShortLossIsBridged: a session that fails and comes back within the
// frame timeout costs a gap, not an error.
func TestShortLossIsBridged(t *testing.T) {
	h := newHarness(t)
	s1 := h.connected()
	h.start(s1)

	ch := h.nextAsync(context.Background())
	h.waitTimer()
	h.clk.Advance(100 * time.Millisecond)
	s1.push(t, result{err: errors.New("unplugged")})
	// Backoff (1 s ± 20 %), then a failed attempt, then another.
	<-h.connectsAfter(t, 2*time.Second)
	h.outcomes <- outcome{err: errors.New("open: no such file")}
	s2 := newFakeSession()
	<-h.connectsAfter(t, 3*time.Second)
	h.outcomes <- outcome{sess: s2}
	s2.push(t, result{f: h.frame(7)})
	r := receive(t, ch)
	if r.err != nil || r.f.Data[0] != 7 {
		t.Fatalf("Next = %v, %v; want frame 7 from the new session", r.f.Data, r.err)
	}
	if !s1.isClosed() {
		t.Error("the failed session was not closed")
	}
	hl := h.src.Health()
	if hl.Reconnects != 1 || hl.LastGap <= 0 || hl.LastGap > 5*time.Second || hl.Condition != camera.ConditionOK {
		t.Fatalf("health %+v: want 1 reconnect and a gap under the timeout", hl)
	}
	if !strings.Contains(hl.LastError, "no such file") {
		t.Errorf("last error %q, want the failed attempt's", hl.LastError)
	}
}

// connectsAfter advances the clock in steps until Connect is called, and
// fails if that takes longer than limit of fake time.
func (h *harness) connectsAfter(t *testing.T, limit time.Duration) <-chan context.Context {
	t.Helper()
	var waited time.Duration
	for {
		select {
		case ctx := <-h.connects:
			ch := make(chan context.Context, 1)
			ch <- ctx
			return ch
		default:
		}
		if waited > limit {
			t.Fatalf("no attempt to connect within %v", limit)
		}
		h.waitTimer()
		h.clk.Advance(100 * time.Millisecond)
		waited += 100 * time.Millisecond
		time.Sleep(time.Millisecond) // let the woken goroutine reach Connect
	}
}

// TestLongLossIsReported: a camera that stays away is reported as no
// frames at the frame timeout, again at each timeout, and recovers.
func TestLongLossIsReported(t *testing.T) {
	h := newHarness(t)
	s1 := h.connected()
	h.start(s1)

	ch := h.nextAsync(context.Background())
	h.waitTimer()
	s1.push(t, result{err: errors.New("read: no such device")})
	attempts := 0
	var r nextResult
	for done := false; !done; {
		select {
		case r = <-ch:
			done = true
			continue
		case <-h.connects:
			attempts++
			h.outcomes <- outcome{err: errors.New("open /dev/video0: no such file or directory")}
			continue
		default:
		}
		if h.clk.Waiters() > 0 {
			h.clk.Advance(100 * time.Millisecond)
		}
		time.Sleep(100 * time.Microsecond)
		if h.clk.Now().Sub(epoch) > time.Minute {
			t.Fatal("Next never reported the loss")
		}
	}
	if !errors.Is(r.err, camera.ErrNoFrames) || errors.Is(r.err, camera.ErrNeedsAttention) {
		t.Fatalf("Next = %v, want ErrNoFrames", r.err)
	}
	if !strings.Contains(r.err.Error(), "fake: cam0: no frame for 5s: open /dev/video0: no such file or directory") {
		t.Errorf("error %q does not say what happened", r.err)
	}
	if el := h.clk.Now().Sub(epoch); el < 5*time.Second || el > 5*time.Second+200*time.Millisecond {
		t.Errorf("reported after %v, want the 5s frame timeout", el)
	}
	if attempts < 2 {
		t.Errorf("%d attempts to reopen in 5s, want at least 2", attempts)
	}
	if c := h.src.Health().Condition; c != camera.ConditionNoFrames {
		t.Errorf("condition %q, want no_frames", c)
	}

	// Next keeps trying, and returns frames once the camera is back.
	ch = h.nextAsync(context.Background())
	s2 := newFakeSession()
	<-h.connectsAfter(t, 5*time.Second)
	h.outcomes <- outcome{sess: s2}
	s2.push(t, result{f: h.frame(9)})
	if r := receive(t, ch); r.err != nil || r.f.Data[0] != 9 {
		t.Fatalf("Next = %v, %v; want frame 9", r.f.Data, r.err)
	}
	if hl := h.src.Health(); hl.Condition != camera.ConditionOK || hl.LastGap < 5*time.Second {
		t.Errorf("health %+v after recovery", hl)
	}
}

// TestStallReopens: a session that stays open but sends nothing is torn
// down at the frame timeout, and the next Next opens a new one.
func TestStallReopens(t *testing.T) {
	h := newHarness(t)
	s1 := h.connected()
	h.start(s1)
	ch := h.nextAsync(context.Background())
	h.waitTimer()
	h.clk.Advance(5 * time.Second)
	r := receive(t, ch)
	if !errors.Is(r.err, camera.ErrNoFrames) || !strings.Contains(r.err.Error(), "stopped sending") {
		t.Fatalf("Next = %v, want a stall reported as no frames", r.err)
	}
	if !s1.isClosed() {
		t.Fatal("the stalled session was not closed")
	}
	ch = h.nextAsync(context.Background())
	s2 := newFakeSession()
	<-h.connectsAfter(t, 2*time.Second)
	h.outcomes <- outcome{sess: s2}
	s2.push(t, result{f: h.frame(3)})
	if r := receive(t, ch); r.err != nil {
		t.Fatal(r.err)
	}
}

// TestNeedsAttention: a failure that will not clear is reported at once.
func TestNeedsAttention(t *testing.T) {
	h := newHarness(t)
	s1 := h.connected()
	h.start(s1)
	ch := h.nextAsync(context.Background())
	h.waitTimer()
	s1.push(t, result{err: camera.NeedsAttention(errors.New("the camera sends 640x480, not the 1280x720 negotiated"))})
	r := receive(t, ch)
	if !errors.Is(r.err, camera.ErrNeedsAttention) || !strings.HasPrefix(r.err.Error(), "fake: cam0: the camera sends 640x480") {
		t.Fatalf("Next = %v, want the needs-attention error at once", r.err)
	}
	if c := h.src.Health().Condition; c != camera.ConditionNeedsAttention {
		t.Fatalf("condition %q", c)
	}
	// A connect failure that needs attention is reported at once too.
	ch = h.nextAsync(context.Background())
	<-h.connectsAfter(t, 2*time.Second)
	h.outcomes <- outcome{err: camera.NeedsAttention(errors.New("401: the camera refused the username and password"))}
	if r := receive(t, ch); !errors.Is(r.err, camera.ErrNeedsAttention) {
		t.Fatalf("Next = %v", r.err)
	}
}

func TestStartFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(h *harness)
		want string
		is   error
	}{
		{"connect error", func(h *harness) {
			<-h.connects
			h.outcomes <- outcome{err: camera.NeedsAttention(errors.New("no MJPEG at 1920x1080"))}
		}, "fake: cam0: no MJPEG at 1920x1080", camera.ErrNeedsAttention},
		{"no first frame", func(h *harness) {
			<-h.connects
			h.outcomes <- outcome{sess: newFakeSession()}
			h.waitTimer()
			h.clk.Advance(5 * time.Second)
		}, "fake: cam0: no frame within 5s of opening the camera", camera.ErrNoFrames},
		{"first read fails", func(h *harness) {
			<-h.connects
			s := newFakeSession()
			h.outcomes <- outcome{sess: s}
			s.push(h.t, result{err: errors.New("EIO")})
		}, "fake: cam0: EIO", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			errc := make(chan error, 1)
			go func() { errc <- h.src.Start(context.Background()) }()
			tc.run(h)
			err := <-errc
			if err == nil || err.Error() != tc.want || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("Start = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCloseUnblocks(t *testing.T) {
	t.Run("waiting for a frame", func(t *testing.T) {
		h := newHarness(t)
		s := h.connected()
		h.start(s)
		ch := h.nextAsync(context.Background())
		h.waitTimer()
		h.src.Close()
		if r := receive(t, ch); !errors.Is(r.err, camera.ErrClosed) {
			t.Fatalf("Next = %v, want ErrClosed", r.err)
		}
		if !s.isClosed() {
			t.Fatal("Close left the session open")
		}
		if _, err := h.src.Next(context.Background()); !errors.Is(err, camera.ErrClosed) {
			t.Fatalf("Next after Close = %v", err)
		}
		if c := h.src.Health().Condition; c != camera.ConditionClosed {
			t.Fatalf("condition %q after Close", c)
		}
	})
	t.Run("connecting", func(t *testing.T) {
		h := newHarness(t)
		errc := make(chan error, 1)
		go func() { errc <- h.src.Start(context.Background()) }()
		ctx := <-h.connects
		h.outcomes <- outcome{block: true}
		h.src.Close()
		<-ctx.Done()
		if err := <-errc; !errors.Is(err, camera.ErrClosed) && !errors.Is(err, context.Canceled) {
			t.Fatalf("Start = %v", err)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		h := newHarness(t)
		s := h.connected()
		h.start(s)
		ctx, cancel := context.WithCancel(context.Background())
		ch := h.nextAsync(ctx)
		h.waitTimer()
		cancel()
		if r := receive(t, ch); !errors.Is(r.err, context.Canceled) {
			t.Fatalf("Next = %v", r.err)
		}
		// The session survives a cancelled Next.
		ch = h.nextAsync(context.Background())
		s.push(t, result{f: h.frame(5)})
		if r := receive(t, ch); r.err != nil || r.f.Data[0] != 5 {
			t.Fatalf("Next = %v, %v", r.f.Data, r.err)
		}
	})
}

// TestSharedMeter: a meter handed to a second source carries the counts
// across, as the agent does when it reopens the camera.
func TestSharedMeter(t *testing.T) {
	h := newHarness(t)
	h.start(h.connected())
	h.src.Close()
	h.clk.Advance(3 * time.Second)
	second := New(Options{Name: "fake: cam0", Clock: h.clk, Meter: h.meter, Connect: func(context.Context) (Session, string, error) {
		s := newFakeSession()
		f := h.frame(1)
		go func() {
			select {
			case s.items <- result{f: f}:
			case <-s.closed:
			}
		}()
		return s, "MJPEG", nil
	}})
	defer second.Close()
	h.meter.Lost(errors.New("closed after an error"), false)
	if err := second.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	hl := second.Health()
	if hl.Frames != 2 || hl.Reconnects != 1 || hl.LastGap != 3*time.Second {
		t.Fatalf("health %+v: want 2 frames, 1 reconnect, a 3s gap", hl)
	}
}
