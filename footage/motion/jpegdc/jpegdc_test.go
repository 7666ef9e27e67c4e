package jpegdc

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera/mjpeg"
	"github.com/outpost-cctv/outpost/hal/camera/sim"
	"github.com/outpost-cctv/outpost/internal/clock"
)

func TestMatchesStdlib(t *testing.T) {
	rgb := scene(333, 187, 1) // odd sizes: partial blocks and MCUs
	gray := image.NewGray(rgb.Bounds())
	for i := range gray.Pix {
		gray.Pix[i] = rgb.Pix[4*i+1]
	}
	tests := []struct {
		name string
		img  func(t *testing.T) []byte
	}{
		{"image/jpeg 4:2:0 q75", func(t *testing.T) []byte { return encodeStd(t, rgb, 75) }},
		{"image/jpeg 4:2:0 q95", func(t *testing.T) []byte { return encodeStd(t, rgb, 95) }},
		{"image/jpeg 4:2:0 q10", func(t *testing.T) []byte { return encodeStd(t, rgb, 10) }},
		{"image/jpeg grayscale", func(t *testing.T) []byte { return encodeStd(t, gray, 75) }},
		{"ffmpeg yuvj420p", func(t *testing.T) []byte { return encodeFFmpeg(t, rgb, "yuvj420p") }},
		{"ffmpeg yuvj422p", func(t *testing.T) []byte { return encodeFFmpeg(t, rgb, "yuvj422p") }},
		{"ffmpeg yuvj444p", func(t *testing.T) []byte { return encodeFFmpeg(t, rgb, "yuvj444p") }},
		{"ffmpeg gray", func(t *testing.T) []byte { return encodeFFmpeg(t, gray, "gray") }},
		{"no Huffman tables (UVC)", func(t *testing.T) []byte { return withoutDHT(encodeStd(t, rgb, 75)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.img(t)
			want := blockMeans(t, withStdTables(t, img))
			got, err := Decode(img)
			if err != nil {
				t.Fatal(err)
			}
			// The DC is the exact mean of the block before clamping and
			// rounding of each pixel; at low quality the clamping of
			// ringing shifts means a little more.
			compare(t, got, want, 333, 187, 3)
		})
	}
}

// withStdTables gives image/jpeg a frame it can read.
func withStdTables(t *testing.T, img []byte) []byte {
	t.Helper()
	b, err := mjpeg.WithHuffmanTables(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRestartIntervals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		w, h    int
		restart int
	}{
		{"none", 123, 45, 0},
		{"every block", 123, 45, 1},
		{"every 7 blocks", 123, 45, 7},
		{"every row", 128, 64, 16},
		{"wraps RST7 to RST0", 640, 80, 3},
		{"longer than the image", 64, 64, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, vals := dcOnlyJPEG(tc.w, tc.h, tc.restart, uint64(tc.w*tc.restart), true)
			if tc.restart > 0 && !bytes.Contains(img, []byte{0xFF, mRST0}) && tc.restart < len(vals) {
				t.Fatal("test image has no restart marker")
			}
			got, err := Decode(img)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if got.Pix[i] != v {
					t.Fatalf("block %d = %d, want %d", i, got.Pix[i], v)
				}
			}
			// And image/jpeg agrees on the picture itself.
			compare(t, got, blockMeans(t, img), tc.w, tc.h, 1)
		})
	}
}

func TestSimFrames(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cam, err := sim.New(sim.Config{Width: 320, Height: 240, FPS: 25, MotionEvery: 0, Quality: 75}, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	var d Decoder
	var dst *image.Gray
	for k := 0; k < 3; k++ {
		clk.Advance(40 * time.Millisecond)
		f, err := cam.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		dst, err = d.Decode(f.Data, dst)
		if err != nil {
			t.Fatal(err)
		}
		compare(t, dst, blockMeans(t, f.Data), 320, 240, 2)
	}
}

func TestErrors(t *testing.T) {
	good := encodeStd(t, scene(64, 48, 3), 75)
	prog, err := os.ReadFile(filepath.Join("testdata", "progressive.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		img  []byte
		want string
	}{
		{"empty", nil, "not a JPEG"},
		{"not a JPEG", []byte("GIF89a......"), "not a JPEG"},
		{"SOI only", good[:2], "truncated"},
		{"cut in the headers", good[:100], "truncated"},
		{"cut in the scan", good[:len(good)*2/3], "truncated"},
		{"progressive", prog, "progressive"},
		{"no frame header", []byte{0xFF, 0xD8, 0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0xFF, 0xD9}, "before the frame header"},
		{"no scan", []byte{0xFF, 0xD8, 0xFF, 0xD9}, "no scan"},
		{"12-bit", []byte{0xFF, 0xD8, 0xFF, 0xC1, 0, 11, 12, 0, 8, 0, 8, 1, 1, 0x11, 0}, "12-bit"},
		{"huge", []byte{0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0xFF, 0xFF, 0xFF, 0xFF, 1, 1, 0x11, 0}, "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.img)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode = %v, want an error containing %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "jpegdc: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
	if _, err := Decode(prog); !errors.Is(err, ErrProgressive) {
		t.Fatalf("progressive: %v, want ErrProgressive", err)
	}
}

// TestDamage cuts and corrupts a real frame at every position: the decoder
// must return (an image or an error) without panicking.
func TestDamage(t *testing.T) {
	good := encodeStd(t, scene(48, 32, 4), 75)
	var d Decoder
	for i := range good {
		d.Decode(good[:i], nil)
		bad := append([]byte(nil), good...)
		bad[i] ^= 0x5A
		d.Decode(bad, nil)
		bad[i] = 0xFF
		d.Decode(bad, nil)
	}
}

func TestReusesImage(t *testing.T) {
	img := encodeStd(t, scene(160, 120, 5), 75)
	var d Decoder
	dst, err := d.Decode(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := d.Decode(img, dst); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per decode, want 0", allocs)
	}
	// Frames without tables: only the first one pays for the standard
	// tables.
	bare := withoutDHT(img)
	if _, err := d.Decode(bare, dst); err != nil {
		t.Fatal(err)
	}
	allocs = testing.AllocsPerRun(20, func() {
		if _, err := d.Decode(bare, dst); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per decode without tables, want 0", allocs)
	}
}

func FuzzDecode(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.jpg"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		// A frame image/jpeg accepts must come out the size it says.
		if c, err := jpeg.DecodeConfig(bytes.NewReader(b)); err == nil && c.Width > 0 {
			if w := (c.Width + 7) / 8; m.Rect.Dx() > w {
				t.Fatalf("width %d for a %d-pixel frame", m.Rect.Dx(), c.Width)
			}
		}
	})
}

// TestSeparateScans decodes a YCbCr image whose components come in
// separate scans, luma last: the chroma scans are skipped unread.
func TestSeparateScans(t *testing.T) {
	one, vals := dcOnlyJPEG(96, 40, 0, 7, true)
	sos := bytes.Index(one, []byte{0xFF, mSOS})
	sof := bytes.Index(one, []byte{0xFF, mSOF0})
	entropy := one[sos+10 : len(one)-2] // after the SOS marker and its 8-byte segment, before EOI
	out := append([]byte(nil), one[:sof]...)
	out = append(out, 0xFF, mSOF0, 0, 17, 8, 0, 40, 0, 96, 3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0)
	sofEnd := sof + 2 + 11
	out = append(out, one[sofEnd:sos]...) // DHT
	for _, id := range []byte{2, 3, 1} {
		out = append(out, 0xFF, mSOS, 0, 8, 1, id, 0x00, 0, 63, 0)
		out = append(out, entropy...)
	}
	out = append(out, 0xFF, mEOI)
	got, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Pix, vals) {
		t.Fatal("luma differs from the values coded")
	}
}
