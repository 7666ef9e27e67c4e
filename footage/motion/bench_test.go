package motion

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/footage/motion/jpegdc"
	"github.com/outpost-cctv/outpost/hal/camera/sim"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// simFrames returns n consecutive frames of the simulated street (noise
// varies from frame to frame).
func simFrames(b *testing.B, w, h, n int) [][]byte {
	b.Helper()
	clk := clock.NewFake(t0)
	cam, err := sim.New(sim.Config{Width: w, Height: h, FPS: 25, MotionEvery: 0, Quality: 75}, clk)
	if err != nil {
		b.Fatal(err)
	}
	defer cam.Close()
	var out [][]byte
	for range n {
		f, err := cam.Next(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, f.Data)
		clk.Advance(40 * time.Millisecond)
	}
	return out
}

// BenchmarkDetector measures the whole per-frame work of motion detection
// (DC-only decode and background model) at 720p and 1080p, against
// image/jpeg's full decode of the same frames, which a detector working on
// pixels would need before doing anything.
func BenchmarkDetector(b *testing.B) {
	for _, size := range []struct{ w, h int }{{1280, 720}, {1920, 1080}} {
		frames := simFrames(b, size.w, size.h, 8)
		total := 0
		for _, f := range frames {
			total += len(f)
		}
		b.Run(fmt.Sprintf("%dp/detector", size.h), func(b *testing.B) {
			det, err := NewDetector(Config{})
			if err != nil {
				b.Fatal(err)
			}
			var dec jpegdc.Decoder
			var img *image.Gray
			at := t0
			b.SetBytes(int64(total / len(frames)))
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				img, err = dec.Decode(frames[k%len(frames)], img)
				if err != nil {
					b.Fatal(err)
				}
				det.Process(at, img)
				at = at.Add(40 * time.Millisecond)
				k++
			}
		})
		b.Run(fmt.Sprintf("%dp/image-jpeg-decode", size.h), func(b *testing.B) {
			b.SetBytes(int64(total / len(frames)))
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				if _, err := jpeg.Decode(bytes.NewReader(frames[k%len(frames)])); err != nil {
					b.Fatal(err)
				}
				k++
			}
		})
	}
}
