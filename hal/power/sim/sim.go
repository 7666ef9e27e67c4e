// Package sim is a simulated power system: a solar panel following the day,
// with passing clouds, charging a LiFePO4 battery through a charge
// controller while the unit draws a near-constant load. It lets the agent's
// power telemetry be run, demonstrated and tested without hardware.
//
// The simulation runs on its own simulated time, which can pass faster than
// the clock it is given (Config.TimeScale), so a demo shows a whole day of
// charging and discharging in minutes.
package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// Config describes the simulated power system.
type Config struct {
	// CapacityWh is the usable battery capacity, above 0.
	CapacityWh float64
	// PanelPeakW is the panel's output at midday under a clear sky, 0 or
	// more.
	PanelPeakW float64
	// LoadW is the unit's average draw, 0 or more.
	LoadW float64
	// InitialSOC is the battery's state of charge at the start, 0-100.
	InitialSOC float64
	// TimeScale is how many simulated seconds pass per second of the clock;
	// 60 makes a day pass in 24 minutes. Zero means 1.
	TimeScale float64
	// Start is the simulated time at the start; zero means the clock's
	// time. The hour of day is taken in Start's location.
	Start time.Time
}

// DefaultConfig is a 1200 Wh battery at 80 %, a 100 W panel and an 8 W
// load, in real time.
func DefaultConfig() Config {
	return Config{CapacityWh: 1200, PanelPeakW: 100, LoadW: 8, InitialSOC: 80, TimeScale: 1}
}

func (c Config) validate() error {
	switch {
	case !(c.CapacityWh > 0) || math.IsInf(c.CapacityWh, 0):
		return fmt.Errorf("power sim: capacity %g Wh: must be above 0", c.CapacityWh)
	case !(c.PanelPeakW >= 0) || math.IsInf(c.PanelPeakW, 0):
		return fmt.Errorf("power sim: panel peak %g W: must not be negative", c.PanelPeakW)
	case !(c.LoadW >= 0) || math.IsInf(c.LoadW, 0):
		return fmt.Errorf("power sim: load %g W: must not be negative", c.LoadW)
	case !(c.InitialSOC >= 0 && c.InitialSOC <= 100):
		return fmt.Errorf("power sim: initial SOC %g %%: must be 0-100", c.InitialSOC)
	case !(c.TimeScale >= 0) || math.IsInf(c.TimeScale, 0):
		return fmt.Errorf("power sim: time scale %g: must be above 0, or 0 for real time", c.TimeScale)
	}
	return nil
}

// Model constants.
const (
	// step is the integration step in simulated time. Steps end on whole
	// minutes, so midnight always falls between two steps.
	step = time.Minute
	// sunrise and sunset, in hours of the simulated day.
	sunrise, sunset = 6.0, 18.0
	// bulkEndSOC is where the controller leaves bulk for absorption and
	// starts to taper the charge.
	bulkEndSOC = 90.0
	// reconnectSOC is where the low-voltage disconnect gives the load back
	// after cutting it at an empty battery.
	reconnectSOC = 10.0
	// minPanelW is the panel power below which the controller is off.
	minPanelW = 0.5
	// Battery voltages (LiFePO4, 4 cells): held during absorption and float,
	// and the rise per amp of charge (internal resistance and polarisation).
	absorptionV    = 14.2
	floatV         = 13.5
	ohmsCharging   = 0.04
	ohmsDischarged = 0.015
)

// Sensor is a simulated power system. It is safe for concurrent use.
type Sensor struct {
	cfg       Config
	clk       clock.Clock
	realStart time.Time

	mu       sync.Mutex // guards the fields below
	simNow   time.Time  // how far the model has been integrated
	energyWh float64    // stored in the battery, 0-CapacityWh
	yieldWh  float64    // harvested on yieldDay
	yieldDay int        // yyyymmdd of simNow
	loadCut  bool       // low-voltage disconnect open
	floating bool       // battery reached full since sunrise
}

var _ power.Sensor = (*Sensor)(nil)

// New returns a power system that starts now, by clk.
func New(cfg Config, clk clock.Clock) (*Sensor, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if clk == nil {
		return nil, errors.New("power sim: nil clock")
	}
	if cfg.TimeScale == 0 {
		cfg.TimeScale = 1
	}
	now := clk.Now()
	if cfg.Start.IsZero() {
		cfg.Start = now
	}
	s := &Sensor{
		cfg:       cfg,
		clk:       clk,
		realStart: now,
		simNow:    cfg.Start,
		energyWh:  cfg.CapacityWh * cfg.InitialSOC / 100,
		yieldDay:  dayKey(cfg.Start),
		loadCut:   cfg.InitialSOC == 0,
	}
	s.floating = s.energyWh >= cfg.CapacityWh && s.flows(cfg.Start).state != "off"
	return s, nil
}

// SimTime returns the simulated time at real time t.
func (s *Sensor) SimTime(t time.Time) time.Time {
	elapsed := float64(t.Sub(s.realStart)) * s.cfg.TimeScale
	if elapsed > math.MaxInt64 { // beyond 292 years
		elapsed = math.MaxInt64
	}
	return s.cfg.Start.Add(time.Duration(elapsed))
}

// Read advances the simulation to the clock's time and reports it.
// Reading.Time is the clock's time, not the simulated time.
func (s *Sensor) Read(ctx context.Context) (power.Reading, error) {
	if err := ctx.Err(); err != nil {
		return power.Reading{}, err
	}
	now := s.clk.Now()
	sim := s.SimTime(now)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(sim)
	f := s.flows(s.simNow)
	soc := s.soc()
	v := s.batteryV(soc, f)
	return power.Reading{
		Time:         now,
		BatteryV:     power.F(round(v, 3)),
		BatteryA:     power.F(round(f.batteryW/v, 3)),
		SOCPercent:   power.F(round(soc, 2)),
		PanelV:       power.F(round(f.panelV, 2)),
		PanelW:       power.F(round(f.panelW, 2)),
		LoadW:        power.F(round(f.loadW, 2)),
		ChargeState:  f.state,
		YieldTodayWh: power.F(round(s.yieldWh, 1)),
	}, nil
}

// advance integrates the model up to simulated time to, in steps ending on
// whole minutes.
func (s *Sensor) advance(to time.Time) {
	for s.simNow.Before(to) {
		end := s.simNow.Truncate(step).Add(step)
		if end.After(to) {
			end = to
		}
		if d := dayKey(s.simNow); d != s.yieldDay {
			s.yieldDay, s.yieldWh = d, 0
		}
		hours := end.Sub(s.simNow).Hours()
		f := s.flows(s.simNow.Add(end.Sub(s.simNow) / 2))
		s.energyWh = min(max(s.energyWh+f.batteryW*hours, 0), s.cfg.CapacityWh)
		s.yieldWh += f.panelW * hours
		s.simNow = end

		// Low-voltage disconnect, and the controller's float latch.
		switch soc := s.soc(); {
		case s.energyWh <= 0:
			s.loadCut = true
		case s.loadCut && soc >= reconnectSOC:
			s.loadCut = false
		}
		switch {
		case f.state == "off":
			s.floating = false
		case s.energyWh >= s.cfg.CapacityWh:
			s.floating = true
		}
	}
	if d := dayKey(s.simNow); d != s.yieldDay {
		s.yieldDay, s.yieldWh = d, 0
	}
}

// flow is the power system's state at one instant.
type flow struct {
	panelW, panelV float64 // harvested from the panel
	loadW          float64
	batteryW       float64 // into the battery; negative when discharging
	state          string
}

// flows works out where the power goes at simulated time t, from the sun,
// the load and the battery's state.
func (s *Sensor) flows(t time.Time) flow {
	sun := sunFactor(t)
	avail := s.cfg.PanelPeakW * sun * cloudFactor(t)
	load := 0.0
	if !s.loadCut {
		load = s.cfg.LoadW * (1 + 0.04*wiggle(t))
	}
	soc := s.soc()

	var state string
	accept := math.Inf(1) // what the battery takes
	switch {
	case avail < minPanelW:
		state, avail = "off", 0
	case s.floating:
		state = "float"
		accept = 0.02 * s.cfg.PanelPeakW * (100 - soc)
	case soc >= bulkEndSOC:
		state = "absorption"
		accept = s.cfg.PanelPeakW * max((100-soc)/(100-bulkEndSOC), 0.05)
	default:
		state = "bulk"
	}
	if s.energyWh >= s.cfg.CapacityWh {
		accept = 0
	}
	panelW := min(avail, load+accept)

	panelV := 0.0
	if sun > 0 {
		// Near the maximum power point while harvesting all there is,
		// towards open circuit when the controller holds back.
		panelV = 16.5 + 1.5*sun
		if avail-panelW > minPanelW {
			panelV = 20.5 + sun
		}
		panelV *= min(1, 8*sun) // dawn and dusk
	}
	return flow{panelW: panelW, panelV: panelV, loadW: load, batteryW: panelW - load, state: state}
}

func (s *Sensor) soc() float64 { return min(max(100*s.energyWh/s.cfg.CapacityWh, 0), 100) }

// batteryV is the terminal voltage: a LiFePO4 resting curve, lifted while
// charging and held by the controller in absorption and float.
func (s *Sensor) batteryV(soc float64, f flow) float64 {
	rest := restingV(soc)
	amps := f.batteryW / rest
	switch {
	case f.state == "absorption" && amps > 0:
		return max(rest, absorptionV)
	case f.state == "float" && amps >= 0:
		return max(rest, floatV)
	case amps > 0:
		// Bulk: rising with the current, and towards absorption as the
		// battery fills.
		return min(rest+ohmsCharging*amps+0.6*max(soc-80, 0)/(bulkEndSOC-80), absorptionV)
	default:
		return rest + ohmsDischarged*amps
	}
}

// restingV is the open-circuit voltage of a 12.8 V LiFePO4 battery at a
// state of charge: steep at both ends, flat in between.
func restingV(soc float64) float64 {
	curve := [...]struct{ soc, v float64 }{
		{0, 12.0}, {5, 12.5}, {10, 12.8}, {20, 12.95}, {30, 13.05}, {40, 13.1},
		{50, 13.15}, {60, 13.2}, {70, 13.25}, {80, 13.3}, {90, 13.35}, {99, 13.4}, {100, 13.45},
	}
	if soc <= curve[0].soc {
		return curve[0].v
	}
	for i := 1; i < len(curve); i++ {
		if soc <= curve[i].soc {
			a, b := curve[i-1], curve[i]
			return a.v + (b.v-a.v)*(soc-a.soc)/(b.soc-a.soc)
		}
	}
	return curve[len(curve)-1].v
}

// sunFactor is the share of peak irradiance at t: a half sine from sunrise
// to sunset, zero at night.
func sunFactor(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60 + float64(t.Second())/3600
	if h <= sunrise || h >= sunset {
		return 0
	}
	return math.Sin(math.Pi * (h - sunrise) / (sunset - sunrise))
}

// cloudFactor is the share of the sun that gets through at t: a clearness
// drawn per day (some days are overcast) times clouds drifting past,
// changing smoothly over quarter hours. It depends only on t, so a
// simulation is repeatable.
func cloudFactor(t time.Time) float64 {
	day := 0.55 + 0.45*unit(hash(uint64(dayKey(t))))
	slot := float64(t.Unix()) / (15 * 60)
	i := math.Floor(slot)
	a, b := unit(hash(uint64(int64(i))^0xC10D)), unit(hash(uint64(int64(i)+1)^0xC10D))
	drift := a + (b-a)*(slot-i)
	return day * (0.75 + 0.25*drift)
}

// wiggle is a small variation of the load in -1..1, changing each minute
// (the modem transmitting, the heater of the enclosure cycling).
func wiggle(t time.Time) float64 {
	return 2*unit(hash(uint64(t.Unix()/60)^0x10AD)) - 1
}

// dayKey is the date of t as yyyymmdd, in t's location.
func dayKey(t time.Time) int {
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d
}

// hash is splitmix64's finaliser.
func hash(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

// unit maps a hash to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}
