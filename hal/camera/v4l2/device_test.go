package v4l2

import (
	"errors"
	"reflect"
	"testing"
	"unsafe"

	"github.com/blackjack/webcam"
	"golang.org/x/sys/unix"
)

// TestWebcamBuffersField pins the library field unmapAfterFailedStart
// relies on: if a new version renames or retypes it, this fails.
func TestWebcamBuffersField(t *testing.T) {
	f, ok := reflect.TypeFor[webcam.Webcam]().FieldByName("buffers")
	if !ok || f.Type != reflect.TypeFor[[][]byte]() {
		t.Fatalf("webcam.Webcam.buffers is %v (found %v): update unmapAfterFailedStart for this version of the library", f.Type, ok)
	}
}

// TestUnmapAfterFailedStart puts a real mapping where the library keeps
// its buffers and checks it is unmapped and forgotten.
func TestUnmapAfterFailedStart(t *testing.T) {
	w := &webcam.Webcam{}
	if err := unmapAfterFailedStart(w); err != nil {
		t.Fatalf("nothing mapped: %v", err)
	}
	m, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	field := reflect.ValueOf(w).Elem().FieldByName("buffers")
	*(*[][]byte)(unsafe.Pointer(field.UnsafeAddr())) = [][]byte{m}
	if err := unmapAfterFailedStart(w); err != nil {
		t.Fatal(err)
	}
	if n := field.Len(); n != 0 {
		t.Fatalf("%d buffers still listed", n)
	}
	// Unmapping again fails: the mapping is gone.
	if err := unix.Munmap(m); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("second munmap = %v, want EINVAL (already unmapped)", err)
	}
}

func TestFormatString(t *testing.T) {
	if MJPEG.String() != "MJPG" || YUYV.String() != "YUYV" || Format(0x01).String() != "????" {
		t.Fatalf("%s %s %s", MJPEG, YUYV, Format(1))
	}
}
