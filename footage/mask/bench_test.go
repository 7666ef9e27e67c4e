package mask

import (
	"bytes"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"testing"
)

// benchQuality is the quality of the generated benchmark frame, about what
// cameras send as MJPEG.
const benchQuality = 85

// noisyFrame returns a 1920×1080 4:2:0 JPEG of a gradient with noise, as
// an outdoor scene at night or a busy street codes: many non-zero AC
// coefficients in every block.
func noisyFrame(tb testing.TB) []byte {
	tb.Helper()
	img := image.NewYCbCr(image.Rect(0, 0, 1920, 1080), image.YCbCrSubsampleRatio420)
	r := rand.New(rand.NewPCG(1, 2))
	for y := range 1080 {
		for x := range 1920 {
			v := (x+y)/12 + r.IntN(48)
			img.Y[y*img.YStride+x] = uint8(min(v, 255))
		}
	}
	for i := range img.Cb {
		img.Cb[i] = uint8(112 + r.IntN(32))
		img.Cr[i] = uint8(112 + r.IntN(32))
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: benchQuality}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// benchMask covers about a fifth of a 1080p frame: a house front and a
// garden, as privacy masks do.
func benchMask(tb testing.TB) *Mask {
	m, err := New(1920, 1080,
		[]Rect{{X: 1200, Y: 100, W: 600, H: 400}},
		[][]image.Point{{{100, 700}, {700, 600}, {800, 1079}, {50, 1079}}})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// BenchmarkMask1080p masks a noisy 1080p frame with each Huffman table
// strategy, reporting the masked size relative to the original.
func BenchmarkMask1080p(b *testing.B) {
	frame := noisyFrame(b)
	for _, h := range []Huffman{HuffmanOptimal, HuffmanOwn, HuffmanStandard} {
		b.Run(h.String(), func(b *testing.B) {
			mk := NewMasker(benchMask(b))
			mk.SetHuffman(h)
			out, err := mk.Apply(nil, frame)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				out, err = mk.Apply(out, frame)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(frame)), "in-bytes")
			b.ReportMetric(float64(len(out)), "out-bytes")
			b.ReportMetric(float64(len(out))/float64(len(frame)), "out/in")
		})
	}
}

// BenchmarkDecodeFillEncode1080p is the baseline: what masking costs by
// decoding the frame to pixels, filling the masked area and encoding it
// again with image/jpeg at the same quality.
func BenchmarkDecodeFillEncode1080p(b *testing.B) {
	decodeFillEncode(b, noisyFrame(b))
}

// decodeFillEncode is the baseline on one 1920x1080 frame.
func decodeFillEncode(b *testing.B, frame []byte) {
	m := benchMask(b)
	g := Geometry{Width: 1920, Height: 1080, MCUWidth: 16, MCUHeight: 16}
	rects := m.Snapped(g)
	var out bytes.Buffer
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		img, err := jpeg.Decode(bytes.NewReader(frame))
		if err != nil {
			b.Fatal(err)
		}
		yc := img.(*image.YCbCr)
		for _, r := range rects {
			for y := r.Y; y < r.Y+r.H; y++ {
				for x := r.X; x < r.X+r.W; x++ {
					yc.Y[yc.YOffset(x, y)] = 128
					yc.Cb[yc.COffset(x, y)] = 128
					yc.Cr[yc.COffset(x, y)] = 128
				}
			}
		}
		out.Reset()
		if err := jpeg.Encode(&out, yc, &jpeg.Options{Quality: benchQuality}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(frame)), "in-bytes")
	b.ReportMetric(float64(out.Len()), "out-bytes")
	b.ReportMetric(float64(out.Len())/float64(len(frame)), "out/in")
}

// BenchmarkMaskFile and BenchmarkDecodeFillEncodeFile are the same two on
// a JPEG file named by OUTPOST_BENCH_JPEG (make bench gives it the
// simulated camera's 1080p street, the frame the DC-decode row reads): a
// frame as a camera sends it, where the noisy frame above is the worst
// case. Skipped without the variable.
func BenchmarkMaskFile(b *testing.B) {
	frame := benchFile(b)
	mk := NewMasker(benchMask(b))
	out, err := mk.Apply(nil, frame)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if out, err = mk.Apply(out, frame); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(out))/float64(len(frame)), "out/in")
}

func BenchmarkDecodeFillEncodeFile(b *testing.B) {
	frame := benchFile(b)
	decodeFillEncode(b, frame)
}

func benchFile(b *testing.B) []byte {
	b.Helper()
	path := os.Getenv("OUTPOST_BENCH_JPEG")
	if path == "" {
		b.Skip("OUTPOST_BENCH_JPEG names no frame (make bench sets it)")
	}
	frame, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(frame)); err != nil || cfg.Width != 1920 || cfg.Height != 1080 {
		b.Fatalf("%s is not a 1920x1080 JPEG: %v", path, err)
	}
	return frame
}
