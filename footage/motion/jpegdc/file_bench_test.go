package jpegdc

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"testing"
)

// BenchmarkDecodeFile compares the DC-only decode with image/jpeg's full
// decode of the JPEG file named by $OUTPOST_BENCH_JPEG, so that other
// decoders (tjbench -scale 1/8) can be measured on the very same bytes;
// scripts/bench writes that file. Skipped when the variable is unset.
func BenchmarkDecodeFile(b *testing.B) {
	path := os.Getenv("OUTPOST_BENCH_JPEG")
	if path == "" {
		b.Skip("OUTPOST_BENCH_JPEG is not set")
	}
	frame, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("jpegdc", func(b *testing.B) {
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
