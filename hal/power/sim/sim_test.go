package sim

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// realEpoch is the fake clock's start; day1 is the simulated start.
var (
	realEpoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	day1      = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
)

// hourly passes one simulated hour per second of the clock.
const hourly = 3600

type rig struct {
	t   *testing.T
	s   *Sensor
	clk *clock.Fake
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	clk := clock.NewFake(realEpoch)
	s, err := New(cfg, clk)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return &rig{t, s, clk}
}

// readAt advances the clock until the simulated time is at and reads.
func (r *rig) readAt(at time.Time) power.Reading {
	r.t.Helper()
	sim := r.s.SimTime(r.clk.Now())
	if at.Before(sim) {
		r.t.Fatalf("cannot go back from %v to %v", sim, at)
	}
	r.clk.Advance(time.Duration(float64(at.Sub(sim)) / r.s.cfg.TimeScale))
	if got := r.s.SimTime(r.clk.Now()); !got.Equal(at) {
		r.t.Fatalf("simulated time %v, want %v", got, at)
	}
	rd, err := r.s.Read(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return rd
}

func hour(h float64) time.Time { return day1.Add(time.Duration(h * float64(time.Hour))) }

func minute(m int) time.Time { return day1.Add(time.Duration(m) * time.Minute) }

func TestPanelFollowsTheDay(t *testing.T) {
	r := newRig(t, Config{CapacityWh: 1200, PanelPeakW: 100, LoadW: 8, InitialSOC: 50, TimeScale: hourly, Start: day1})
	for _, h := range []float64{0, 3, 5.9, 18.1, 21, 24 + 2} {
		rd := r.readAt(hour(h))
		if *rd.PanelW != 0 || *rd.PanelV != 0 || rd.ChargeState != "off" {
			t.Errorf("%v: panel %g W %g V %q, want 0 W 0 V off at night", hour(h), *rd.PanelW, *rd.PanelV, rd.ChargeState)
		}
		if *rd.BatteryA >= 0 {
			t.Errorf("%v: battery current %g A at night, want discharging", hour(h), *rd.BatteryA)
		}
	}
	r = newRig(t, Config{CapacityWh: 1200, PanelPeakW: 100, LoadW: 8, InitialSOC: 50, TimeScale: hourly, Start: day1})
	prev := 0.0
	for _, h := range []float64{7, 9, 12} {
		rd := r.readAt(hour(h))
		if *rd.PanelW <= 0 || *rd.PanelV < 15 || rd.ChargeState != "bulk" {
			t.Errorf("%v: panel %g W %g V %q, want power in bulk", hour(h), *rd.PanelW, *rd.PanelV, rd.ChargeState)
		}
		if h == 12 && *rd.PanelW < 35 {
			t.Errorf("noon: panel %g W, want most of the 100 W peak", *rd.PanelW)
		}
		if *rd.PanelW < prev*0.6 {
			t.Errorf("%v: panel %g W after %g W in the morning", hour(h), *rd.PanelW, prev)
		}
		prev = *rd.PanelW
	}
}

func TestSOCRisesByDayAndFallsByNight(t *testing.T) {
	r := newRig(t, Config{CapacityWh: 1200, PanelPeakW: 100, LoadW: 2, InitialSOC: 50, TimeScale: hourly, Start: hour(6)})
	dawn := *r.readAt(hour(6)).SOCPercent
	dusk := *r.readAt(hour(18)).SOCPercent
	if dusk <= dawn+10 {
		t.Fatalf("SOC %g%% at dusk after %g%% at dawn: want a sunny day to charge", dusk, dawn)
	}
	next := *r.readAt(hour(30)).SOCPercent
	// 12 hours of 2 W ±4 % is 24 Wh ±1, 2 % of 1200 Wh.
	if drop := dusk - next; math.Abs(drop-2) > 0.15 {
		t.Fatalf("SOC fell by %g%% overnight, want 2%%", drop)
	}
}

func TestSOCIsClampedAtFull(t *testing.T) {
	r := newRig(t, Config{CapacityWh: 100, PanelPeakW: 200, LoadW: 1, InitialSOC: 95, TimeScale: 600, Start: day1})
	states := map[string]bool{}
	top := 0.0
	for m := 0; m <= 24*60; m += 10 {
		rd := r.readAt(minute(m))
		soc := *rd.SOCPercent
		if soc < 0 || soc > 100 {
			t.Fatalf("%v: SOC %g%%", minute(m), soc)
		}
		top = max(top, soc)
		states[rd.ChargeState] = true
		if rd.ChargeState == "float" && soc == 100 {
			if *rd.BatteryA != 0 || *rd.PanelW > *rd.LoadW+0.01 {
				t.Fatalf("full battery in float: battery %g A, panel %g W, load %g W", *rd.BatteryA, *rd.PanelW, *rd.LoadW)
			}
			if *rd.BatteryV != floatV {
				t.Fatalf("float at %g V, want %g V", *rd.BatteryV, floatV)
			}
		}
		if rd.ChargeState == "absorption" && *rd.BatteryA > 0 && *rd.BatteryV != absorptionV {
			t.Fatalf("absorption at %g V, want %g V", *rd.BatteryV, absorptionV)
		}
	}
	if top != 100 {
		t.Fatalf("SOC peaked at %g%%, want 100%%", top)
	}
	for _, s := range []string{"off", "absorption", "float"} {
		if !states[s] {
			t.Errorf("charge state %q never seen; saw %v", s, states)
		}
	}
}

func TestLoadIsCutAtEmpty(t *testing.T) {
	r := newRig(t, Config{CapacityWh: 100, PanelPeakW: 100, LoadW: 20, InitialSOC: 5, TimeScale: hourly, Start: hour(18)})
	rd := r.readAt(hour(20))
	if *rd.SOCPercent != 0 || *rd.LoadW != 0 || *rd.BatteryA != 0 || rd.ChargeState != "off" {
		t.Fatalf("empty battery: SOC %g%%, load %g W, battery %g A, %q; want 0, 0, 0, off", *rd.SOCPercent, *rd.LoadW, *rd.BatteryA, rd.ChargeState)
	}
	if v := *rd.BatteryV; v < 11.9 || v > 12.1 {
		t.Fatalf("empty battery at %g V, want about 12.0 V", v)
	}
	// The sun charges the battery and the load comes back.
	rd = r.readAt(hour(24 + 13))
	if *rd.LoadW == 0 || *rd.SOCPercent < reconnectSOC {
		t.Fatalf("next day: SOC %g%%, load %g W; want the load back", *rd.SOCPercent, *rd.LoadW)
	}
}

func TestYieldResetsAtMidnight(t *testing.T) {
	cfg := Config{CapacityWh: 5000, PanelPeakW: 100, LoadW: 8, InitialSOC: 20, TimeScale: hourly, Start: day1}
	r := newRig(t, cfg)
	if y := *r.readAt(hour(5)).YieldTodayWh; y != 0 {
		t.Fatalf("yield %g Wh before sunrise", y)
	}
	late := *r.readAt(hour(23.5)).YieldTodayWh
	if late < 200 || late > 700 {
		t.Fatalf("yield %g Wh for a day of a 100 W panel", late)
	}
	if y := *r.readAt(hour(24.5)).YieldTodayWh; y != 0 {
		t.Fatalf("yield %g Wh after midnight, want 0", y)
	}
	noon := *r.readAt(hour(36)).YieldTodayWh
	if noon <= 0 {
		t.Fatalf("yield %g Wh by the next noon", noon)
	}

	// A sensor read rarely integrates the same model: crossing midnight in
	// one read still counts only the new day.
	r2 := newRig(t, cfg)
	r2.readAt(hour(23))
	if y := *r2.readAt(hour(36)).YieldTodayWh; y != noon {
		t.Fatalf("yield %g Wh at noon read across midnight, want %g Wh", y, noon)
	}
}

func TestVoltageIsPlausible(t *testing.T) {
	r := newRig(t, Config{CapacityWh: 1200, PanelPeakW: 150, LoadW: 8, InitialSOC: 30, TimeScale: 600, Start: day1})
	for m := 0; m < 4*24*60; m += 20 {
		rd := r.readAt(minute(m))
		v, a, soc := *rd.BatteryV, *rd.BatteryA, *rd.SOCPercent
		if v < 11.9 || v > absorptionV {
			t.Fatalf("%v: battery at %g V", minute(m), v)
		}
		rest := restingV(soc)
		if a > 0.5 && v <= rest {
			t.Fatalf("%v: charging at %g A but %g V, resting %g V", minute(m), a, v, rest)
		}
		if a < 0 && (v > rest+0.001 || v < 12.0 || v > 13.6) {
			t.Fatalf("%v: discharging at %g A and %g V, resting %g V", minute(m), a, v, rest)
		}
		// Power balance: panel = load + battery.
		if got := *rd.PanelW - *rd.LoadW; math.Abs(got-a*v) > 0.1 {
			t.Fatalf("%v: panel %g W - load %g W != battery %g A × %g V", minute(m), *rd.PanelW, *rd.LoadW, a, v)
		}
	}
}

func TestReadingAndTimeScale(t *testing.T) {
	clk := clock.NewFake(realEpoch)
	s, err := New(Config{CapacityWh: 1200, PanelPeakW: 100, LoadW: 8, InitialSOC: 80, TimeScale: 60}, clk)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.SimTime(clk.Now()); !got.Equal(realEpoch) {
		t.Fatalf("zero Start: simulated time %v, want the clock's %v", got, realEpoch)
	}
	clk.Advance(90 * time.Second)
	if got, want := s.SimTime(clk.Now()), realEpoch.Add(90*time.Minute); !got.Equal(want) {
		t.Fatalf("simulated time %v, want %v", got, want)
	}
	rd, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rd.Time.Equal(clk.Now()) {
		t.Fatalf("reading at %v, want the clock's %v", rd.Time, clk.Now())
	}
	for name, p := range map[string]*float64{"BatteryV": rd.BatteryV, "BatteryA": rd.BatteryA, "SOCPercent": rd.SOCPercent, "PanelV": rd.PanelV, "PanelW": rd.PanelW, "LoadW": rd.LoadW, "YieldTodayWh": rd.YieldTodayWh} {
		if p == nil {
			t.Errorf("%s is nil", name)
		}
	}
	if rd.ChargeState == "" {
		t.Error("no charge state")
	}
	// Real time by default.
	s, _ = New(Config{CapacityWh: 1, InitialSOC: 50}, clk)
	clk.Advance(time.Minute)
	if got, want := s.SimTime(clk.Now()), clk.Now(); !got.Equal(want) {
		t.Fatalf("time scale 0: simulated time %v, want %v", got, want)
	}
}

func TestReadHonoursContext(t *testing.T) {
	r := newRig(t, DefaultConfig())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.s.Read(ctx); err != context.Canceled {
		t.Fatalf("Read with a cancelled context: %v", err)
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.CapacityWh = 0 }, "power sim: capacity 0 Wh: must be above 0"},
		{func(c *Config) { c.CapacityWh = math.NaN() }, "power sim: capacity NaN Wh"},
		{func(c *Config) { c.PanelPeakW = -1 }, "power sim: panel peak -1 W"},
		{func(c *Config) { c.LoadW = math.Inf(1) }, "power sim: load +Inf W"},
		{func(c *Config) { c.InitialSOC = 101 }, "power sim: initial SOC 101 %: must be 0-100"},
		{func(c *Config) { c.InitialSOC = -1 }, "power sim: initial SOC -1 %"},
		{func(c *Config) { c.TimeScale = -60 }, "power sim: time scale -60"},
	} {
		cfg := DefaultConfig()
		tc.edit(&cfg)
		if _, err := New(cfg, clock.NewFake(realEpoch)); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", cfg, err, tc.want)
		}
	}
	if _, err := New(DefaultConfig(), nil); err == nil {
		t.Error("New with a nil clock succeeded")
	}
}

func TestRestingCurve(t *testing.T) {
	prev := 0.0
	for soc := 0.0; soc <= 100; soc += 0.5 {
		v := restingV(soc)
		if v < prev || v < 12.0 || v > 13.6 {
			t.Fatalf("resting voltage %g V at %g%% after %g V", v, soc, prev)
		}
		prev = v
	}
}
