package v4l2

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unsafe"

	"github.com/blackjack/webcam"
	"golang.org/x/sys/unix"
)

// device is the part of *webcam.Webcam this package uses: the state
// machine sees only this, so tests drive it with a fake. It is wider than
// our usual interfaces because a capture device is one object with one
// lifecycle; every method is the library's own, so the real device is
// the library's type with one method overridden (webcamDevice), with no
// adapter code that only hardware could test.
type device interface {
	GetSupportedFormats() map[webcam.PixelFormat]string
	GetSupportedFrameSizes(f webcam.PixelFormat) []webcam.FrameSize
	GetSupportedFramerates(f webcam.PixelFormat, width, height uint32) []webcam.FrameRate
	// SetImageFormat returns the pixel format the driver chose; the size
	// it returns is the one asked for (a library quirk), so it is not used.
	SetImageFormat(f webcam.PixelFormat, width, height uint32) (webcam.PixelFormat, uint32, uint32, error)
	SetBufferCount(count uint32) error
	SetFramerate(fps float32) error
	GetFramerate() (float32, error)
	StartStreaming() error
	// WaitForFrame waits up to timeout seconds; *webcam.Timeout if none.
	WaitForFrame(timeout uint32) error
	// GetFrame returns a slice of a driver buffer, valid until
	// ReleaseFrame or Close.
	GetFrame() ([]byte, uint32, error)
	ReleaseFrame(index uint32) error
	Close() error
}

// describer is what Describe uses to name a device.
type describer interface {
	GetName() (string, error)
	GetBusInfo() (string, error)
}

// openFunc opens the device at path.
type openFunc func(path string) (device, error)

// openWebcam opens a real device.
func openWebcam(path string) (device, error) {
	w, err := webcam.Open(path)
	if err != nil {
		return nil, err
	}
	return webcamDevice{w}, nil
}

// webcamDevice is the library's device with StartStreaming made to clean
// up after itself.
type webcamDevice struct{ *webcam.Webcam }

// StartStreaming starts the stream; if that fails after the buffers were
// mapped, it unmaps them, which the library does not.
func (d webcamDevice) StartStreaming() error {
	err := d.Webcam.StartStreaming()
	if err != nil {
		if uerr := unmapAfterFailedStart(d.Webcam); uerr != nil {
			err = fmt.Errorf("%w (and unmapping its buffers: %v)", err, uerr)
		}
	}
	return err
}

// unmapAfterFailedStart unmaps the buffers webcam.StartStreaming mapped
// before failing, and forgets them. The library keeps them in an
// unexported field and unmaps them only in StopStreaming, which refuses
// to run when streaming did not start; left alone they would pin the
// driver's buffers until the process exits. The field is reached by
// reflection: TestWebcamBuffersField fails if a new version of the
// library renames or retypes it.
func unmapAfterFailedStart(w *webcam.Webcam) error {
	f := reflect.ValueOf(w).Elem().FieldByName("buffers")
	if !f.IsValid() || f.Type() != reflect.TypeFor[[][]byte]() {
		return errors.New("webcam.Webcam has no buffers field of type [][]byte: this version of the library is not supported")
	}
	field := (*[][]byte)(unsafe.Pointer(f.UnsafeAddr()))
	var errs []error
	for _, b := range *field {
		if b != nil {
			if err := unix.Munmap(b); err != nil {
				errs = append(errs, err)
			}
		}
	}
	*field = nil
	return errors.Join(errs...)
}

// Format is a V4L2 pixel format, a FourCC code.
type Format uint32

// Pixel formats this package captures.
const (
	MJPEG Format = 'M' | 'J'<<8 | 'P'<<16 | 'G'<<24
	YUYV  Format = 'Y' | 'U'<<8 | 'Y'<<16 | 'V'<<24
)

// String returns the FourCC, e.g. "MJPG".
func (f Format) String() string {
	b := []byte{byte(f), byte(f >> 8), byte(f >> 16), byte(f >> 24)}
	for i, c := range b {
		if c < ' ' || c > '~' {
			b[i] = '?'
		}
	}
	return string(b)
}

// errnoHint says what an errno from a camera means to a field engineer.
func errnoHint(err error) string {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		// StartStreaming flattens its errors to text: look for the errno's.
		msg := err.Error()
		for _, e := range []unix.Errno{unix.EBUSY, unix.ENOSPC, unix.ENODEV, unix.EIO, unix.ENOMEM} {
			if strings.HasSuffix(msg, e.Error()) {
				errno = e
				break
			}
		}
		if errno == 0 {
			return ""
		}
	}
	switch errno {
	case unix.ENOENT:
		return "is the camera plugged in? ls /dev/v4l/by-id lists the cameras present"
	case unix.ENODEV, unix.ENXIO:
		return "the camera is gone: unplugged, or its USB port lost power"
	case unix.EIO, unix.EPROTO, unix.EPIPE:
		return "I/O error: a loose cable, a failing camera or too little power on the USB port"
	case unix.ENOTTY, unix.EBADF:
		return "the device is no longer a usable camera (re-enumerated?)"
	case unix.EBUSY:
		return "another program is using the camera"
	case unix.EACCES, unix.EPERM:
		return "permission denied: the agent's user must be in the video group"
	case unix.ENOSPC:
		return "the USB bus lacks bandwidth for this mode: use a smaller size or rate, or another port"
	case unix.ENOMEM:
		return "the driver could not allocate its buffers: use fewer camera.buffers or a smaller size"
	}
	return ""
}

// withHint wraps err with what it means, if known.
func withHint(op string, err error) error {
	if h := errnoHint(err); h != "" {
		return fmt.Errorf("%s: %w (%s)", op, err, h)
	}
	return fmt.Errorf("%s: %w", op, err)
}
