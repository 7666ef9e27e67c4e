package v4l2

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"image"
	"image/jpeg"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blackjack/webcam"
	"golang.org/x/sys/unix"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/hal/camera/mjpeg"
	"github.com/outpost-cctv/outpost/internal/clock"
)

var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// testJPEG encodes a w×h frame whose content depends on seed.
func testJPEG(t testing.TB, w, h, seed int) []byte {
	t.Helper()
	m := image.NewGray(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = uint8(i*seed + seed)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// stripDHT removes Huffman tables, as UVC cameras send frames.
func stripDHT(t testing.TB, img []byte) []byte {
	t.Helper()
	out := append([]byte{}, img[:2]...)
	for i := 2; ; {
		m := img[i+1]
		if m == 0xDA {
			return append(out, img[i:]...)
		}
		n := int(binary.BigEndian.Uint16(img[i+2:]))
		if m != 0xC4 {
			out = append(out, img[i:i+2+n]...)
		}
		i += 2 + n
	}
}

type rig struct {
	t   *testing.T
	sys *fakeSystem
	clk *clock.Fake
	cfg Config
	cam *Camera
}

func newRig(t *testing.T, fc *fakeCam) *rig {
	r := &rig{t: t, sys: newFakeSystem(t, fc), clk: clock.NewFake(epoch)}
	r.cfg = Config{Path: "/dev/v4l/by-id/usb-cam-video-index0", Width: 320, Height: 240, FPS: 25, FrameTimeout: 5 * time.Second}
	r.cfg.Meter = camera.NewMeter(r.clk, r.cfg.Path, r.cfg.FrameTimeout)
	return r
}

// open opens the camera, producing its first frame.
func (r *rig) open(first []byte) {
	r.t.Helper()
	cam, err := r.tryOpen(first)
	if err != nil {
		r.t.Fatalf("open: %v", err)
	}
	r.cam = cam
	r.t.Cleanup(func() { cam.Close() })
	f := r.next()
	if r.cfg.Width*r.cfg.Height*2 != len(first) && !bytes.Equal(f.Data, first) { // YUYV frames are encoded
		r.t.Fatal("the first frame is not the one produced")
	}
}

// tryOpen opens the camera; if first is not nil, it is produced once the
// device waits for a frame.
func (r *rig) tryOpen(first []byte) (*Camera, error) {
	r.t.Helper()
	type res struct {
		c   *Camera
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := open(context.Background(), r.cfg, r.clk, slog.New(slog.DiscardHandler), r.sys.open)
		ch <- res{c, err}
	}()
	if first != nil {
		select {
		case r.sys.frames <- first:
		case x := <-ch:
			return x.c, x.err
		case <-time.After(3 * time.Second):
			r.t.Fatal("open never waited for a frame")
		}
	}
	x := <-ch
	return x.c, x.err
}

type nextResult struct {
	f   camera.Frame
	err error
}

func (r *rig) nextAsync() <-chan nextResult {
	ch := make(chan nextResult, 1)
	go func() {
		f, err := r.cam.Next(context.Background())
		ch <- nextResult{f, err}
	}()
	return ch
}

func (r *rig) next() camera.Frame {
	r.t.Helper()
	ch := r.nextAsync()
	select {
	case x := <-ch:
		if x.err != nil {
			r.t.Fatalf("Next: %v", x.err)
		}
		return x.f
	case <-time.After(3 * time.Second):
		r.t.Fatal("Next did not return")
	}
	return camera.Frame{}
}

// await advances the fake clock in small steps, as a clock would run,
// until ch delivers, failing after limit of fake time.
func (r *rig) await(ch <-chan nextResult, limit time.Duration) nextResult {
	r.t.Helper()
	start := r.clk.Now()
	for {
		select {
		case x := <-ch:
			return x
		default:
		}
		if r.clk.Now().Sub(start) > limit {
			r.t.Fatalf("nothing after %v", limit)
		}
		if r.clk.Waiters() > 0 {
			r.clk.Advance(50 * time.Millisecond)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// advanceUntil advances the fake clock in small steps until cond holds,
// failing after limit of fake time. It stops advancing as soon as cond
// holds, so that what happens next is not raced by the clock.
func (r *rig) advanceUntil(cond func() bool, limit time.Duration) {
	r.t.Helper()
	start := r.clk.Now()
	for !cond() {
		if r.clk.Now().Sub(start) > limit {
			r.t.Fatalf("condition not met after %v", limit)
		}
		if r.clk.Waiters() > 0 {
			r.clk.Advance(50 * time.Millisecond)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// devicesOpened is a condition: at least n devices opened.
func (r *rig) devicesOpened(n int) func() bool {
	return func() bool { return len(r.sys.devices()) >= n }
}

// receive waits for Next's result without touching the clock.
func receive(t *testing.T, ch <-chan nextResult) nextResult {
	t.Helper()
	select {
	case x := <-ch:
		return x
	case <-time.After(3 * time.Second):
		t.Fatal("Next did not return")
		return nextResult{}
	}
}

func TestFramesAreCopiedIntact(t *testing.T) {
	r := newRig(t, usbCam())
	frames := [][]byte{testJPEG(t, 320, 240, 1)}
	r.open(frames[0])
	var got []camera.Frame
	for i := 2; i <= 12; i++ {
		img := testJPEG(t, 320, 240, i)
		frames = append(frames, img)
		ch := r.nextAsync()
		r.clk.Advance(40 * time.Millisecond)
		r.sys.produce(img)
		x := <-ch
		if x.err != nil {
			t.Fatal(x.err)
		}
		got = append(got, x.f)
	}
	r.cam.Close()
	// Every buffer has been released and the device closed (poisoning
	// them): frames still intact were copied out.
	for i, f := range got {
		if !bytes.Equal(f.Data, frames[i+1]) {
			t.Fatalf("frame %d changed after its buffer went back to the driver", i+1)
		}
		if f.Codec != camera.MJPEG || f.Width != 320 || f.Height != 240 || f.Time.IsZero() {
			t.Fatalf("frame %d: %+v", i+1, f)
		}
	}
	d := r.sys.devices()[0]
	calls := d.callList()
	if i, j := slices.Index(calls, "SetBufferCount"), slices.Index(calls, "StartStreaming"); i < 0 || j < i {
		t.Fatalf("calls %v: SetBufferCount must come before StartStreaming", calls)
	}
	if d.bufCount != 4 {
		t.Fatalf("streamed with %d buffers, want 4", d.bufCount)
	}
	if !d.isClosed() || calls[len(calls)-1] != "Close" {
		t.Fatalf("device not closed last: %v", calls[max(0, len(calls)-3):])
	}
	if h := r.cam.Health(); h.Frames != 12 || h.Mode != "MJPEG 320x240 @ 25 fps" {
		t.Fatalf("health %+v", h)
	}
}

func TestNegotiationFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		cam  func() *fakeCam
		cfg  func(*Config)
		want []string
	}{
		{"size not offered", usbCam, func(c *Config) { c.Width, c.Height = 1920, 1080 },
			[]string{"the camera does not offer MJPEG at 1920x1080; it offers:", "MJPG 320x240 @ 30, 25, 15 fps; 160x120 @ 30 fps", "YUYV 160x120 @ 30 fps", "set camera.width, camera.height and camera.fps"}},
		{"rate not offered", usbCam, func(c *Config) { c.Width, c.Height, c.FPS = 160, 120, 25 },
			[]string{"the camera offers MJPEG 160x120 at 30 fps, not 25 fps"}},
		{"driver chooses another format", func() *fakeCam { c := usbCam(); c.forceFormat = webcam.PixelFormat(YUYV); return c }, nil,
			[]string{"asked for MJPG 320x240, the driver chose YUYV"}},
		{"driver chooses another rate", func() *fakeCam { c := usbCam(); c.forceRate = 30; return c }, nil,
			[]string{"asked for MJPEG 320x240 at 25 fps, the driver chose 30 fps"}},
		{"no usable format", func() *fakeCam { return (&fakeCam{}).mode(Format(0x34363248), "H.264", 320, 240, 30) }, nil,
			[]string{"the camera offers neither MJPEG nor YUYV", "H264 320x240 @ 30 fps"}},
		{"YUYV only, not at the size", func() *fakeCam { return (&fakeCam{}).mode(YUYV, "YUYV", 640, 480, 30) }, nil,
			[]string{"the camera offers no MJPEG, and no YUYV at 320x240"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.cam())
			if tc.cfg != nil {
				tc.cfg(&r.cfg)
			}
			_, err := r.tryOpen(nil)
			if !errors.Is(err, camera.ErrNeedsAttention) {
				t.Fatalf("open = %v, want a needs-attention error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			for _, d := range r.sys.devices() {
				if !d.isClosed() {
					t.Error("a device was left open")
				}
			}
		})
	}
}

// TestWrongFrameSize: a driver that accepts a size and sends another is
// caught on the first frame.
func TestWrongFrameSize(t *testing.T) {
	r := newRig(t, usbCam())
	_, err := r.tryOpen(testJPEG(t, 160, 120, 1))
	if !errors.Is(err, camera.ErrNeedsAttention) || !strings.Contains(err.Error(), "the camera sends 160x120 frames, not the 320x240 it accepted") {
		t.Fatalf("open = %v", err)
	}
	if d := r.sys.devices()[0]; !d.isClosed() {
		t.Fatal("device left open")
	}
}

// TestUnplugAndReplug: the camera is unplugged for two seconds; capture
// reopens it by path, renegotiates, and resumes without Next failing.
func TestUnplugAndReplug(t *testing.T) {
	r := newRig(t, usbCam())
	r.open(testJPEG(t, 320, 240, 1))
	ch := r.nextAsync()
	r.sys.unplug()
	// While unplugged, attempts to reopen fail; then it comes back.
	deadline := r.clk.Now().Add(2 * time.Second)
	for r.clk.Now().Before(deadline) {
		if r.clk.Waiters() > 0 {
			r.clk.Advance(50 * time.Millisecond)
		}
		time.Sleep(200 * time.Microsecond)
	}
	r.sys.replug()
	again := testJPEG(t, 320, 240, 2)
	r.advanceUntil(r.devicesOpened(2), 3*time.Second)
	r.sys.produce(again)
	x := receive(t, ch)
	if x.err != nil {
		t.Fatalf("Next = %v, want the frame after replugging", x.err)
	}
	if !bytes.Equal(x.f.Data, again) {
		t.Fatal("wrong frame after replugging")
	}
	devs := r.sys.devices()
	if len(devs) != 2 || !devs[0].isClosed() || devs[1].isClosed() {
		t.Fatalf("%d devices opened; want the first closed and the second streaming", len(devs))
	}
	if c := devs[1].callList(); !slices.Contains(c, "SetImageFormat") || !slices.Contains(c, "StartStreaming") {
		t.Fatalf("the reopened device was not renegotiated: %v", c)
	}
	h := r.cam.Health()
	if h.Reconnects != 1 || h.LastGap < 2*time.Second || h.Condition != camera.ConditionOK {
		t.Fatalf("health %+v", h)
	}
	if !strings.Contains(h.LastError, "is the camera plugged in?") {
		t.Errorf("last error %q does not say what to check", h.LastError)
	}
}

// TestUnpluggedIsReported: a camera that stays away is reported at the
// frame timeout, saying what happened.
func TestUnpluggedIsReported(t *testing.T) {
	r := newRig(t, usbCam())
	r.open(testJPEG(t, 320, 240, 1))
	ch := r.nextAsync()
	r.sys.unplug()
	x := r.await(ch, 6*time.Second)
	if !errors.Is(x.err, camera.ErrNoFrames) {
		t.Fatalf("Next = %v, want ErrNoFrames", x.err)
	}
	for _, w := range []string{"v4l2: /dev/v4l/by-id/usb-cam-video-index0: no frame for 5s", "no such file or directory", "is the camera plugged in?"} {
		if !strings.Contains(x.err.Error(), w) {
			t.Errorf("error %q does not contain %q", x.err, w)
		}
	}
	if h := r.cam.Health(); h.Condition != camera.ConditionNoFrames {
		t.Fatalf("condition %q", h.Condition)
	}
}

// TestDeviceErrorsReopen: each error a device can fail with tears it down
// and the camera is reopened.
func TestDeviceErrorsReopen(t *testing.T) {
	for _, errno := range []unix.Errno{unix.ENODEV, unix.EIO, unix.ENOTTY} {
		t.Run(errno.Error(), func(t *testing.T) {
			r := newRig(t, usbCam())
			r.open(testJPEG(t, 320, 240, 1))
			ch := r.nextAsync()
			r.sys.inject(errno)
			img := testJPEG(t, 320, 240, 3)
			r.advanceUntil(r.devicesOpened(2), 3*time.Second)
			r.sys.produce(img)
			x := receive(t, ch)
			if x.err != nil || !bytes.Equal(x.f.Data, img) {
				t.Fatalf("Next = %v after %v; want the next frame from a reopened device", x.err, errno)
			}
			if devs := r.sys.devices(); !devs[0].isClosed() {
				t.Fatal("the failed device was not closed")
			}
			if h := r.cam.Health(); !strings.Contains(h.LastError, errno.Error()) {
				t.Fatalf("last error %q", h.LastError)
			}
		})
	}
}

// TestStallReopens: a device that stops delivering is reported at the
// frame timeout, closed, and reopened by the next Next.
func TestStallReopens(t *testing.T) {
	r := newRig(t, usbCam())
	r.open(testJPEG(t, 320, 240, 1))
	x := r.await(r.nextAsync(), 6*time.Second)
	if !errors.Is(x.err, camera.ErrNoFrames) || !strings.Contains(x.err.Error(), "stopped sending") {
		t.Fatalf("Next = %v", x.err)
	}
	if !r.sys.devices()[0].isClosed() {
		t.Fatal("stalled device not closed")
	}
	img := testJPEG(t, 320, 240, 2)
	ch := r.nextAsync()
	r.advanceUntil(r.devicesOpened(2), 3*time.Second)
	r.sys.produce(img)
	if x := receive(t, ch); x.err != nil {
		t.Fatal(x.err)
	}
}

// TestFailedStartIsRetried: StartStreaming failing (no USB bandwidth)
// closes the device, and the camera is tried again.
func TestFailedStartIsRetried(t *testing.T) {
	fc := usbCam()
	r := newRig(t, fc)
	r.open(testJPEG(t, 320, 240, 1))
	r.sys.mu.Lock()
	fc.startErrs = 2
	r.sys.mu.Unlock()
	ch := r.nextAsync()
	r.sys.inject(unix.EIO)
	img := testJPEG(t, 320, 240, 5)
	r.advanceUntil(r.devicesOpened(4), 5*time.Second)
	r.sys.produce(img)
	if x := receive(t, ch); x.err != nil {
		t.Fatalf("Next = %v", x.err)
	}
	devs := r.sys.devices()
	for _, d := range devs[:3] {
		if !d.isClosed() {
			t.Fatal("a device whose stream failed to start was left open")
		}
	}
	if h := r.cam.Health(); !strings.Contains(h.LastError, "start streaming: Failed to start streaming: no space left on device (the USB bus lacks bandwidth") {
		t.Errorf("last error %q", h.LastError)
	}
}

func TestBadFramesDropped(t *testing.T) {
	r := newRig(t, usbCam())
	r.cfg.MaxFrameSize = 64 << 10
	r.open(testJPEG(t, 320, 240, 1))
	good := testJPEG(t, 320, 240, 2)
	// A comment segment pads a frame over the cap.
	com := append([]byte{0xFF, 0xFE, 0xFF, 0xFF}, make([]byte, 0xFFFD)...)
	big := append(append(append([]byte{}, good[:2]...), com...), good[2:]...)
	noDHT := stripDHT(t, good)
	ch := r.nextAsync()
	r.sys.produce(good[:len(good)/2]) // truncated by a USB hiccup
	r.sys.produce(big)
	r.sys.produce(noDHT) // stored as received
	x := <-ch
	if x.err != nil || !bytes.Equal(x.f.Data, noDHT) {
		t.Fatalf("Next = %v; want the frame without tables, as sent", x.err)
	}
	h := r.cam.Health()
	if h.Dropped != 2 || h.DropReason != mjpeg.ReasonOversize {
		t.Fatalf("health %+v: want 2 dropped, the last over the cap", h)
	}
}

func TestPaddedFramesTrimmed(t *testing.T) {
	r := newRig(t, usbCam())
	r.open(testJPEG(t, 320, 240, 1))
	img := testJPEG(t, 320, 240, 2)
	ch := r.nextAsync()
	r.sys.produce(append(append([]byte{}, img...), make([]byte, 512)...))
	if x := <-ch; x.err != nil || !bytes.Equal(x.f.Data, img) {
		t.Fatalf("Next = %v; want the frame without the driver's padding", x.err)
	}
}

// TestYUYVOnly: a camera without MJPEG is captured in YUYV, encoded to
// JPEG at the reduced rate.
func TestYUYVOnly(t *testing.T) {
	fc := (&fakeCam{}).mode(YUYV, "YUYV 4:2:2", 160, 120, 30, 15)
	r := newRig(t, fc)
	r.cfg.Width, r.cfg.Height, r.cfg.YUYVFPS = 160, 120, 5
	yuyv := make([]byte, 160*120*2)
	for i := range yuyv {
		yuyv[i] = byte(i)
		if i%2 == 1 {
			yuyv[i] = 128 // neutral chroma
		}
	}
	r.open(yuyv)
	if mode := r.cam.Health().Mode; mode != "YUYV 160x120 @ 15 fps, encoded to JPEG @ 5 fps" {
		t.Fatalf("mode %q", mode)
	}
	// Three seconds of frames at 15 fps: 45 in, about 15 out.
	frames := make(chan camera.Frame, 100)
	stop := make(chan struct{})
	go func() {
		for {
			f, err := r.cam.Next(context.Background())
			if err != nil {
				return
			}
			select {
			case frames <- f:
			case <-stop:
				return
			}
		}
	}()
	for range 45 {
		r.clk.Advance(time.Second / 15)
		r.sys.produce(yuyv)
	}
	time.Sleep(10 * time.Millisecond) // let the last encoded frame through
	close(stop)
	n := len(frames)
	if n < 14 || n > 16 {
		t.Fatalf("%d frames encoded from 3 s of 15 fps YUYV, want 15 at 5 fps", n)
	}
	f := <-frames
	m, err := jpeg.Decode(bytes.NewReader(f.Data))
	if err != nil {
		t.Fatalf("an encoded frame does not decode: %v", err)
	}
	if b := m.Bounds(); b.Dx() != 160 || b.Dy() != 120 || f.Width != 160 || f.Codec != camera.MJPEG {
		t.Fatalf("encoded frame %v, %+v", b, f)
	}
	// The picture survived the conversion: luma ramps as produced.
	yc := m.(*image.YCbCr)
	if got, want := yc.Y[yc.YOffset(10, 0)], yuyv[20]; absDiff(got, want) > 8 {
		t.Errorf("luma at (10,0) = %d, want about %d", got, want)
	}
}

func absDiff(a, b byte) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

func TestCloseWhileWaiting(t *testing.T) {
	r := newRig(t, usbCam())
	r.open(testJPEG(t, 320, 240, 1))
	ch := r.nextAsync()
	time.Sleep(5 * time.Millisecond) // let the read loop poll
	done := make(chan struct{})
	go func() { r.cam.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not return")
	}
	if x := <-ch; !errors.Is(x.err, camera.ErrClosed) {
		t.Fatalf("Next = %v, want ErrClosed", x.err)
	}
	d := r.sys.devices()[0]
	if calls := d.callList(); calls[len(calls)-1] != "Close" {
		t.Fatalf("device used after Close: %v", calls[len(calls)-3:])
	}
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		attention bool
		want      string
	}{
		{"permission", &fsError{unix.EACCES}, true, "the agent's user must be in the video group"},
		{"codec node", errors.New("Not a video capture device"), true, "use the camera's /dev/v4l/by-id/... path"},
		{"busy", &fsError{unix.EBUSY}, false, "another program is using the camera"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, usbCam())
			r.sys.openErr = tc.err
			_, err := r.tryOpen(nil)
			if err == nil || errors.Is(err, camera.ErrNeedsAttention) != tc.attention || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("open = %v; want attention=%v and %q", err, tc.attention, tc.want)
			}
		})
	}
}

type fsError struct{ errno unix.Errno }

func (e *fsError) Error() string { return "open /dev/video0: " + e.errno.Error() }
func (e *fsError) Unwrap() error { return e.errno }

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Path: "video0", Width: 320, Height: 240, FPS: 25}, `"video0" is not a device path`},
		{Config{Path: "/dev/video0", Width: 0, Height: 240, FPS: 25}, "size 0x240"},
		{Config{Path: "/dev/video0", Width: 320, Height: 240, FPS: 25, Buffers: 64}, "64 buffers: use 2-32"},
	} {
		_, err := open(context.Background(), tc.cfg, clock.NewFake(epoch), nil, newFakeSystem(t, usbCam()).open)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("open(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestDescribe(t *testing.T) {
	sys := newFakeSystem(t, usbCam())
	d, err := describe(sys.open, "/dev/video0")
	if err != nil {
		t.Fatal(err)
	}
	want := `/dev/video0: HD USB Camera (usb-0000:01:00.0-1.2)
  MJPG  Motion-JPEG
    320x240     30, 25, 15 fps
    160x120     30 fps
  YUYV  YUYV 4:2:2
    160x120     30 fps
`
	if got := d.String(); got != want {
		t.Fatalf("description:\n%s\nwant:\n%s", got, want)
	}
	if !sys.devices()[0].isClosed() {
		t.Fatal("describe left the device open")
	}
	sys.unplug()
	if _, err := describe(sys.open, "/dev/video0"); err == nil || !strings.Contains(err.Error(), "is the camera plugged in?") {
		t.Fatalf("describe of an absent camera = %v", err)
	}
}

func TestChooseRates(t *testing.T) {
	cam := (&fakeCam{}).mode(MJPEG, "MJPEG", 640, 480, 30, 15)
	caps := readCaps(&fakeDevice{cam: cam, sys: newFakeSystem(t, cam)})
	for _, tc := range []struct {
		fps  int
		ok   bool
		want string
	}{
		{30, true, "MJPEG 640x480 @ 30 fps"},
		{15, true, "MJPEG 640x480 @ 15 fps"},
		{25, false, ""},
	} {
		p, err := choose(caps, Config{Path: "/dev/video0", Width: 640, Height: 480, FPS: tc.fps, YUYVFPS: 5})
		if (err == nil) != tc.ok || (tc.ok && p.String() != tc.want) {
			t.Errorf("choose %d fps = %v, %v", tc.fps, p, err)
		}
	}
	// YUYV: the slowest rate at or above the encode rate.
	for _, tc := range []struct {
		rates []uint32
		enc   float64
		want  float64
	}{
		{[]uint32{30, 15, 10}, 5, 10},
		{[]uint32{30, 5}, 5, 5},
		{[]uint32{3, 2}, 5, 3},
	} {
		s := SizeCaps{}
		for _, r := range tc.rates {
			rc, _ := rateCaps(fps(r))
			s.Rates = append(s.Rates, rc)
		}
		if got := yuyvCaptureRate(s, tc.enc); got != tc.want {
			t.Errorf("yuyvCaptureRate(%v, %v) = %v, want %v", tc.rates, tc.enc, got, tc.want)
		}
	}
}

// TestCaptureAllocatesNothing: in steady state, with frames handed back,
// a frame costs no allocation from the driver's buffer to the receiver.
func TestCaptureAllocatesNothing(t *testing.T) {
	img := testJPEG(t, 1920, 1080, 1)
	c, err := open(context.Background(), Config{Path: "/dev/video0", Width: 1920, Height: 1080, FPS: 25}, clock.Real{}, nil,
		func(string) (device, error) { return &benchDevice{buf: img}, nil })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	allocs := testing.AllocsPerRun(200, func() {
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.Recycle(f.Data)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations a frame, want 0", allocs)
	}
}
