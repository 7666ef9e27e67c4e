package jpegdc

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera/sim"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// TestEnergyImageMatchesDecoder: EnergyDecoder gives exactly Decoder's
// picture, whatever the layout of the frame.
func TestEnergyImageMatchesDecoder(t *testing.T) {
	rgb := scene(333, 187, 3)
	gray := image.NewGray(rgb.Bounds())
	for i := range gray.Pix {
		gray.Pix[i] = rgb.Pix[4*i+1]
	}
	tests := []struct {
		name string
		img  func(t *testing.T) []byte
	}{
		{"image/jpeg 4:2:0 q75", func(t *testing.T) []byte { return encodeStd(t, rgb, 75) }},
		{"image/jpeg grayscale q90", func(t *testing.T) []byte { return encodeStd(t, gray, 90) }},
		{"ffmpeg yuvj422p", func(t *testing.T) []byte { return encodeFFmpeg(t, rgb, "yuvj422p") }},
		{"ffmpeg yuvj444p", func(t *testing.T) []byte { return encodeFFmpeg(t, rgb, "yuvj444p") }},
		{"no Huffman tables (UVC)", func(t *testing.T) []byte { return withoutDHT(encodeStd(t, rgb, 75)) }},
		{"restart every 7 blocks", func(t *testing.T) []byte { b, _ := dcOnlyJPEG(123, 45, 7, 5, true); return b }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.img(t)
			want, err := Decode(img)
			if err != nil {
				t.Fatal(err)
			}
			var e EnergyDecoder
			for k := 0; k < 2; k++ { // twice: the second time with the tables learnt
				got, en, err := e.Decode(img, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got.Rect != want.Rect || !bytes.Equal(got.Pix, want.Pix) {
					t.Fatal("EnergyDecoder's picture differs from Decoder's")
				}
				if en.Blocks != want.Rect.Dx()*want.Rect.Dy() {
					t.Fatalf("%d blocks summed, want %d", en.Blocks, want.Rect.Dx()*want.Rect.Dy())
				}
			}
		})
	}
}

// fdctEnergy is the AC energy of a grey picture computed from its pixels
// with a floating-point forward DCT (T.81 A.3.3): what EnergyDecoder
// should find, up to quantisation.
func fdctEnergy(m *image.Gray) float64 {
	var sum float64
	b := m.Bounds()
	for by := 0; by+8 <= b.Dy(); by += 8 {
		for bx := 0; bx+8 <= b.Dx(); bx += 8 {
			for v := 0; v < 8; v++ {
				for u := 0; u < 8; u++ {
					if u == 0 && v == 0 {
						continue
					}
					var s float64
					for y := 0; y < 8; y++ {
						for x := 0; x < 8; x++ {
							p := float64(m.Pix[(by+y)*m.Stride+bx+x]) - 128
							s += p * math.Cos(float64(2*x+1)*float64(u)*math.Pi/16) * math.Cos(float64(2*y+1)*float64(v)*math.Pi/16)
						}
					}
					cu, cv := 1.0, 1.0
					if u == 0 {
						cu = 1 / math.Sqrt2
					}
					if v == 0 {
						cv = 1 / math.Sqrt2
					}
					sum += math.Abs(s * cu * cv / 4)
				}
			}
		}
	}
	return sum
}

func TestEnergyMatchesForwardDCT(t *testing.T) {
	rgb := scene(320, 240, 4)
	gray := image.NewGray(rgb.Bounds())
	for i := range gray.Pix {
		gray.Pix[i] = rgb.Pix[4*i+1]
	}
	img := encodeStd(t, gray, 95)
	dec, err := jpeg.Decode(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	want := fdctEnergy(dec.(*image.Gray))
	_, en, err := DecodeEnergy(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("AC energy %.0f, forward DCT of the decoded pixels %.0f", en.AC, want)
	if r := en.AC / want; r < 0.9 || r > 1.1 {
		t.Fatalf("AC energy %.0f is %.2f× that of the forward DCT (%.0f), want within 10%%", en.AC, r, want)
	}
}

func TestEnergyFlatAndBlurred(t *testing.T) {
	flat, _ := dcOnlyJPEG(64, 48, 0, 1, true)
	if _, en, err := DecodeEnergy(flat); err != nil || en.AC != 0 {
		t.Fatalf("flat blocks: energy %v, err %v; want 0", en.AC, err)
	}
	rgb := scene(320, 240, 5)
	sharp := encodeStd(t, rgb, 75)
	blurred := image.NewRGBA(rgb.Bounds())
	const r = 3
	for y := 0; y < 240; y++ {
		for x := 0; x < 320; x++ {
			var s [3]int
			n := 0
			for dy := -r; dy <= r; dy++ {
				for dx := -r; dx <= r; dx++ {
					xx, yy := min(max(x+dx, 0), 319), min(max(y+dy, 0), 239)
					o := rgb.PixOffset(xx, yy)
					s[0] += int(rgb.Pix[o])
					s[1] += int(rgb.Pix[o+1])
					s[2] += int(rgb.Pix[o+2])
					n++
				}
			}
			o := blurred.PixOffset(x, y)
			blurred.Pix[o], blurred.Pix[o+1], blurred.Pix[o+2], blurred.Pix[o+3] = uint8(s[0]/n), uint8(s[1]/n), uint8(s[2]/n), 255
		}
	}
	_, es, err := DecodeEnergy(sharp)
	if err != nil {
		t.Fatal(err)
	}
	_, eb, err := DecodeEnergy(encodeStd(t, blurred, 75))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("energy per block: sharp %.0f, blurred %.0f", es.PerBlock(), eb.PerBlock())
	if eb.PerBlock() > 0.5*es.PerBlock() {
		t.Fatalf("blurred picture keeps %.0f%% of the sharp one's AC energy, want under 50%%", 100*eb.PerBlock()/es.PerBlock())
	}
}

func TestEnergyDecoderReuses(t *testing.T) {
	img := withoutDHT(encodeStd(t, scene(160, 96, 6), 75))
	var e EnergyDecoder
	dst, _, err := e.Decode(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, _, err := e.Decode(img, dst); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per decode, want 0", allocs)
	}
}

// FuzzDecodeEnergy: never panics, and agrees with Decode on the picture
// whenever both read the frame.
func FuzzDecodeEnergy(f *testing.F) {
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
		m, en, err := DecodeEnergy(b)
		if err != nil {
			return
		}
		if en.AC < 0 || en.Blocks > m.Rect.Dx()*m.Rect.Dy() {
			t.Fatalf("energy %v over %d blocks for a %v picture", en.AC, en.Blocks, m.Rect)
		}
		if want, err := Decode(b); err == nil && !bytes.Equal(want.Pix, m.Pix) {
			t.Fatal("EnergyDecoder's picture differs from Decoder's")
		}
	})
}

// BenchmarkDecode720p compares, on the same 1280×720 frame of the
// simulated camera, the DC-only decode, the decode that also sums the AC
// energy, and image/jpeg's full decode.
func BenchmarkDecode720p(b *testing.B) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cam, err := sim.New(sim.Config{Width: 1280, Height: 720, FPS: 25, Quality: 75}, clk)
	if err != nil {
		b.Fatal(err)
	}
	defer cam.Close()
	f, err := cam.Next(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	frame := f.Data
	b.Run("jpegdc-dc", func(b *testing.B) {
		var d Decoder
		var dst *image.Gray
		b.SetBytes(int64(len(frame)))
		b.ReportAllocs()
		for b.Loop() {
			if dst, err = d.Decode(frame, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jpegdc-energy", func(b *testing.B) {
		var d EnergyDecoder
		var dst *image.Gray
		b.SetBytes(int64(len(frame)))
		b.ReportAllocs()
		for b.Loop() {
			if dst, _, err = d.Decode(frame, dst); err != nil {
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
