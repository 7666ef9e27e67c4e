package jpegdc

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera/sim"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// simFrame returns a noisy frame of the simulated camera's street.
func simFrame(b *testing.B, w, h int) []byte {
	b.Helper()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cam, err := sim.New(sim.Config{Width: w, Height: h, FPS: 25, MotionEvery: 0, Quality: 75}, clk)
	if err != nil {
		b.Fatal(err)
	}
	defer cam.Close()
	f, err := cam.Next(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	return f.Data
}

// BenchmarkDecode1080p compares the DC-only decode with image/jpeg's full
// decode of the same 1080p frame, in the same run.
func BenchmarkDecode1080p(b *testing.B) {
	frame := simFrame(b, 1920, 1080)
	b.Run("jpegdc", func(b *testing.B) {
		var d Decoder
		var dst *image.Gray
		b.SetBytes(int64(len(frame)))
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if dst, err = d.Decode(frame, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("image-jpeg", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jpeg.Decode(bytes.NewReader(frame)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
