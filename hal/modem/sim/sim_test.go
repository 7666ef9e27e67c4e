package sim

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/hal/modem"
	"github.com/outpost-cctv/outpost/internal/clock"
)

var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newModem(t *testing.T, cfg Config) (*Modem, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(epoch)
	m, err := New(cfg, clk)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return m, clk
}

func read(t *testing.T, m *Modem) modem.Signal {
	t.Helper()
	s, err := m.Signal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readEvery reads n times, advancing the clock by d before each read.
func readEvery(t *testing.T, m *Modem, clk *clock.Fake, d time.Duration, n int) []modem.Signal {
	t.Helper()
	out := make([]modem.Signal, n)
	for i := range out {
		clk.Advance(d)
		out[i] = read(t, m)
	}
	return out
}

func TestValuesStayInRange(t *testing.T) {
	for _, cfg := range []Config{
		DefaultConfig(),
		{RSRPdBm: -138, RSRQdB: -19.5, SINRdB: -19, Seed: 1},
		{RSRPdBm: -45, RSRQdB: -3, SINRdB: 29, Seed: 2},
	} {
		cfg.DropoutEvery = 0
		m, clk := newModem(t, cfg)
		var sum float64
		steps := []time.Duration{time.Second, 10 * time.Second, time.Minute, time.Hour}
		const n = 4000
		for i := range n {
			clk.Advance(steps[i%len(steps)])
			s := read(t, m)
			if !s.Registered || s.Operator != "Sim Mobile" || s.Tech != "lte" || !s.Time.Equal(clk.Now()) {
				t.Fatalf("signal %+v", s)
			}
			for _, v := range []struct {
				name      string
				p         *float64
				mean      float64
				lo, hi, b float64
			}{
				{"RSRP", s.RSRPdBm, cfg.RSRPdBm, -140, -44, 12},
				{"RSRQ", s.RSRQdB, cfg.RSRQdB, -20, -3, 5},
				{"SINR", s.SINRdB, cfg.SINRdB, -20, 30, 10},
			} {
				if v.p == nil {
					t.Fatalf("%s missing while registered", v.name)
				}
				if *v.p < v.lo || *v.p > v.hi || math.Abs(*v.p-v.mean) > v.b+0.05 {
					t.Fatalf("%s %g outside %g..%g or too far from %g", v.name, *v.p, v.lo, v.hi, v.mean)
				}
			}
			sum += *s.RSRPdBm
		}
		// It wanders around the mean, not off to one side (the clamped
		// means are allowed to sit off centre).
		if avg := sum / n; cfg.RSRPdBm == -95 && math.Abs(avg-cfg.RSRPdBm) > 1 {
			t.Errorf("RSRP averaged %g dBm, want about %g", avg, cfg.RSRPdBm)
		}
	}
}

func TestSignalWanders(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DropoutEvery = 0
	m, clk := newModem(t, cfg)
	seen := map[float64]bool{}
	var maxStep float64
	prev := *read(t, m).RSRPdBm
	for _, s := range readEvery(t, m, clk, 5*time.Second, 500) {
		seen[*s.RSRPdBm] = true
		maxStep = max(maxStep, math.Abs(*s.RSRPdBm-prev))
		prev = *s.RSRPdBm
	}
	if len(seen) < 20 {
		t.Fatalf("RSRP took only %d values in 500 reads", len(seen))
	}
	// Five seconds apart, the signal moves a little, not across the band.
	if maxStep > 5 {
		t.Fatalf("RSRP jumped by %g dB in 5 s", maxStep)
	}
	// Reading twice at the same time gives the same values.
	a, b := read(t, m), read(t, m)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("two reads at one time differ: %+v, %+v", a, b)
	}
}

func TestDropouts(t *testing.T) {
	cfg := Config{RSRPdBm: -95, RSRQdB: -11, SINRdB: 8, DropoutEvery: 5 * time.Minute, DropoutDuration: 30 * time.Second, Seed: 42}
	m, clk := newModem(t, cfg)
	signals := readEvery(t, m, clk, 5*time.Second, 12*720) // 12 hours
	dropped, episodes := 0, 0
	wasDown := false
	for _, s := range signals {
		down := !s.Registered
		if down {
			dropped++
			if s.RSRPdBm != nil || s.RSRQdB != nil || s.SINRdB != nil || s.Operator != "" || s.Tech != "" {
				t.Fatalf("values while dropped out: %+v", s)
			}
			if s.Quality() != "none" {
				t.Fatalf("quality %q while dropped out", s.Quality())
			}
			if !wasDown {
				episodes++
			}
		} else if s.RSRPdBm == nil || s.RSRQdB == nil || s.SINRdB == nil {
			t.Fatalf("values missing while registered: %+v", s)
		}
		wasDown = down
	}
	// 12 hours at one 30 s loss every 5 min on average: about 130 losses,
	// about 9 % of the time.
	share := float64(dropped) / float64(len(signals))
	if episodes < 80 || episodes > 200 || share < 0.05 || share > 0.15 {
		t.Fatalf("%d dropouts, %.1f %% of the time; want about 130 and 9 %%", episodes, 100*share)
	}
}

func TestDropoutLastsItsDuration(t *testing.T) {
	cfg := Config{RSRPdBm: -95, RSRQdB: -11, SINRdB: 8, DropoutEvery: time.Hour, DropoutDuration: time.Minute, Seed: 7}
	m, clk := newModem(t, cfg)
	// Find the first dropout second by second, then check its length.
	for i := 0; read(t, m).Registered; i++ {
		if i > 24*3600 {
			t.Fatal("no dropout in a day")
		}
		clk.Advance(time.Second)
	}
	down := 0
	for !read(t, m).Registered {
		down++
		clk.Advance(time.Second)
	}
	if down < 59 || down > 61 {
		t.Fatalf("dropout lasted %d s, want 60", down)
	}
}

func TestNoDropoutsWhenOff(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DropoutEvery, cfg.DropoutDuration = 0, 0
	m, clk := newModem(t, cfg)
	for _, s := range readEvery(t, m, clk, time.Minute, 2000) {
		if !s.Registered {
			t.Fatal("dropout with DropoutEvery 0")
		}
	}
}

func TestDeterministic(t *testing.T) {
	cfg := Config{RSRPdBm: -100, RSRQdB: -12, SINRdB: 5, DropoutEvery: 10 * time.Minute, DropoutDuration: time.Minute, Seed: 99}
	run := func(seed uint64) []modem.Signal {
		c := cfg
		c.Seed = seed
		m, clk := newModem(t, c)
		return readEvery(t, m, clk, 7*time.Second, 1000)
	}
	a, b := run(99), run(99)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different readings")
	}
	if reflect.DeepEqual(a, run(100)) {
		t.Fatal("different seeds, same readings")
	}
}

func TestSignalHonoursContext(t *testing.T) {
	m, _ := newModem(t, DefaultConfig())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Signal(ctx); err != context.Canceled {
		t.Fatalf("Signal with a cancelled context: %v", err)
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.RSRPdBm = 0 }, "modem sim: RSRP 0 dBm: must be -140..-44"},
		{func(c *Config) { c.RSRPdBm = -141 }, "modem sim: RSRP -141 dBm"},
		{func(c *Config) { c.RSRQdB = math.NaN() }, "modem sim: RSRQ NaN dB: must be -20..-3"},
		{func(c *Config) { c.SINRdB = 31 }, "modem sim: SINR 31 dB: must be -20..30"},
		{func(c *Config) { c.DropoutEvery = -time.Second }, "modem sim: dropout every -1s"},
		{func(c *Config) { c.DropoutDuration = 0 }, "modem sim: dropout duration 0s"},
		{func(c *Config) { c.DropoutDuration = 3 * time.Hour }, "modem sim: dropout duration 3h0m0s"},
	} {
		cfg := DefaultConfig()
		tc.edit(&cfg)
		if _, err := New(cfg, clock.NewFake(epoch)); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", cfg, err, tc.want)
		}
	}
	if _, err := New(DefaultConfig(), nil); err == nil {
		t.Error("New with a nil clock succeeded")
	}
}
