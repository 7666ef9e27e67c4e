package footage

import (
	"math"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
)

func TestProjectDays(t *testing.T) {
	o := DefaultOptions() // quota 90 %, min_free 1 GiB, max_age 28 d
	const gib = 1 << 30
	perDay := func(bytesPerDay float64) float64 { return bytesPerDay / 86400 }
	cases := []struct {
		name                    string
		total, free, used, held int64
		rate                    float64
		want                    float64
	}{
		{"no rate yet", 64 * gib, 60 * gib, 0, 0, 0, 0},
		{"quota bound", 100 * gib, 100 * gib, 0, 0, perDay(9 * gib), 10},
		{"min_free bound", 100 * gib, 10 * gib, 5 * gib, 0, perDay(1 * gib), 14},
		{"held footage takes room", 100 * gib, 100 * gib, 0, 45 * gib, perDay(9 * gib), 5},
		{"capped at max_age", 1000 * gib, 1000 * gib, 0, 0, perDay(1 * gib), 28},
		{"all held", 100 * gib, 1 * gib, 99 * gib, 99 * gib, perDay(gib), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := projectDays(o, c.total, c.free, c.used, c.held, c.rate)
			if math.Abs(got-c.want) > 0.01 {
				t.Fatalf("%.2f days, want %.2f", got, c.want)
			}
		})
	}
}

func TestRateMeter(t *testing.T) {
	var r rateMeter
	t0 := time.Unix(1000, 0)
	if r.rateAt(t0, 0) != 0 {
		t.Fatal("rate without samples")
	}
	r.sample(t0, 0)
	for i := 1; i <= 120; i++ { // two hours, a sample a minute, 1 MB/s
		r.sample(t0.Add(time.Duration(i)*time.Minute), int64(i)*60e6)
	}
	if got := r.rateAt(t0.Add(120*time.Minute), 120*60e6); math.Abs(got-1e6) > 1 {
		t.Fatalf("rate %.0f, want 1e6", got)
	}
	if len(r.t) > 62 {
		t.Fatalf("%d samples kept for a one-hour window", len(r.t))
	}
}

func TestOptionsFromConfig(t *testing.T) {
	c := config.Default()
	c.Recording.Mode = config.ModeEvents
	c.Recording.PreRoll = config.Duration(7 * time.Second)
	c.Retention.Quota = config.SizeOrPercent{Bytes: 64 << 30}
	o := OptionsFromConfig(c.Recording, c.Retention)
	if o.Mode != config.ModeEvents || o.PreRoll != 7*time.Second || o.SyncInterval != time.Second ||
		o.SegmentDuration != time.Minute || o.MaxAge != 28*24*time.Hour || o.Quota.Bytes != 64<<30 || o.MaxFrameSize != 4<<20 {
		t.Fatalf("options %+v", o)
	}
	bad := o
	bad.Mode = "sometimes"
	if err := bad.fill(); err == nil {
		t.Fatal("unknown mode accepted")
	}
}
