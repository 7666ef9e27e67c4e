package open

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/clock"
)

func testJPEG(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 64, 48)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestOpenEachKind opens a camera of each kind that needs no hardware,
// reads from it, and checks it reports health.
func TestOpenEachKind(t *testing.T) {
	img := testJPEG(t)
	file := filepath.Join(t.TempDir(), "clip.mjpeg")
	if err := os.WriteFile(file, bytes.Repeat(img, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=b")
		for r.Context().Err() == nil {
			fmt.Fprintf(w, "--b\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(img))
			w.Write(img)
			w.Write([]byte("\r\n"))
			w.(http.Flusher).Flush()
			time.Sleep(10 * time.Millisecond)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		source string
		w, h   int
		mode   string
	}{
		{"sim", 64, 48, "simulated MJPEG 64x48 @ 25 fps"},
		{"file:" + file, 64, 48, "MJPEG 64x48 from a file, as fast as it reads"},
		{srv.URL + "/video.mjpg", 64, 48, "multipart MJPEG"},
	} {
		t.Run(strings.SplitN(tc.source, ":", 2)[0], func(t *testing.T) {
			spec := Spec{Source: tc.source, Width: 64, Height: 48, FPS: 25, ReplayFast: true, Sim: SimSpec{Quality: 50}}
			src, err := Open(context.Background(), spec, clock.Real{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			for range 3 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				f, err := src.Next(ctx)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				if f.Width != tc.w || f.Height != tc.h || f.Codec != camera.MJPEG {
					t.Fatalf("frame %+v", f)
				}
			}
			h := src.(camera.Healther).Health()
			if h.Frames != 3 || h.Mode != tc.mode || h.Condition != camera.ConditionOK {
				t.Fatalf("health %+v", h)
			}
			src.Close()
			if c := src.(camera.Healther).Health().Condition; c != camera.ConditionClosed {
				t.Fatalf("condition %q after Close", c)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		source    string
		attention bool
		want      string
	}{
		{"/dev/video99", false, "v4l2: /dev/video99: open: no such file or directory (is the camera plugged in? ls /dev/v4l/by-id lists the cameras present)"},
		{"file:/nonexistent/clip.mjpeg", true, "replay: open /nonexistent/clip.mjpeg: no such file or directory"},
		{"rtsp://cam/stream", false, `camera: "rtsp://cam/stream" is not a camera source`},
	} {
		_, err := Open(context.Background(), Spec{Source: tc.source, Width: 1280, Height: 720, FPS: 25, FrameTimeout: time.Second}, clock.Real{}, nil)
		if err == nil || errors.Is(err, camera.ErrNeedsAttention) != tc.attention || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v; want attention=%v and %q", tc.source, err, tc.attention, tc.want)
		}
	}
}

// TestSharedMeter: a meter handed to each Open carries the count across
// reopenings, as the agent uses it. A clean close and reopen is no
// reconnection; a reopening after a loss is.
func TestSharedMeter(t *testing.T) {
	clk := clock.NewFake(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	m := camera.NewMeter(clk, "sim", 5*time.Second)
	spec := Spec{Source: "sim", Width: 64, Height: 48, FPS: 25, Sim: SimSpec{Quality: 50}, Meter: m}
	for i := range 3 {
		src, err := Open(context.Background(), spec, clk, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			m.Lost(errors.New("the capture component failed"), false)
		}
		src.Close()
	}
	if h := m.Health(); h.Frames != 3 || h.Reconnects != 1 {
		t.Fatalf("health %+v: want 3 frames and 1 reconnect", h)
	}
}
