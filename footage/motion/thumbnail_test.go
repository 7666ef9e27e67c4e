package motion

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"
	"time"
)

func TestThumbnail(t *testing.T) {
	for _, tc := range []struct {
		name         string
		w, h, maxW   int
		wantW, wantH int
		wantErr      bool
	}{
		{"1080p as is", 240, 135, 0, 240, 135, false},
		{"4K halved", 480, 270, 320, 240, 135, false},
		{"subimage", 100, 50, 320, 100, 50, false},
		{"empty", 0, 0, 0, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := synthetic(tc.w, tc.h, 1, func(_, _ int, v float64) float64 { return v })
			if tc.name == "subimage" {
				big := synthetic(200, 100, 1, func(_, _ int, v float64) float64 { return v })
				img = big.SubImage(image.Rect(50, 25, 150, 75)).(*image.Gray)
			}
			b, err := Thumbnail(img, tc.maxW, 0)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Thumbnail: %v", err)
			}
			if err != nil {
				return
			}
			c, err := jpeg.DecodeConfig(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if c.Width != tc.wantW || c.Height != tc.wantH || len(b) > 10<<10 {
				t.Fatalf("%dx%d, %d bytes: want %dx%d, at most 10 KiB", c.Width, c.Height, len(b), tc.wantW, tc.wantH)
			}
		})
	}
}

func TestEventCarriesPeak(t *testing.T) {
	det, _ := NewDetector(Config{StartFrames: 1, WarmUp: 1})
	flat := synthetic(40, 30, 1, func(_, _ int, v float64) float64 { return v })
	det.Process(t0, flat)
	det.Process(t0.Add(40*time.Millisecond), flat)
	moved := synthetic(40, 30, 1, func(x, _ int, v float64) float64 { return v + float64(x%2)*100 })
	e, ok := det.Process(t0.Add(80*time.Millisecond), moved)
	if !ok || e.Peak == nil || !bytes.Equal(e.Peak.Pix, moved.Pix) {
		t.Fatal("start event without the peak frame")
	}
	e.Peak.Pix[0]++ // the receiver owns it
	end, _ := det.Flush()
	if end.Peak == nil || !bytes.Equal(end.Peak.Pix, moved.Pix) {
		t.Fatal("end event without the peak frame, or sharing it")
	}
}
