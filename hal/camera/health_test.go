package camera

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
)

var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestMeterFPS(t *testing.T) {
	for _, tc := range []struct {
		fps      float64
		duration time.Duration
		want     float64
	}{
		{25, 10 * time.Second, 25},
		{30, 10 * time.Second, 30},
		{5, 10 * time.Second, 5},
		{25, 2 * time.Second, 25}, // less than the window since the meter was made
		{60, 10 * time.Second, 60},
	} {
		t.Run(fmt.Sprintf("%gfps", tc.fps), func(t *testing.T) {
			clk := clock.NewFake(epoch)
			m := NewMeter(clk, "cam", 5*time.Second)
			step := time.Duration(float64(time.Second) / tc.fps)
			for el := time.Duration(0); el < tc.duration; el += step {
				clk.Advance(step)
				m.Frame(clk.Now(), 64, 48)
			}
			if got := m.Health().FPS; math.Abs(got-tc.want) > tc.want*0.05 {
				t.Fatalf("FPS = %.2f, want %.2f", got, tc.want)
			}
		})
	}
}

func TestMeterConditions(t *testing.T) {
	clk := clock.NewFake(epoch)
	m := NewMeter(clk, "cam", 5*time.Second)
	check := func(want Condition) {
		t.Helper()
		if got := m.Health().Condition; got != want {
			t.Fatalf("condition %q, want %q", got, want)
		}
	}
	check(ConditionStarting)
	clk.Advance(5 * time.Second)
	check(ConditionNoFrames)
	m.Connected("MJPEG 64x48 @ 25 fps")
	m.Frame(clk.Now(), 64, 48)
	check(ConditionOK)
	clk.Advance(time.Second)
	m.Lost(errors.New("unplugged"), false)
	check(ConditionReconnecting)
	clk.Advance(4 * time.Second)
	check(ConditionNoFrames)
	if m.Health().FPS != 0 {
		t.Errorf("FPS %v with no frame for 5s", m.Health().FPS)
	}
	m.Lost(errors.New("wrong format"), true)
	check(ConditionNeedsAttention)
	if !m.Connected("MJPEG") {
		t.Error("second session not seen as one")
	}
	if m.Health().Reconnects != 0 {
		t.Error("a reconnection counted before any frame came")
	}
	if gap := m.Frame(clk.Now(), 64, 48); gap != 5*time.Second {
		t.Errorf("gap %v, want 5s", gap)
	}
	check(ConditionOK)
	m.Dropped("truncated")
	m.Skipped(10)
	m.Closed()
	check(ConditionClosed)
	h := m.Health()
	if h.Frames != 2 || h.Dropped != 1 || h.DropReason != "truncated" || h.SkippedBytes != 10 || h.Reconnects != 1 || h.LastGap != 5*time.Second || h.LastError != "wrong format" {
		t.Fatalf("health %+v", h)
	}
}

func TestClasses(t *testing.T) {
	cause := errors.New("no MJPEG at 1920x1080")
	err := fmt.Errorf("v4l2: /dev/video0: %w", NeedsAttention(cause))
	if !errors.Is(err, ErrNeedsAttention) || !errors.Is(err, cause) || errors.Is(err, ErrNoFrames) {
		t.Fatalf("class lost: %v", err)
	}
	if err.Error() != "v4l2: /dev/video0: no MJPEG at 1920x1080" {
		t.Fatalf("text %q: the class must not add words", err)
	}
	if NeedsAttention(nil) != nil || NoFrames(nil) != nil {
		t.Fatal("classing nil gave an error")
	}
	if !errors.Is(NoFrames(cause), ErrNoFrames) {
		t.Fatal("NoFrames lost its class")
	}
}
