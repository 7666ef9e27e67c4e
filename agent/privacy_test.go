package agent

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"log/slog"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// frameSource serves the frames it was given, in turn.
type frameSource struct{ frames [][]byte }

func (s *frameSource) Next(ctx context.Context) (camera.Frame, error) {
	f := s.frames[0]
	s.frames = s.frames[1:]
	return camera.Frame{Data: f, Codec: camera.MJPEG, Width: 320, Height: 240, Time: time.Unix(0, 0)}, nil
}

func (s *frameSource) Close() error { return nil }

func stripes(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for y := 0; y < 240; y++ {
		for x := 0; x < 320; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 7), uint8(y * 5), uint8((x + y) * 3), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestMaskedCameraBlanksBeforeAnyoneSees: every frame leaves the camera
// wrapper masked; one that cannot be masked leaves it grey, never as it
// came.
func TestMaskedCameraBlanksBeforeAnyoneSees(t *testing.T) {
	orig := stripes(t)
	kept := bytes.Clone(orig)
	damaged := append(bytes.Clone(orig[:len(orig)/2]), 0xFF, 0xD9)
	pm, err := NewPrivacyMask([][][2]float64{{{0.5, 0}, {1, 0}, {1, 0.5}, {0.5, 0.5}}}, 320, 240)
	if err != nil || pm == nil {
		t.Fatalf("mask: %v", err)
	}
	open := maskCamera(func(context.Context) (camera.Source, error) {
		return &frameSource{frames: [][]byte{orig, damaged, orig}}, nil
	}, pm, clock.Real{}, slog.New(slog.DiscardHandler))
	src, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"masked", "grey", "masked"} {
		f, err := src.Next(context.Background())
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		img, err := jpeg.Decode(bytes.NewReader(f.Data))
		if err != nil {
			t.Fatalf("frame %d does not decode: %v", i, err)
		}
		luma := func(x, y int) uint8 { return color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y }
		masked := luma(200, 20)
		for y := 0; y < 128; y++ {
			for x := 160; x < 320; x++ {
				if v := luma(x, y); v != masked {
					t.Fatalf("frame %d: masked area not uniform at (%d,%d): %d vs %d", i, x, y, v, masked)
				}
			}
		}
		outside := luma(10, 200) != masked || luma(100, 10) != masked
		if (want == "masked") != outside {
			t.Fatalf("frame %d: want %s, the picture outside the mask is flat: %v", i, want, !outside)
		}
	}
	if !bytes.Equal(orig, kept) {
		t.Fatal("the camera's own buffer was written to")
	}

	// No masks configured: the camera is not wrapped.
	if pm, err := NewPrivacyMask(nil, 320, 240); pm != nil || err != nil {
		t.Fatalf("no masks: %v %v", pm, err)
	}
}
