package mjpeg

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/outpost-cctv/outpost/hal/camera/internal/footagetest"
	"github.com/outpost-cctv/outpost/hal/camera/internal/pool"
)

// footage1080 returns the frames of two seconds of 1080p25 test footage.
func footage1080(b *testing.B) [][]byte {
	b.Helper()
	path := footagetest.Generate(b, b.TempDir(), 2, "1920x1080")
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	r := NewReader(bytes.NewReader(raw), Options{Mode: Raw})
	var frames [][]byte
	for {
		f, _, err := r.Next()
		if err == io.EOF {
			return frames
		}
		if err != nil {
			b.Fatal(err)
		}
		frames = append(frames, f)
	}
}

// loopReader replays a stream forever without allocating.
type loopReader struct {
	b   []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	if l.off == len(l.b) {
		l.off = 0
	}
	n := copy(p, l.b[l.off:])
	l.off += n
	return n, nil
}

// BenchmarkReader measures the per-frame cost of splitting a 1080p25
// stream in each framing, with frames handed back to a pool (the steady
// state) and kept (one allocation a frame). The baseline is copying the
// same bytes with copy(), the least any capture path can cost.
func BenchmarkReader(b *testing.B) {
	frames := footage1080(b)
	total := 0
	for _, f := range frames {
		total += len(f)
	}
	perFrame := int64(total / len(frames))
	streams := []struct {
		name   string
		stream []byte
		mode   Mode
	}{
		{"raw", bytes.Join(frames, nil), Raw},
		{"multipart-length", multipart("ffmpeg", true, frames...), Multipart},
		{"multipart-nolength", multipart("ffmpeg", false, frames...), Multipart},
	}
	for _, s := range streams {
		for _, recycle := range []bool{true, false} {
			name := s.name + "/kept"
			if recycle {
				name = s.name + "/recycled"
			}
			b.Run("1080p/"+name, func(b *testing.B) {
				p := pool.New(8, 4<<20)
				r := NewReader(&loopReader{b: s.stream}, Options{Mode: s.mode, Alloc: p.Get})
				b.SetBytes(perFrame)
				b.ReportAllocs()
				for b.Loop() {
					f, _, err := r.Next()
					if err != nil {
						b.Fatal(err)
					}
					if recycle {
						p.Put(f)
					}
				}
			})
		}
	}
	b.Run("1080p/baseline-copy", func(b *testing.B) {
		dst := make([]byte, 0, 4<<20)
		b.SetBytes(perFrame)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			dst = append(dst[:0], frames[i%len(frames)]...)
			i++
		}
	})
	b.Run("1080p/check", func(b *testing.B) {
		b.SetBytes(perFrame)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := Check(frames[i%len(frames)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
