package footage_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/clock"
)

func TestEventsInRange(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	st, err := footage.Open(t.TempDir(), footage.DefaultOptions(), slog.New(slog.NewTextHandler(io.Discard, nil)), clk)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	frame := []byte{0xFF, 0xD8, 0xFF, 0xD9}
	for i := 0; i < 100; i++ {
		at := t0.Add(time.Duration(i) * 40 * time.Millisecond)
		if _, err := st.Append(camera.Frame{Data: frame, Codec: camera.MJPEG, Time: at, Width: 16, Height: 16}, 0); err != nil {
			t.Fatal(err)
		}
		if i%25 == 10 {
			if _, err := st.AppendEvent("motion", at); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []footage.Event
	err = st.Events(context.Background(), t0.Add(time.Second), t0.Add(time.Hour), func(e footage.Event) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Events at 0.4 s, 1.4 s, 2.4 s and 3.4 s; from 1 s on: three.
	if len(got) != 3 || got[0].Kind != "motion" || !got[0].Time.Equal(t0.Add(1400*time.Millisecond)) {
		t.Fatalf("got %+v", got)
	}
}
