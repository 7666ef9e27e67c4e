package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/clock"
)

var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newCamera(t testing.TB, cfg Config) (*Camera, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(epoch)
	c, err := New(cfg, clk)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, clk
}

// smallConfig is for looking at pictures, tinyConfig for timing.
func smallConfig() Config {
	return Config{Width: 320, Height: 240, FPS: 10, MotionEvery: 10 * time.Second, MotionDuration: 4 * time.Second}
}

func tinyConfig() Config {
	return Config{Width: 64, Height: 48, FPS: 10, MotionEvery: 10 * time.Second, MotionDuration: 4 * time.Second}
}

// waitForTimer returns once a goroutine is waiting on the fake clock.
func waitForTimer(t *testing.T, clk *clock.Fake) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for clk.Waiters() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing waiting on the clock")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

type result struct {
	f   camera.Frame
	err error
}

// nextAsync calls Next in a goroutine.
func nextAsync(ctx context.Context, c *Camera) <-chan result {
	ch := make(chan result, 1)
	go func() {
		f, err := c.Next(ctx)
		ch <- result{f, err}
	}()
	return ch
}

func receive(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(2 * time.Second):
		t.Fatal("Next did not return")
		return result{}
	}
}

func mustNext(t *testing.T, c *Camera) camera.Frame {
	t.Helper()
	f, err := c.Next(context.Background())
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return f
}

func decode(t *testing.T, f camera.Frame) *image.YCbCr {
	t.Helper()
	m, err := jpeg.Decode(bytes.NewReader(f.Data))
	if err != nil {
		t.Fatalf("decoding frame: %v", err)
	}
	y, ok := m.(*image.YCbCr)
	if !ok {
		t.Fatalf("decoded %T, want *image.YCbCr", m)
	}
	return y
}

// lumaDiff is the mean absolute difference of the luma of two pictures.
func lumaDiff(a, b *image.YCbCr) float64 {
	r := a.Rect
	var sum int
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			d := int(a.Y[a.YOffset(x, y)]) - int(b.Y[b.YOffset(x, y)])
			sum += max(d, -d)
		}
	}
	return float64(sum) / float64(r.Dx()*r.Dy())
}

// checkStructure walks the JPEG markers: one DRI, a baseline SOF0 of the
// right size, and RST0-RST7 in order between the MCU rows.
func checkStructure(t *testing.T, b []byte, w, h int) {
	t.Helper()
	if len(b) < 4 || b[0] != 0xFF || b[1] != markerSOI || b[len(b)-2] != 0xFF || b[len(b)-1] != markerEOI {
		t.Fatal("frame does not run from SOI to EOI")
	}
	i, dri, sof := 2, false, false
	for {
		m, n := b[i+1], int(b[i+2])<<8|int(b[i+3])
		switch m {
		case markerSOF0:
			gh, gw := int(b[i+5])<<8|int(b[i+6]), int(b[i+7])<<8|int(b[i+8])
			if gw != w || gh != h {
				t.Fatalf("SOF0 says %dx%d, want %dx%d", gw, gh, w, h)
			}
			sof = true
		case markerDRI:
			dri = true
		case 0xC1, 0xC2, 0xC3:
			t.Fatalf("not a baseline JPEG: SOF%d", m-0xC0)
		}
		i += 2 + n
		if m == markerSOS {
			break
		}
	}
	if !dri || !sof {
		t.Fatalf("header: DRI %v, SOF0 %v", dri, sof)
	}
	rst := 0
	for ; i < len(b)-2; i++ {
		if b[i] != 0xFF {
			continue
		}
		switch m := b[i+1]; {
		case m == 0:
		case m >= markerRST0 && m <= markerRST0+7:
			if int(m-markerRST0) != rst%8 {
				t.Fatalf("RST%d after %d restarts", m-markerRST0, rst)
			}
			rst++
		default:
			t.Fatalf("marker %#x inside the scan", m)
		}
		i++
	}
	if want := (h+15)/16 - 1; rst != want {
		t.Fatalf("%d restart markers, want %d", rst, want)
	}
}

func TestFramesAreJPEGOfTheConfiguredSize(t *testing.T) {
	for _, size := range [][2]int{{320, 240}, {322, 250}, {64, 16}, {2, 2}} {
		cfg := smallConfig()
		cfg.Width, cfg.Height = size[0], size[1]
		c, clk := newCamera(t, cfg)
		for _, at := range []time.Duration{0, 100 * time.Millisecond, 12 * time.Second} {
			clk.Advance(at)
			f := mustNext(t, c)
			if f.Codec != camera.MJPEG || f.Width != cfg.Width || f.Height != cfg.Height {
				t.Fatalf("frame %s %dx%d, want mjpeg %dx%d", f.Codec, f.Width, f.Height, cfg.Width, cfg.Height)
			}
			if !f.Time.Equal(clk.Now()) {
				t.Fatalf("frame time %v, want %v", f.Time, clk.Now())
			}
			m := decode(t, f)
			if m.Rect.Dx() != cfg.Width || m.Rect.Dy() != cfg.Height {
				t.Fatalf("decoded %v, want %dx%d", m.Rect, cfg.Width, cfg.Height)
			}
			checkStructure(t, f.Data, cfg.Width, cfg.Height)
		}
	}
}

func TestStaticFramesDifferByNoiseOnly(t *testing.T) {
	c, clk := newCamera(t, smallConfig())
	prev := decode(t, mustNext(t, c))
	for range 2 * noiseVariants {
		clk.Advance(c.interval)
		f := mustNext(t, c)
		if c.InMotion(f.Time) {
			t.Fatal("motion in the first seconds")
		}
		cur := decode(t, f)
		d := lumaDiff(prev, cur)
		if d == 0 || d > 1.5 {
			t.Fatalf("consecutive static frames differ by %.2f, want a little noise (0 < d <= 1.5)", d)
		}
		prev = cur
	}
}

func TestMotionFrameDiffersFromBackground(t *testing.T) {
	c, clk := newCamera(t, smallConfig())
	ref := decode(t, mustNext(t, c))
	clk.Advance(c.interval)
	static := decode(t, mustNext(t, c))
	noise := lumaDiff(ref, static)

	for _, at := range []time.Duration{10*time.Second + 500*time.Millisecond, 12 * time.Second, 13*time.Second + 500*time.Millisecond} {
		clk.Advance(epoch.Add(at).Sub(clk.Now()))
		f := mustNext(t, c)
		if !c.InMotion(f.Time) {
			t.Fatalf("no motion at +%v", at)
		}
		d := lumaDiff(ref, decode(t, f))
		t.Logf("+%v: motion differs by %.2f, noise by %.2f", at, d, noise)
		if d < 4 || d < 5*noise {
			t.Fatalf("motion frame at +%v differs from the background by %.2f, noise by %.2f", at, d, noise)
		}
	}
	// After the crossing the street is empty again.
	clk.Advance(epoch.Add(15 * time.Second).Sub(clk.Now()))
	f := mustNext(t, c)
	if c.InMotion(f.Time) {
		t.Fatal("motion after the crossing")
	}
	if d := lumaDiff(ref, decode(t, f)); d > 1.5 {
		t.Fatalf("frame after the crossing differs from the background by %.2f", d)
	}
}

func TestInMotionWindows(t *testing.T) {
	c, _ := newCamera(t, tinyConfig())
	if c.InMotion(epoch.Add(11 * time.Second)) {
		t.Fatal("motion before the first frame")
	}
	mustNext(t, c)
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{
		{0, false}, {2 * time.Second, false}, {-time.Second, false},
		{10*time.Second - 1, false}, {10 * time.Second, true}, {14*time.Second - 1, true}, {14 * time.Second, false},
		{20 * time.Second, true}, {25 * time.Second, false}, {time.Hour + time.Second, true},
	} {
		if got := c.InMotion(epoch.Add(tc.at)); got != tc.want {
			t.Errorf("InMotion(+%v) = %v, want %v", tc.at, got, tc.want)
		}
	}
}

func TestNoMotion(t *testing.T) {
	cfg := smallConfig()
	cfg.MotionEvery, cfg.MotionDuration = 0, 0
	c, clk := newCamera(t, cfg)
	ref := decode(t, mustNext(t, c))
	clk.Advance(10 * time.Second)
	f := mustNext(t, c)
	if c.InMotion(f.Time) {
		t.Fatal("motion without MotionEvery")
	}
	if d := lumaDiff(ref, decode(t, f)); d > 1.5 {
		t.Fatalf("frames differ by %.2f without motion", d)
	}
}

func TestPacing(t *testing.T) {
	c, clk := newCamera(t, tinyConfig())
	ctx := context.Background()
	first := mustNext(t, c) // frame 0 is due at once
	if !first.Time.Equal(epoch) {
		t.Fatalf("first frame at %v, want %v", first.Time, epoch)
	}
	const n = 25
	for i := 1; i <= n; i++ {
		ch := nextAsync(ctx, c)
		waitForTimer(t, clk)
		select {
		case r := <-ch:
			t.Fatalf("frame %d delivered early: %v", i, r.err)
		default:
		}
		clk.Advance(c.interval)
		r := receive(t, ch)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if want := epoch.Add(time.Duration(i) * c.interval); !r.f.Time.Equal(want) {
			t.Fatalf("frame %d at %v, want %v", i, r.f.Time, want)
		}
	}
	if s := c.Stats(); s.Frames != n+1 || s.Dropped != 0 {
		t.Fatalf("stats %+v, want %d frames, none dropped", s, n+1)
	}
	if clk.Waiters() != 0 {
		t.Fatalf("%d timers left behind", clk.Waiters())
	}
}

func TestLateConsumerSkipsAhead(t *testing.T) {
	c, clk := newCamera(t, tinyConfig())
	mustNext(t, c)
	// The consumer comes back 5.5 intervals later: it gets slot 5 at once,
	// slots 1-4 are dropped, not delivered in a burst.
	clk.Advance(5*c.interval + c.interval/2)
	f := mustNext(t, c)
	if !f.Time.Equal(clk.Now()) {
		t.Fatalf("late frame at %v, want %v", f.Time, clk.Now())
	}
	if s := c.Stats(); s.Frames != 2 || s.Dropped != 4 {
		t.Fatalf("stats %+v, want 2 frames, 4 dropped", s)
	}
	// Slot 6 keeps the original schedule.
	ch := nextAsync(context.Background(), c)
	waitForTimer(t, clk)
	clk.Advance(c.interval / 2)
	r := receive(t, ch)
	if want := epoch.Add(6 * c.interval); r.err != nil || !r.f.Time.Equal(want) {
		t.Fatalf("next frame at %v (%v), want %v", r.f.Time, r.err, want)
	}
	if s := c.Stats(); s.Frames != 3 || s.Dropped != 4 {
		t.Fatalf("stats %+v, want 3 frames, 4 dropped", s)
	}
}

func TestContextCancellation(t *testing.T) {
	c, clk := newCamera(t, tinyConfig())
	mustNext(t, c)

	ctx, cancel := context.WithCancel(context.Background())
	ch := nextAsync(ctx, c)
	waitForTimer(t, clk)
	cancel()
	if r := receive(t, ch); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Next after cancel: %v, want context.Canceled", r.err)
	}
	if n := clk.Waiters(); n != 0 {
		t.Fatalf("%d timers left after cancel", n)
	}
	if _, err := c.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a done context: %v", err)
	}

	// The camera still works with a live context.
	ch = nextAsync(context.Background(), c)
	waitForTimer(t, clk)
	clk.Advance(c.interval)
	if r := receive(t, ch); r.err != nil {
		t.Fatal(r.err)
	}
}

func TestClose(t *testing.T) {
	c, clk := newCamera(t, tinyConfig())
	mustNext(t, c)
	ch := nextAsync(context.Background(), c)
	waitForTimer(t, clk)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if r := receive(t, ch); !errors.Is(r.err, ErrClosed) || r.err.Error() != "camera sim: closed" {
		t.Fatalf("waiting Next after Close: %v", r.err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	if clk.Waiters() != 0 {
		t.Fatal("timer left after Close")
	}
}

func TestConcurrentUse(t *testing.T) {
	c, clk := newCamera(t, tinyConfig())
	const readers, each = 3, 10
	done := make(chan error, readers)
	for range readers {
		go func() {
			for range each {
				f, err := c.Next(context.Background())
				if err != nil {
					done <- err
					return
				}
				c.InMotion(f.Time)
				c.Stats()
			}
			done <- nil
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for finished := 0; finished < readers; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			finished++
			continue
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("readers did not finish")
		}
		if clk.Waiters() > 0 {
			clk.Advance(c.interval)
		} else {
			time.Sleep(50 * time.Microsecond)
		}
	}
	if s := c.Stats(); s.Frames != readers*each || s.Dropped != 0 {
		t.Fatalf("stats %+v, want %d frames, none dropped", s, readers*each)
	}
}

func TestBadConfig(t *testing.T) {
	ok := smallConfig()
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.FPS = 0 }, "camera sim: fps 0: must be 1-60"},
		{func(c *Config) { c.FPS = 61 }, "camera sim: fps 61: must be 1-60"},
		{func(c *Config) { c.Width = 0 }, "camera sim: width 0: must be positive and even"},
		{func(c *Config) { c.Width = 321 }, "camera sim: width 321: must be positive and even"},
		{func(c *Config) { c.Height = -2 }, "camera sim: height -2: must be positive and even"},
		{func(c *Config) { c.Height = 241 }, "camera sim: height 241: must be positive and even"},
		{func(c *Config) { c.Width = 10000 }, "camera sim: size 10000x240"},
		{func(c *Config) { c.Quality = 101 }, "camera sim: quality 101"},
		{func(c *Config) { c.MotionEvery = -time.Second }, "camera sim: motion every -1s"},
		{func(c *Config) { c.MotionDuration = 10 * time.Second }, "camera sim: motion duration 10s"},
		{func(c *Config) { c.MotionDuration = 0 }, "camera sim: motion duration 0s"},
	} {
		cfg := ok
		tc.edit(&cfg)
		_, err := New(cfg, clock.NewFake(epoch))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", cfg, err, tc.want)
		}
	}
	if _, err := New(ok, nil); err == nil {
		t.Error("New with a nil clock succeeded")
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().validate(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkNext measures the per-frame cost of delivering a frame that is
// already due.
func BenchmarkNext(b *testing.B) {
	c, clk := newCamera(b, Config{Width: 640, Height: 480, FPS: 25, MotionEvery: 10 * time.Second, MotionDuration: 4 * time.Second})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Next(ctx); err != nil {
			b.Fatal(err)
		}
		clk.Advance(c.interval)
	}
}

// BenchmarkNew measures start-up, which encodes every frame: 8 noise
// variants and 50 van positions.
func BenchmarkNew(b *testing.B) {
	for _, size := range [][2]int{{1280, 720}, {1920, 1080}} {
		b.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(b *testing.B) {
			cfg := Config{Width: size[0], Height: size[1], FPS: 25, MotionEvery: 30 * time.Second, MotionDuration: 5 * time.Second}
			for b.Loop() {
				if _, err := New(cfg, clock.NewFake(epoch)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
