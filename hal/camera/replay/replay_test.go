package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/hal/camera/internal/footagetest"
	"github.com/outpost-cctv/outpost/internal/clock"
)

var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func testJPEG(t testing.TB, seed int) []byte {
	t.Helper()
	m := image.NewGray(image.Rect(0, 0, 64, 48))
	for i := range m.Pix {
		m.Pix[i] = uint8(i*seed + seed)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeFile(t testing.TB, parts ...[]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.mjpeg")
	if err := os.WriteFile(path, bytes.Join(parts, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func open(t testing.TB, cfg Config, clk clock.Clock) *Camera {
	t.Helper()
	c, err := Open(context.Background(), cfg, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitTimer returns once a goroutine waits on the fake clock.
func waitTimer(t *testing.T, clk *clock.Fake) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for clk.Waiters() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing waiting on the clock")
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func TestPacing(t *testing.T) {
	a, b, c := testJPEG(t, 1), testJPEG(t, 2), testJPEG(t, 3)
	clk := clock.NewFake(epoch)
	cam := open(t, Config{Path: writeFile(t, a, b, c), FPS: 25}, clk)
	f, err := cam.Next(context.Background())
	if err != nil || !bytes.Equal(f.Data, a) || !f.Time.Equal(epoch) {
		t.Fatalf("first frame: %v at %v", err, f.Time)
	}
	// The next is due 40 ms later, and not before.
	type res struct {
		f   camera.Frame
		err error
	}
	ch := make(chan res, 1)
	go func() { f, err := cam.Next(context.Background()); ch <- res{f, err} }()
	waitTimer(t, clk)
	clk.Advance(39 * time.Millisecond)
	select {
	case <-ch:
		t.Fatal("a frame came early")
	case <-time.After(5 * time.Millisecond):
	}
	clk.Advance(time.Millisecond)
	r := <-ch
	if r.err != nil || !bytes.Equal(r.f.Data, b) || r.f.Time.Sub(epoch) != 40*time.Millisecond {
		t.Fatalf("second frame: %v at %v", r.err, r.f.Time.Sub(epoch))
	}
	// A reader late by less than a second gets the next frame at once.
	clk.Advance(100 * time.Millisecond)
	if f, err := cam.Next(context.Background()); err != nil || !bytes.Equal(f.Data, c) {
		t.Fatalf("late frame: %v", err)
	}
	if h := cam.Health(); h.Frames != 3 || h.Mode != "MJPEG 64x48 from a file @ 25 fps" || h.Condition != camera.ConditionOK {
		t.Fatalf("health %+v", h)
	}
}

func TestLoopAndOnce(t *testing.T) {
	frames := [][]byte{testJPEG(t, 1), testJPEG(t, 2), testJPEG(t, 3)}
	path := writeFile(t, frames...)
	loop := open(t, Config{Path: path, Fast: true}, clock.NewFake(epoch))
	for i := range 7 {
		f, err := loop.Next(context.Background())
		if err != nil || !bytes.Equal(f.Data, frames[i%3]) {
			t.Fatalf("frame %d: %v", i, err)
		}
		loop.Recycle(f.Data)
	}
	once := open(t, Config{Path: path, Fast: true, Once: true}, clock.NewFake(epoch))
	for range 3 {
		if _, err := once.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := once.Next(context.Background()); !errors.Is(err, ErrEnd) {
		t.Fatalf("Next at the end = %v, want ErrEnd", err)
	}
}

func TestBadInput(t *testing.T) {
	a, b := testJPEG(t, 1), testJPEG(t, 2)
	path := writeFile(t, []byte("leading junk"), a, b[:len(b)/2], []byte{0, 1, 2}, b)
	cam := open(t, Config{Path: path, Fast: true, Once: true}, clock.NewFake(epoch))
	var got [][]byte
	for {
		f, err := cam.Next(context.Background())
		if errors.Is(err, ErrEnd) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.Data)
	}
	if len(got) != 2 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) {
		t.Fatalf("%d frames, want the 2 whole ones", len(got))
	}
	if h := cam.Health(); h.Dropped != 1 || h.DropReason != "truncated" || h.SkippedBytes != uint64(len("leading junk")) {
		t.Fatalf("health %+v", h)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notMJPEG := filepath.Join(dir, "clip.mp4")
	os.WriteFile(notMJPEG, []byte("\x00\x00\x00\x18ftypmp42 not a raw MJPEG stream"), 0o644)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Path: filepath.Join(dir, "missing.mjpeg"), FPS: 25}, "no such file or directory"},
		{Config{Path: notMJPEG, FPS: 25}, "no JPEG frame in the file: is it raw MJPEG (ffmpeg -f mjpeg)?"},
		{Config{Path: notMJPEG, FPS: 0}, "0 fps: must be 1-120"},
	} {
		_, err := Open(context.Background(), tc.cfg, clock.NewFake(epoch), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestCloseWhileWaiting(t *testing.T) {
	clk := clock.NewFake(epoch)
	cam := open(t, Config{Path: writeFile(t, testJPEG(t, 1)), FPS: 1}, clk)
	cam.Next(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := cam.Next(context.Background()); errc <- err }()
	waitTimer(t, clk)
	cam.Close()
	if err := <-errc; !errors.Is(err, camera.ErrClosed) {
		t.Fatalf("Next = %v, want ErrClosed", err)
	}
}

// TestFootage plays the generated test footage: every frame of a pass is
// read, in order, and the pass starts over.
func TestFootage(t *testing.T) {
	path := footagetest.Generate(t, t.TempDir(), 1, "1280x720")
	cam := open(t, Config{Path: path, Fast: true}, clock.NewFake(epoch))
	var first []byte
	for i := range 26 {
		f, err := cam.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if f.Width != 1280 || f.Height != 720 {
			t.Fatalf("frame %d is %dx%d", i, f.Width, f.Height)
		}
		switch i {
		case 0:
			first = bytes.Clone(f.Data)
		case 25:
			if !bytes.Equal(f.Data, first) {
				t.Fatal("frame 26 is not the first frame again: the 25-frame file did not loop")
			}
		}
		cam.Recycle(f.Data)
	}
	if h := cam.Health(); h.Dropped != 0 || h.SkippedBytes != 0 {
		t.Fatalf("health %+v", h)
	}
}

// BenchmarkReplay measures the per-frame cost of reading 1080p25 footage
// from a file as fast as possible, with the frames handed back (the
// steady state) and kept (one allocation a frame), against reading the
// file's bytes alone as a baseline.
func BenchmarkReplay(b *testing.B) {
	path := footagetest.Generate(b, b.TempDir(), 2, "1920x1080")
	fi, _ := os.Stat(path)
	cam, err := Open(context.Background(), Config{Path: path, Fast: true}, clock.NewFake(epoch), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cam.Close()
	perFrame := fi.Size() / 50
	for _, recycle := range []bool{true, false} {
		b.Run(fmt.Sprintf("1080p/recycle=%v", recycle), func(b *testing.B) {
			b.SetBytes(perFrame)
			b.ReportAllocs()
			for b.Loop() {
				f, err := cam.Next(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if recycle {
					cam.Recycle(f.Data)
				}
			}
		})
	}
	b.Run("1080p/baseline-read", func(b *testing.B) {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, perFrame)
		b.SetBytes(perFrame)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.Read(buf); err != nil {
				f.Seek(0, 0)
			}
		}
	})
}
