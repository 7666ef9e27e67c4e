package httpcam

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/outpost-cctv/outpost/hal/camera/internal/footagetest"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// BenchmarkHTTP measures the per-frame cost of receiving 1080p frames
// from an IP camera over loopback: a Go server writes a prepared
// multipart stream as fast as the client reads, so the figure is the
// whole path (server write, kernel, client read, split, copy), on both
// cores. Allocations are the whole process's.
func BenchmarkHTTP(b *testing.B) {
	frames := fileFrames(b, footagetest.Generate(b, b.TempDir(), 2, "1920x1080"))
	var stream bytes.Buffer
	total := 0
	for _, f := range frames {
		fmt.Fprintf(&stream, "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(f))
		stream.Write(f)
		stream.WriteString("\r\n")
		total += len(f)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=frame")
		for r.Context().Err() == nil {
			if _, err := w.Write(stream.Bytes()); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	for _, recycle := range []bool{true, false} {
		b.Run(fmt.Sprintf("1080p/recycle=%v", recycle), func(b *testing.B) {
			c, err := Open(context.Background(), Config{URL: srv.URL}, clock.Real{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			b.SetBytes(int64(total / len(frames)))
			b.ReportAllocs()
			for b.Loop() {
				f, err := c.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if recycle {
					c.Recycle(f.Data)
				}
			}
		})
	}
}
