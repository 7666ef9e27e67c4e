// Package camera defines what the agent needs from a camera: a source of
// encoded frames, each stamped with the wall-clock time it was captured.
//
// Backends live in sub-packages: sim (simulated), v4l2 (USB and CSI
// cameras), httpcam (IP cameras' HTTP MJPEG) and replay (file:PATH);
// hal/camera/open picks one from camera.source. The agent never decodes
// frames on the capture path: they are
// stored as received, codec-tagged so that H.264 can join MJPEG later.
package camera

import (
	"context"
	"time"
)

// Codec names the encoding of a frame. It is persisted in the footage store,
// so its values are stable strings.
type Codec string

const (
	// MJPEG frames are complete baseline JPEG images (possibly without
	// Huffman tables, as many UVC cameras send them).
	MJPEG Codec = "mjpeg"
)

// Frame is one encoded picture from a camera.
type Frame struct {
	// Data is the encoded picture. It is owned by the receiver once Next
	// returns and must not be modified: sources may share immutable buffers
	// between frames.
	Data []byte
	// Codec is the encoding of Data.
	Codec Codec
	// Time is the wall-clock time of capture.
	Time time.Time
	// Width and Height of the picture in pixels.
	Width, Height int
}

// Source is a camera delivering frames at its own pace.
type Source interface {
	// Next blocks until the next frame is available, ctx is done, or the
	// camera fails. A failed source should be closed and opened again.
	Next(ctx context.Context) (Frame, error)
	// Close releases the device.
	Close() error
}
