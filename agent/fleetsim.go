package agent

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/hal/modem"
	modemsim "github.com/outpost-cctv/outpost/hal/modem/sim"
	"github.com/outpost-cctv/outpost/hal/power"
	powersim "github.com/outpost-cctv/outpost/hal/power/sim"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/internal/version"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// FleetSimOptions sets a simulated fleet.
type FleetSimOptions struct {
	Units    int
	Broker   string
	Prefix   string // topic prefix (default outpost)
	IDPrefix string // unit ids are IDPrefix0001... (default sim-)
	// Dir keeps each unit's outbox and data usage (Dir/<id>); empty: a
	// temporary directory, removed at the end.
	Dir string
	// Telemetry is each stream's interval (default 1 min, as a unit in the
	// field); a stream is published at least every 15 intervals.
	Telemetry time.Duration
	// ConnectRate is how many units connect a second (default 100), so
	// that a thousand units do not storm the broker at once.
	ConnectRate int
	// Ready, when set, is told the number of units connected, each time it
	// grows.
	Ready func(connected int)
}

// RunFleetSim runs many light simulated units in this process against a
// broker, for measuring a control room's scale: each is a real MQTT
// session (status with last will, retained config/reported and health,
// commands: ping, telemetry) and real telemetry from a simulated battery
// and modem; none has a camera or a footage store. It runs until ctx ends.
func RunFleetSim(ctx context.Context, o FleetSimOptions, log *slog.Logger) error {
	if o.Units < 1 || o.Units > 100000 {
		return fmt.Errorf("fleet-sim: %d units: give 1 to 100000", o.Units)
	}
	if o.Prefix == "" {
		o.Prefix = "outpost"
	}
	if o.IDPrefix == "" {
		o.IDPrefix = "sim-"
	}
	if o.Telemetry <= 0 {
		o.Telemetry = time.Minute
	}
	if o.ConnectRate <= 0 {
		o.ConnectRate = 100
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "outpost-fleet-sim")
		if err != nil {
			return fmt.Errorf("fleet-sim: %w", err)
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	clk := clock.Real{}
	quiet := log.With("component", "fleet-sim")
	var wg sync.WaitGroup
	var mu sync.Mutex
	connected := 0
	tick := time.NewTicker(time.Second / time.Duration(o.ConnectRate))
	defer tick.Stop()
	for i := 1; i <= o.Units; i++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-tick.C:
		}
		id := fmt.Sprintf("%s%04d", o.IDPrefix, i)
		u, err := newSimUnit(id, i, o, clk, quiet)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			u.run(ctx, func() {
				if o.Ready == nil {
					return
				}
				mu.Lock()
				connected++
				n := connected
				mu.Unlock()
				o.Ready(n)
			})
		}()
	}
	wg.Wait()
	return nil
}

type simUnit struct {
	session   *uplink.Session
	telemetry *Telemetry
}

func newSimUnit(id string, i int, o FleetSimOptions, clk clock.Clock, log *slog.Logger) (*simUnit, error) {
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	var pw power.Sensor
	var md modem.Modem
	var err error
	if pw, err = powersim.New(powersim.Config{CapacityWh: 1200, PanelPeakW: 100, LoadW: 6 + 4*rng.Float64(), InitialSOC: 40 + 55*rng.Float64(), TimeScale: 1}, clk); err != nil {
		return nil, err
	}
	if md, err = modemsim.New(modemsim.Config{RSRPdBm: -80 - 35*rng.Float64(), RSRQdB: -11, SINRdB: 8, Seed: uint64(i)}, clk); err != nil {
		return nil, err
	}
	topics := wire.Topics{Prefix: o.Prefix, Unit: id}
	boot := clk.Now()
	var statuses func() []Status
	session := uplink.NewSession(log, uplink.Options{
		Broker: o.Broker, Topics: topics, Clock: clk, Dir: filepath.Join(o.Dir, id), OutboxSize: 256 << 10,
		Online: func() wire.Status {
			return wire.Status{Header: wire.NewHeader(clk.Now()), State: wire.Online, Version: version.Version, Boot: boot.UTC().Truncate(time.Millisecond),
				Site: fmt.Sprintf("simulated site %d", i), Purpose: "fleet simulation"}
		},
	})
	st := StreamTiming{o.Telemetry, 15 * o.Telemetry}
	t := NewTelemetry(log, session, TelemetryOptions{
		Clock: clk, Topics: topics, Power: pw, Modem: md, Boot: boot, Version: version.Version,
		Health: func() []Status { return statuses() }, Link: session.Link, Policy: session.DataPolicy,
		Streams: Streams{Power: st, Signal: st, System: st, Storage: StreamTiming{}, Link: st},
	})
	statuses = func() []Status {
		return []Status{{Name: "uplink", State: StateRunning, Since: boot}, {Name: "telemetry", State: StateRunning, Since: boot}}
	}
	HandleUnitCommands(session, t, boot)
	return &simUnit{session: session, telemetry: t}, nil
}

// run runs the unit's session and telemetry until ctx ends; up is called
// once, when the session first accepts messages.
func (u *simUnit) run(ctx context.Context, up func()) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); u.session.Run(ctx) }()
	go func() {
		defer wg.Done()
		select {
		case <-u.session.Ready():
		case <-ctx.Done():
			return
		}
		for !u.session.Connected() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		up()
		u.telemetry.Run(ctx)
	}()
	wg.Wait()
}
