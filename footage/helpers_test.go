package footage_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/footage/footagetest"
	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// t0 is a time after the clock is set.
var t0 = time.Date(2025, 3, 4, 3, 12, 0, 0, time.UTC)

func testLog(t testing.TB) *slog.Logger {
	if os.Getenv("FOOTAGE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// smallOpts are options for tests: small segments, everything else the
// default.
func smallOpts() footage.Options {
	o := footage.DefaultOptions()
	o.SegmentDuration = 2 * time.Second
	o.SegmentMaxSize = 1 << 20
	o.MaxFrameSize = 256 << 10
	return o
}

func openStore(t testing.TB, dir string, o footage.Options, clk clock.Clock) *footage.Store {
	t.Helper()
	s, err := footage.Open(dir, o, testLog(t), clk)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var testPics = func() [][]byte {
	var p [][]byte
	for i := 0; i < 5; i++ {
		p = append(p, footagetest.JPEG(64, 48, i, 75))
	}
	return p
}()

// record appends frames at fps from start and syncs; it returns their
// sequence numbers.
func record(t testing.TB, s *footage.Store, start time.Time, fps, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, f := range footagetest.Frames(start, fps, n, testPics, 64, 48) {
		seq, err := s.Append(f, 0)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		seqs = append(seqs, seq)
	}
	if _, err := s.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return seqs
}

// allFrames reads every frame in sequence order.
func allFrames(t testing.TB, s *footage.Store) []footage.Frame {
	t.Helper()
	var out []footage.Frame
	_, err := s.FramesBySeq(context.Background(), 0, ^uint64(0), func(f footage.Frame) error {
		f.Data = append([]byte(nil), f.Data...)
		out = append(out, f)
		return nil
	})
	if err != nil {
		t.Fatalf("FramesBySeq: %v", err)
	}
	return out
}

func frame(at time.Time, data []byte) camera.Frame {
	return camera.Frame{Data: data, Codec: camera.MJPEG, Time: at, Width: 64, Height: 48}
}
