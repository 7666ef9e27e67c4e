package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/testbroker"
)

// footageBytes is what a unit's footage store holds on disk.
func footageBytes(t *testing.T, data string) int64 {
	t.Helper()
	var n int64
	filepath.WalkDir(filepath.Join(data, "footage"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// TestEventsModeStoresLess runs two simulated units side by side on the
// same scene (a van crossing every 20 s), one recording continuously and
// one in events mode, and reports the bytes each stores per hour.
func TestEventsModeStoresLess(t *testing.T) {
	t.Parallel()
	b := testbroker.Start(t, testbroker.Options{})
	run := func(id, mode string) string {
		cfg := filepath.Join(t.TempDir(), "unit.yaml")
		y := fmt.Sprintf("unit:\n  id: %s\ncamera:\n  width: 640\n  height: 360\n  sim:\n    motion_every: 20s\n    motion_duration: 3s\nrecording:\n  mode: %s\n  pre_roll: 2s\n  post_roll: 3s\n", id, mode)
		if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return unit(t, b, id, "--config", cfg)
	}
	cont, events := run("mode-continuous", "continuous"), run("mode-events", "events")
	waitOnline(t, b, "mode-continuous")
	waitOnline(t, b, "mode-events")
	start := time.Now()
	c0, e0 := footageBytes(t, cont), footageBytes(t, events)
	time.Sleep(45 * time.Second) // the measurement's span: two crossings
	span := time.Since(start)
	c1, e1 := footageBytes(t, cont), footageBytes(t, events)
	perHour := func(a, b int64) float64 { return float64(b-a) / span.Hours() / (1 << 30) }
	cr, er := perHour(c0, c1), perHour(e0, e1)
	t.Logf("over %s of the same scene: continuous %.2f GiB/hour, events %.2f GiB/hour (%.0f %%)", span.Round(time.Second), cr, er, 100*er/cr)
	if er <= 0 {
		t.Fatalf("events mode stored nothing in %s: the crossings were not recorded", span)
	}
	if er > 0.5*cr {
		t.Errorf("events mode stores %.0f %% of continuous: want far less", 100*er/cr)
	}
}
