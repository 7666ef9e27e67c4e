package v4l2

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/blackjack/webcam"
	"golang.org/x/sys/unix"
)

// fakeCam is what a camera offers and how its driver behaves. It outlives
// the devices opened on it, as hardware outlives file descriptors.
type fakeCam struct {
	name    string
	formats map[webcam.PixelFormat]string
	sizes   map[webcam.PixelFormat][]webcam.FrameSize
	rates   map[webcam.PixelFormat]map[[2]uint32][]webcam.FrameRate
	// Driver quirks: the format SetImageFormat settles on, the rate
	// GetFramerate reports, whether StartStreaming fails.
	forceFormat webcam.PixelFormat
	forceRate   float32
	startErrs   int // StartStreaming fails this many more times
}

func discrete(w, h uint32) webcam.FrameSize {
	return webcam.FrameSize{MinWidth: w, MaxWidth: w, MinHeight: h, MaxHeight: h}
}

func fps(n uint32) webcam.FrameRate {
	return webcam.FrameRate{MinNumerator: 1, MaxNumerator: 1, MinDenominator: n, MaxDenominator: n}
}

// mode adds a format at a size with rates.
func (c *fakeCam) mode(f Format, desc string, w, h uint32, rates ...uint32) *fakeCam {
	pf := webcam.PixelFormat(f)
	if c.formats == nil {
		c.formats = map[webcam.PixelFormat]string{}
		c.sizes = map[webcam.PixelFormat][]webcam.FrameSize{}
		c.rates = map[webcam.PixelFormat]map[[2]uint32][]webcam.FrameRate{}
	}
	c.formats[pf] = desc
	c.sizes[pf] = append(c.sizes[pf], discrete(w, h))
	if c.rates[pf] == nil {
		c.rates[pf] = map[[2]uint32][]webcam.FrameRate{}
	}
	for _, r := range rates {
		c.rates[pf][[2]uint32{w, h}] = append(c.rates[pf][[2]uint32{w, h}], fps(r))
	}
	return c
}

// usbCam is a typical UVC camera, small sizes to keep tests quick.
func usbCam() *fakeCam {
	c := &fakeCam{name: "HD USB Camera"}
	c.mode(MJPEG, "Motion-JPEG", 320, 240, 30, 25, 15)
	c.mode(MJPEG, "Motion-JPEG", 160, 120, 30)
	c.mode(YUYV, "YUYV 4:2:2", 160, 120, 30)
	return c
}

// fakeSystem is the device nodes: whether the camera is plugged in, and
// every device opened. Frames the "sensor" produces go to whichever
// device is waiting for one.
type fakeSystem struct {
	t   testing.TB
	cam *fakeCam

	frames chan []byte
	errs   chan error

	mu         sync.Mutex
	plugged    bool
	openErr    error
	opened     []*fakeDevice
	violations []string
}

func newFakeSystem(t testing.TB, cam *fakeCam) *fakeSystem {
	s := &fakeSystem{t: t, cam: cam, frames: make(chan []byte), errs: make(chan error), plugged: true}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, v := range s.violations {
			t.Errorf("device misuse: %s", v)
		}
	})
	return s
}

func (s *fakeSystem) violate(format string, args ...any) {
	s.mu.Lock()
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

func (s *fakeSystem) open(path string) (device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.openErr != nil {
		return nil, s.openErr
	}
	if !s.plugged {
		return nil, fmt.Errorf("open %s: %w", path, unix.ENOENT)
	}
	d := &fakeDevice{sys: s, cam: s.cam, gone: make(chan struct{}), bufCount: 256}
	s.opened = append(s.opened, d)
	return d, nil
}

// unplug makes the open device fail with ENODEV and further opens fail
// with ENOENT.
func (s *fakeSystem) unplug() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.plugged = false
	for _, d := range s.opened {
		d.unplug()
	}
}

func (s *fakeSystem) replug() {
	s.mu.Lock()
	s.plugged = true
	s.mu.Unlock()
}

func (s *fakeSystem) devices() []*fakeDevice {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*fakeDevice(nil), s.opened...)
}

// produce hands a frame to the device waiting for one.
func (s *fakeSystem) produce(frame []byte) {
	s.t.Helper()
	select {
	case s.frames <- frame:
	case <-time.After(3 * time.Second):
		s.t.Fatal("no device waited for a frame")
	}
}

// inject makes the waiting device's WaitForFrame fail with err.
func (s *fakeSystem) inject(err error) {
	s.t.Helper()
	select {
	case s.errs <- err:
	case <-time.After(3 * time.Second):
		s.t.Fatal("no device waited for a frame")
	}
}

// fakeDevice is one open file descriptor. Its buffers stand for the
// driver's mmap'ed buffers: on ReleaseFrame and Close they are poisoned,
// as the driver overwriting them or munmap would, so a frame that still
// pointed into one would be caught.
type fakeDevice struct {
	sys *fakeSystem
	cam *fakeCam

	mu        sync.Mutex
	calls     []string
	bufCount  uint32
	format    webcam.PixelFormat
	w, h      uint32
	rate      float32
	streaming bool
	closed    bool
	buffers   [][]byte
	out       []bool // dequeued, not yet released
	ready     []byte // a frame that arrived, for GetFrame
	gone      chan struct{}
	goneOnce  sync.Once
}

func (d *fakeDevice) record(call string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, call)
	if d.closed {
		d.sys.violate("%s after Close", call)
		return false
	}
	return true
}

func (d *fakeDevice) unplug() { d.goneOnce.Do(func() { close(d.gone) }) }

func (d *fakeDevice) isGone() bool {
	select {
	case <-d.gone:
		return true
	default:
		return false
	}
}

func (d *fakeDevice) GetSupportedFormats() map[webcam.PixelFormat]string {
	d.record("GetSupportedFormats")
	return d.cam.formats
}

func (d *fakeDevice) GetSupportedFrameSizes(f webcam.PixelFormat) []webcam.FrameSize {
	d.record("GetSupportedFrameSizes")
	return d.cam.sizes[f]
}

func (d *fakeDevice) GetSupportedFramerates(f webcam.PixelFormat, w, h uint32) []webcam.FrameRate {
	d.record("GetSupportedFramerates")
	return d.cam.rates[f][[2]uint32{w, h}]
}

func (d *fakeDevice) SetImageFormat(f webcam.PixelFormat, w, h uint32) (webcam.PixelFormat, uint32, uint32, error) {
	d.record("SetImageFormat")
	if d.cam.forceFormat != 0 {
		f = d.cam.forceFormat
	}
	d.mu.Lock()
	d.format, d.w, d.h = f, w, h
	d.mu.Unlock()
	return f, w, h, nil // the size asked for, as the library returns
}

func (d *fakeDevice) SetBufferCount(n uint32) error {
	d.record("SetBufferCount")
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.streaming {
		return fmt.Errorf("cannot set buffer count when streaming")
	}
	d.bufCount = n
	return nil
}

func (d *fakeDevice) SetFramerate(f float32) error {
	d.record("SetFramerate")
	d.mu.Lock()
	d.rate = f
	d.mu.Unlock()
	return nil
}

func (d *fakeDevice) GetFramerate() (float32, error) {
	d.record("GetFramerate")
	if d.cam.forceRate != 0 {
		return d.cam.forceRate, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rate, nil
}

func (d *fakeDevice) StartStreaming() error {
	if !d.record("StartStreaming") {
		return unix.EBADF
	}
	d.sys.mu.Lock()
	fail := d.cam.startErrs > 0
	if fail {
		d.cam.startErrs--
	}
	d.sys.mu.Unlock()
	if fail {
		// The library flattens the errno to text.
		return errors.New("Failed to start streaming: " + unix.ENOSPC.Error())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.buffers = make([][]byte, d.bufCount)
	d.out = make([]bool, d.bufCount)
	for i := range d.buffers {
		d.buffers[i] = make([]byte, 1<<20)
	}
	d.streaming = true
	return nil
}

func (d *fakeDevice) WaitForFrame(timeout uint32) error {
	if !d.record("WaitForFrame") {
		return unix.EBADF
	}
	if d.isGone() {
		return nil // poll reports the error condition as readable
	}
	select {
	case f := <-d.sys.frames:
		d.mu.Lock()
		d.ready = f
		d.mu.Unlock()
		return nil
	case err := <-d.sys.errs:
		return err
	case <-d.gone:
		return nil
	case <-time.After(2 * time.Millisecond): // a scaled-down poll timeout
		return &webcam.Timeout{}
	}
}

func (d *fakeDevice) GetFrame() ([]byte, uint32, error) {
	if !d.record("GetFrame") {
		return nil, 0, unix.EBADF
	}
	if d.isGone() {
		return nil, 0, unix.ENODEV
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.streaming {
		d.sys.violate("GetFrame while not streaming")
		return nil, 0, unix.EINVAL
	}
	if d.ready == nil {
		return nil, 0, unix.EAGAIN
	}
	for i := range d.buffers {
		if !d.out[i] {
			n := copy(d.buffers[i], d.ready)
			d.ready = nil
			d.out[i] = true
			return d.buffers[i][:n], uint32(i), nil
		}
	}
	d.sys.violate("every buffer dequeued and none released")
	return nil, 0, unix.EAGAIN
}

func (d *fakeDevice) ReleaseFrame(i uint32) error {
	if !d.record("ReleaseFrame") {
		return unix.EBADF
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if int(i) >= len(d.out) || !d.out[i] {
		d.sys.violate("ReleaseFrame(%d) of a buffer not dequeued", i)
		return unix.EINVAL
	}
	d.out[i] = false
	poison(d.buffers[i])
	return nil
}

func (d *fakeDevice) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "Close")
	if d.closed {
		d.sys.violate("Close twice")
		return unix.EBADF
	}
	d.closed = true
	d.streaming = false
	for _, b := range d.buffers {
		poison(b)
	}
	return nil
}

func (d *fakeDevice) GetName() (string, error)    { return d.cam.name, nil }
func (d *fakeDevice) GetBusInfo() (string, error) { return "usb-0000:01:00.0-1.2", nil }

func (d *fakeDevice) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

func (d *fakeDevice) callList() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

func poison(b []byte) {
	for i := range b {
		b[i] = 0xEE
	}
}
