package v4l2

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"testing"

	"github.com/blackjack/webcam"

	"github.com/outpost-cctv/outpost/hal/camera/internal/footagetest"
	"github.com/outpost-cctv/outpost/hal/camera/internal/pool"
	"github.com/outpost-cctv/outpost/hal/camera/mjpeg"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// benchDevice offers MJPEG 1920x1080 at 25 fps and always has a frame
// ready in its one buffer, so that a benchmark measures our side of the
// capture path: wait, dequeue, check, copy, requeue, hand over to Next.
type benchDevice struct {
	buf []byte
}

func (d *benchDevice) GetSupportedFormats() map[webcam.PixelFormat]string {
	return map[webcam.PixelFormat]string{webcam.PixelFormat(MJPEG): "Motion-JPEG"}
}
func (d *benchDevice) GetSupportedFrameSizes(webcam.PixelFormat) []webcam.FrameSize {
	return []webcam.FrameSize{discrete(1920, 1080)}
}
func (d *benchDevice) GetSupportedFramerates(webcam.PixelFormat, uint32, uint32) []webcam.FrameRate {
	return []webcam.FrameRate{fps(25)}
}
func (d *benchDevice) SetImageFormat(f webcam.PixelFormat, w, h uint32) (webcam.PixelFormat, uint32, uint32, error) {
	return f, w, h, nil
}
func (d *benchDevice) SetBufferCount(uint32) error       { return nil }
func (d *benchDevice) SetFramerate(float32) error        { return nil }
func (d *benchDevice) GetFramerate() (float32, error)    { return 25, nil }
func (d *benchDevice) StartStreaming() error             { return nil }
func (d *benchDevice) WaitForFrame(uint32) error         { return nil }
func (d *benchDevice) GetFrame() ([]byte, uint32, error) { return d.buf, 0, nil }
func (d *benchDevice) ReleaseFrame(uint32) error         { return nil }
func (d *benchDevice) Close() error                      { return nil }

// frame1080 is a frame of the 1080p test footage.
func frame1080(b *testing.B) []byte {
	b.Helper()
	path := footagetest.Generate(b, b.TempDir(), 1, "1920x1080")
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	img, _, err := mjpeg.NewReader(f, mjpeg.Options{Mode: mjpeg.Raw}).Next()
	if err != nil {
		b.Fatal(err)
	}
	return img
}

// BenchmarkMJPEGFrame measures the per-frame cost of a 1080p MJPEG frame
// from a driver buffer to the receiver, through the whole Camera (the
// read loop, the hand-over to Next, health): with the frame handed back
// (the steady state) and kept by the receiver.
func BenchmarkMJPEGFrame(b *testing.B) {
	img := frame1080(b)
	for _, recycle := range []bool{true, false} {
		b.Run(fmt.Sprintf("1080p/recycle=%v", recycle), func(b *testing.B) {
			cfg := Config{Path: "/dev/video0", Width: 1920, Height: 1080, FPS: 25}
			c, err := open(context.Background(), cfg, clock.Real{}, nil, func(string) (device, error) { return &benchDevice{buf: img}, nil })
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			b.SetBytes(int64(len(img)))
			b.ReportAllocs()
			for b.Loop() {
				f, err := c.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if recycle {
					c.Recycle(f.Data)
				}
			}
		})
	}
}

// BenchmarkYUYV measures converting and encoding one YUYV frame to JPEG,
// the CPU a camera without MJPEG costs per delivered frame. The frames are
// the test footage's, so the encoder has real picture content to code.
func BenchmarkYUYV(b *testing.B) {
	dir := b.TempDir()
	for _, size := range []string{"640x480", "1280x720", "1920x1080"} {
		b.Run(size, func(b *testing.B) {
			frame, w, h := yuyvFrame(b, footagetest.Generate(b, dir, 1, size))
			enc := newYUYVEncoder(w, h)
			p := pool.New(4, 4<<20)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				out, err := enc.encode(p.Get(w*h/4), frame, 2*w)
				if err != nil {
					b.Fatal(err)
				}
				p.Put(out)
			}
		})
	}
}

// yuyvFrame decodes the first frame of a footage file and packs it as a
// camera would send it in YUYV.
func yuyvFrame(b *testing.B, path string) ([]byte, int, int) {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	img, _, err := mjpeg.NewReader(f, mjpeg.Options{Mode: mjpeg.Raw}).Next()
	if err != nil {
		b.Fatal(err)
	}
	m, err := jpeg.Decode(bytes.NewReader(img))
	if err != nil {
		b.Fatal(err)
	}
	yc, ok := m.(*image.YCbCr)
	if !ok {
		b.Fatalf("footage decodes to %T, not YCbCr", m)
	}
	w, h := yc.Rect.Dx(), yc.Rect.Dy()
	out := make([]byte, 0, w*h*2)
	for y := range h {
		for x := 0; x < w; x += 2 {
			c := yc.COffset(x, y)
			out = append(out, yc.Y[yc.YOffset(x, y)], yc.Cb[c], yc.Y[yc.YOffset(x+1, y)], yc.Cr[c])
		}
	}
	return out, w, h
}
