package scene

import (
	"image"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/footage/motion/jpegdc"
	"github.com/outpost-cctv/outpost/hal/camera/sim"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// BenchmarkObserve measures the analysis of one frame (every frame is due:
// one a second apart), with a reference, at the 1/8 scale of 720p and
// 1080p frames.
func BenchmarkObserve(b *testing.B) {
	for _, size := range []struct {
		name string
		w, h int
	}{{"720p", 160, 90}, {"1080p", 240, 135}} {
		b.Run(size.name, func(b *testing.B) {
			wd := newWorld(size.w+40, size.h+20, 1)
			rnd := rand.New(rand.NewPCG(1, 1))
			v := day()
			v.w, v.h = size.w, size.h
			frames := make([]*image.Gray, 8)
			for i := range frames {
				frames[i] = wd.render(v, t0, rnd)
			}
			a, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := a.Commission(t0, frames[0]); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size.w * size.h))
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				k++
				a.Observe(t0.Add(time.Duration(k)*time.Second), frames[k%len(frames)])
			}
		})
	}
}

// BenchmarkObserveJPEG measures the analysis of one 1280×720 frame of the
// simulated camera from its JPEG (AC energy decode included), with the
// DC-only decode alone as the baseline, and the cost of a frame that is
// not due (24 of every 25).
func BenchmarkObserveJPEG(b *testing.B) {
	clk := clock.NewFake(t0)
	cam, err := sim.New(sim.Config{Width: 1280, Height: 720, FPS: 25, Quality: 75}, clk)
	if err != nil {
		b.Fatal(err)
	}
	defer cam.Close()
	var frames [][]byte
	for range 8 {
		clk.Advance(40 * time.Millisecond)
		f, err := cam.Next(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		frames = append(frames, f.Data)
	}
	b.Run("dc-decode-only", func(b *testing.B) {
		var d jpegdc.Decoder
		var dst *image.Gray
		b.SetBytes(int64(len(frames[0])))
		b.ReportAllocs()
		k := 0
		for b.Loop() {
			k++
			if dst, err = d.Decode(frames[k%len(frames)], dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("analysed", func(b *testing.B) {
		a, err := New(Config{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.CommissionJPEG(t0, frames[0]); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(frames[0])))
		b.ReportAllocs()
		k := 0
		for b.Loop() {
			k++
			if _, err := a.ObserveJPEG(t0.Add(time.Duration(k)*time.Second), frames[k%len(frames)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("not-due", func(b *testing.B) {
		a, err := New(Config{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.ObserveJPEG(t0, frames[0]); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.ObserveJPEG(t0.Add(40*time.Millisecond), frames[1]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
