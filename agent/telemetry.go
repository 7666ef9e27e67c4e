package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"time"

	"github.com/outpost-cctv/outpost/hal/modem"
	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// Publisher is what telemetry needs of the uplink.
type Publisher interface {
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
}

// Telemetry samples the power system and the modem every interval and
// publishes their readings, and republishes the components' health when it
// changes.
type Telemetry struct {
	log    *slog.Logger
	clk    clock.Clock
	pub    Publisher
	topics wire.Topics
	power  power.Sensor
	modem  modem.Modem
	health func() []Status

	powerEvery, signalEvery time.Duration
}

// TelemetryOptions configures Telemetry.
type TelemetryOptions struct {
	Clock                   clock.Clock
	Topics                  wire.Topics
	Power                   power.Sensor
	Modem                   modem.Modem
	Health                  func() []Status
	PowerEvery, SignalEvery time.Duration
}

// NewTelemetry returns the telemetry component.
func NewTelemetry(log *slog.Logger, pub Publisher, o TelemetryOptions) *Telemetry {
	return &Telemetry{
		log: log.With("component", "telemetry"), clk: o.Clock, pub: pub, topics: o.Topics,
		power: o.Power, modem: o.Modem, health: o.Health,
		powerEvery: o.PowerEvery, signalEvery: o.SignalEvery,
	}
}

// Name implements Component.
func (t *Telemetry) Name() string { return "telemetry" }

// Run implements Component.
func (t *Telemetry) Run(ctx context.Context) error {
	pt := t.clk.NewTicker(t.powerEvery)
	defer pt.Stop()
	st := t.clk.NewTicker(t.signalEvery)
	defer st.Stop()
	ht := t.clk.NewTicker(time.Second)
	defer ht.Stop()
	t.publishPower(ctx)
	t.publishSignal(ctx)
	var lastHealth []wire.ComponentHealth
	healthDue := true
	for {
		if t.health != nil {
			h := t.healthNow()
			if healthDue || !reflect.DeepEqual(stripSince(h), stripSince(lastHealth)) {
				if t.publish(ctx, t.topics.Health(), true, wire.Health{Header: wire.NewHeader(t.clk.Now()), Components: h}) {
					lastHealth, healthDue = h, false
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-pt.C():
			t.publishPower(ctx)
		case <-st.C():
			t.publishSignal(ctx)
		case <-ht.C():
		}
	}
}

func (t *Telemetry) healthNow() []wire.ComponentHealth {
	var out []wire.ComponentHealth
	for _, s := range t.health() {
		out = append(out, wire.ComponentHealth{Name: s.Name, State: string(s.State), Since: s.Since.UTC(), Restarts: s.Restarts, LastError: s.LastError})
	}
	return out
}

func stripSince(h []wire.ComponentHealth) []wire.ComponentHealth {
	out := make([]wire.ComponentHealth, len(h))
	for i, c := range h {
		c.Since = time.Time{}
		out[i] = c
	}
	return out
}

func (t *Telemetry) publishPower(ctx context.Context) {
	r, err := t.power.Read(ctx)
	if err != nil {
		t.log.Warn("power reading failed", "err", err)
		return
	}
	t.publish(ctx, t.topics.Telemetry("power"), false, wire.Power{
		Header: wire.NewHeader(r.Time), BatteryV: round(r.BatteryV, 2), BatteryA: round(r.BatteryA, 2),
		SOCPct: round(r.SOCPercent, 1), PanelV: round(r.PanelV, 2), PanelW: round(r.PanelW, 1),
		LoadW: round(r.LoadW, 1), ChargeState: r.ChargeState, YieldTodayWh: round(r.YieldTodayWh, 0),
	})
}

func (t *Telemetry) publishSignal(ctx context.Context) {
	s, err := t.modem.Signal(ctx)
	if err != nil {
		t.log.Warn("modem reading failed", "err", err)
		return
	}
	t.publish(ctx, t.topics.Telemetry("signal"), false, wire.Signal{
		Header: wire.NewHeader(s.Time), Registered: s.Registered, Operator: s.Operator, Tech: s.Tech,
		RSRPdBm: round(s.RSRPdBm, 0), RSRQdB: round(s.RSRQdB, 0), SINRdB: round(s.SINRdB, 0), Quality: s.Quality(),
	})
}

func (t *Telemetry) publish(ctx context.Context, topic string, retained bool, v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		t.log.Error("encoding telemetry", "topic", topic, "err", err)
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := t.pub.Publish(pctx, topic, 1, retained, b); err != nil {
		t.log.Debug("telemetry not published", "topic", topic, "err", err)
		return false
	}
	return true
}

// round keeps telemetry short on a metered link: 12.8 V, not 12.8034 V.
func round(v *float64, places int) *float64 {
	if v == nil {
		return nil
	}
	p := 1.0
	for range places {
		p *= 10
	}
	r := float64(int64(*v*p+copysign(0.5, *v))) / p
	return &r
}

func copysign(a, b float64) float64 {
	if b < 0 {
		return -a
	}
	return a
}
