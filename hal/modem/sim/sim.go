// Package sim is a simulated LTE modem: signal quality wanders around
// configured means, as it does for a unit standing in one place while the
// cell's load and the weather change, and the link drops out now and then.
// It lets the agent's signal telemetry and offline handling be run,
// demonstrated and tested without a modem.
//
// Randomness comes from a seeded generator: the same seed and the same
// sequence of read times give the same readings.
package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/hal/modem"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// Operator and Tech are reported while registered.
const (
	Operator = "Sim Mobile"
	Tech     = "lte"
)

// Config describes the simulated modem.
type Config struct {
	// RSRPdBm, RSRQdB and SINRdB are the means the signal wanders around:
	// RSRP -140..-44 dBm, RSRQ -20..-3 dB, SINR -20..30 dB.
	RSRPdBm, RSRQdB, SINRdB float64
	// DropoutEvery is the mean time between losses of the network; the
	// gaps are random (exponentially distributed). Zero means never.
	DropoutEvery time.Duration
	// DropoutDuration is how long each loss lasts; above 0 and below
	// DropoutEvery when DropoutEvery is set.
	DropoutDuration time.Duration
	// Seed seeds the random walk and the dropout schedule.
	Seed uint64
}

// DefaultConfig is a fair signal (RSRP -95 dBm, RSRQ -11 dB, SINR 8 dB)
// lost for 30 seconds every 2 hours on average.
func DefaultConfig() Config {
	return Config{RSRPdBm: -95, RSRQdB: -11, SINRdB: 8, DropoutEvery: 2 * time.Hour, DropoutDuration: 30 * time.Second}
}

// metric is one wandering signal value: an Ornstein-Uhlenbeck process that
// drifts back to its mean, kept within a band around the mean and within
// what modems report.
type metric struct {
	name     string
	unit     string
	lo, hi   float64 // what a modem can report
	sigma    float64 // standard deviation around the mean, in the long run
	band     float64 // furthest from the mean the value goes
	mean, at float64
}

// revertTime is how long the signal takes to forget a deviation (the
// process's time constant).
const revertTime = 2 * time.Minute

func (m *metric) step(dt time.Duration, rnd *rand.Rand) {
	decay := math.Exp(-dt.Seconds() / revertTime.Seconds())
	m.at = m.mean + (m.at-m.mean)*decay + m.sigma*math.Sqrt(1-decay*decay)*rnd.NormFloat64()
	m.at = min(max(m.at, m.mean-m.band, m.lo), m.mean+m.band, m.hi)
}

// Modem is a simulated modem. It is safe for concurrent use.
type Modem struct {
	clk clock.Clock
	cfg Config

	mu        sync.Mutex // guards the fields below
	walk      *rand.Rand
	drops     *rand.Rand
	last      time.Time
	metrics   [3]metric // RSRP, RSRQ, SINR
	dropStart time.Time // the next (or current) dropout
	dropEnd   time.Time
}

var _ modem.Modem = (*Modem)(nil)

// New returns a modem registered from now, by clk.
func New(cfg Config, clk clock.Clock) (*Modem, error) {
	if clk == nil {
		return nil, errors.New("modem sim: nil clock")
	}
	m := &Modem{
		clk:   clk,
		cfg:   cfg,
		walk:  rand.New(rand.NewPCG(cfg.Seed, 0x5167_4E41_4C57_414C)),
		drops: rand.New(rand.NewPCG(cfg.Seed, 0x4452_4F50_4F55_5453)),
		last:  clk.Now(),
		metrics: [3]metric{
			{name: "RSRP", unit: "dBm", lo: -140, hi: -44, sigma: 3, band: 12, mean: cfg.RSRPdBm},
			{name: "RSRQ", unit: "dB", lo: -20, hi: -3, sigma: 1.5, band: 5, mean: cfg.RSRQdB},
			{name: "SINR", unit: "dB", lo: -20, hi: 30, sigma: 3, band: 10, mean: cfg.SINRdB},
		},
	}
	for i := range m.metrics {
		mt := &m.metrics[i]
		if !(mt.mean >= mt.lo && mt.mean <= mt.hi) {
			return nil, fmt.Errorf("modem sim: %s %g %s: must be %g..%g", mt.name, mt.mean, mt.unit, mt.lo, mt.hi)
		}
		mt.at = mt.mean
	}
	switch {
	case cfg.DropoutEvery < 0:
		return nil, fmt.Errorf("modem sim: dropout every %v: must not be negative", cfg.DropoutEvery)
	case cfg.DropoutEvery > 0 && (cfg.DropoutDuration <= 0 || cfg.DropoutDuration >= cfg.DropoutEvery):
		return nil, fmt.Errorf("modem sim: dropout duration %v: must be above 0 and below dropout every (%v)", cfg.DropoutDuration, cfg.DropoutEvery)
	}
	if cfg.DropoutEvery > 0 {
		m.scheduleDropout(m.last)
	}
	return m, nil
}

// scheduleDropout draws the next dropout, starting a random gap after.
func (m *Modem) scheduleDropout(after time.Time) {
	gap := time.Duration(m.drops.ExpFloat64() * float64(m.cfg.DropoutEvery))
	m.dropStart = after.Add(gap)
	m.dropEnd = m.dropStart.Add(m.cfg.DropoutDuration)
}

// Signal reports the link at the clock's time.
func (m *Modem) Signal(ctx context.Context) (modem.Signal, error) {
	if err := ctx.Err(); err != nil {
		return modem.Signal{}, err
	}
	now := m.clk.Now()

	m.mu.Lock()
	defer m.mu.Unlock()
	if dt := now.Sub(m.last); dt > 0 {
		for i := range m.metrics {
			m.metrics[i].step(dt, m.walk)
		}
		m.last = now
	}
	if m.cfg.DropoutEvery > 0 {
		for !now.Before(m.dropEnd) {
			m.scheduleDropout(m.dropEnd)
		}
		if !now.Before(m.dropStart) {
			return modem.Signal{Time: now}, nil
		}
	}
	return modem.Signal{
		Time:       now,
		Registered: true,
		Operator:   Operator,
		Tech:       Tech,
		RSRPdBm:    f(round1(m.metrics[0].at)),
		RSRQdB:     f(round1(m.metrics[1].at)),
		SINRdB:     f(round1(m.metrics[2].at)),
	}, nil
}

func f(v float64) *float64 { return &v }

// round1 rounds to a tenth, the resolution modems report.
func round1(v float64) float64 { return math.Round(v*10) / 10 }
