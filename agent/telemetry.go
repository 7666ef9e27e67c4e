package agent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"os"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/hal/modem"
	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// Uplink is what telemetry needs of the uplink session: the durable path,
// for samples and events, and for the retained health.
type Uplink interface {
	Send(ctx context.Context, class uplink.Priority, topic string, payload []byte) error
	SendRetained(ctx context.Context, class uplink.Priority, topic string, payload []byte) error
}

var _ Uplink = (*uplink.Session)(nil)

// StreamTiming is when a telemetry stream is sampled and published: a
// sample every Interval, published when a value moved by more than its
// deadband, and at least every MaxInterval.
type StreamTiming struct {
	Interval, MaxInterval time.Duration
}

// Streams holds the timing of every stream.
type Streams struct {
	Power, Signal, System, Storage, Link StreamTiming
}

// StorageStats is the footage store's disk, for telemetry/storage.
type StorageStats struct {
	DiskTotalBytes, DiskFreeBytes int64
	FootageBytes                  int64
	// HeldBytes is the footage under evidence holds.
	HeldBytes int64
	// OldestFootage is the time of the oldest frame kept; zero when none.
	OldestFootage time.Time
	// ProjectedRetentionDays is the days of footage the disk holds at the
	// current write rate; 0 when not yet known.
	ProjectedRetentionDays float64
	// RetentionDays is the retention in force (retention.max_age).
	RetentionDays float64
}

// TelemetryOptions configures Telemetry.
type TelemetryOptions struct {
	Clock  clock.Clock
	Topics wire.Topics
	Power  power.Sensor
	Modem  modem.Modem
	Health func() []Status
	// Storage reports the footage store; until it is given (nil, or
	// false) telemetry/storage carries nulls.
	Storage func() (StorageStats, bool)
	// System reads the board (default ReadSystem(os.DirFS("/"))).
	System func() SystemStats
	// Link reports the uplink (the session's Link); nil leaves
	// telemetry/link out.
	Link func() wire.Link
	// Policy is the data budget's policy (the session's DataPolicy); nil
	// is always normal.
	Policy func() wire.DataPolicy
	// Boot is when the agent started (default: when NewTelemetry ran) and
	// Version its version, for agent_started and agent_uptime_s.
	Boot    time.Time
	Version string
	Streams Streams
	// OnPower, when set, is given every power reading (the power policy
	// follows the battery through it).
	OnPower func(power.Reading, error)
	// Faults and PowerMode, when set, go into the health topic.
	Faults    func() []wire.Fault
	PowerMode func() string
}

// Deadbands: a sample is published before its stream's max interval only
// when a value moved by more than this from the last published one (or a
// value became known or unknown, or a word changed). A negative deadband
// never triggers. docs/protocol.md lists them.
func powerBands() []float64 {
	// battery_v, battery_a, soc_pct, panel_v, panel_w, load_w, yield_today_wh
	return []float64{0.05, 0.5, 1, 1, 5, 1, -1}
}

// rsrp_dbm, rsrq_db, sinr_db, rssi_dbm: wider than the minute-to-minute fading of a
// unit standing still, which is noise to the control room.
func signalBands() []float64 { return []float64{5, 3, 5, 5} }

func systemBands() []float64 {
	// cpu_temp_c, load_1m, load_5m, load_15m, mem_total_bytes, mem_available_bytes, uptime_s
	return []float64{3, 0.5, -1, -1, -1, 32 << 20, -1}
}

func storageBands() []float64 {
	// disk_total_bytes, disk_free_bytes, footage_bytes, held_bytes, footage_days
	return []float64{-1, 256 << 20, -1, 0, 0.5}
}

func linkBands() []float64 {
	// data_budget_used_pct, outbox_dropped_{alert,event,telemetry}, reconnects,
	// watchdog_trips, data_{up,down}_today_bytes, outbox_queued
	return []float64{1, 0, 0, 0, 0, 0, -1, -1, -1}
}

// Telemetry samples the power system, the modem, the board, the footage
// store and the link, and publishes each stream through the outbox when a
// value moved past its deadband or its max interval is up. It republishes
// the components' health (retained) when it changes, and hourly.
type Telemetry struct {
	log     *slog.Logger
	clk     clock.Clock
	up      Uplink
	topics  wire.Topics
	o       TelemetryOptions
	streams []*stream
	refresh chan struct{}

	mu       sync.Mutex
	operator string
	started  bool
	retime   *Streams // new timings, taken at the next tick
	// The newest readings, for the fault detectors.
	lastPower    power.Reading
	lastPowerErr error
	lastSignal   modem.Signal
	lastSigErr   error
	havePower    bool
	haveSignal   bool
}

// LastPower returns the newest power reading and its error; the error is
// ErrNoReading before the first.
func (t *Telemetry) LastPower() (power.Reading, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.havePower {
		return power.Reading{}, ErrNoReading
	}
	return t.lastPower, t.lastPowerErr
}

// LastSignal returns the newest modem reading and its error.
func (t *Telemetry) LastSignal() (modem.Signal, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.haveSignal {
		return modem.Signal{}, ErrNoReading
	}
	return t.lastSignal, t.lastSigErr
}

// ErrNoReading: no reading has been taken yet.
var ErrNoReading = errors.New("no reading yet")

// stream is one telemetry stream's state.
type stream struct {
	name   string
	timing StreamTiming
	bands  []float64
	read   func(ctx context.Context, now time.Time) sample
	failed bool // the last read failed (logged once per streak)

	next   time.Time
	last   *sample
	lastAt time.Time
}

// sample is one reading: the payload to publish, its numbers (compared
// with the deadbands) and its words (any change publishes).
type sample struct {
	payload any
	nums    []*float64
	words   string
}

// NewTelemetry returns the telemetry component.
func NewTelemetry(log *slog.Logger, up Uplink, o TelemetryOptions) *Telemetry {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Boot.IsZero() {
		o.Boot = o.Clock.Now()
	}
	if o.System == nil {
		root := os.DirFS("/")
		o.System = func() SystemStats { return ReadSystem(root) }
	}
	t := &Telemetry{
		log: log.With("component", "telemetry"), clk: o.Clock, up: up, topics: o.Topics, o: o,
		refresh: make(chan struct{}, 1),
	}
	add := func(name string, timing StreamTiming, bands []float64, read func(context.Context, time.Time) sample) {
		if timing.Interval <= 0 {
			return
		}
		if timing.MaxInterval < timing.Interval {
			timing.MaxInterval = timing.Interval
		}
		t.streams = append(t.streams, &stream{name: name, timing: timing, bands: bands, read: read})
	}
	if o.Power != nil {
		add(wire.StreamPower, o.Streams.Power, powerBands(), t.readPower)
	}
	if o.Modem != nil {
		add(wire.StreamSignal, o.Streams.Signal, signalBands(), t.readSignal)
	}
	add(wire.StreamSystem, o.Streams.System, systemBands(), t.readSystem)
	add(wire.StreamStorage, o.Streams.Storage, storageBands(), t.readStorage)
	if o.Link != nil {
		add(wire.StreamLink, o.Streams.Link, linkBands(), t.readLink)
	}
	return t
}

// Name implements Component.
func (t *Telemetry) Name() string { return "telemetry" }

// Operator is the cellular network of the last signal reading, for the
// status topic.
func (t *Telemetry) Operator() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.operator
}

// Refresh asks for every stream to be sampled and published at once,
// whatever its deadband.
func (t *Telemetry) Refresh() {
	select {
	case t.refresh <- struct{}{}:
	default:
	}
}

// Run implements Component.
func (t *Telemetry) Run(ctx context.Context) error {
	t.mu.Lock()
	first := !t.started
	t.started = true
	t.mu.Unlock()
	if first {
		e := wire.NewEvent(t.clk.Now(), wire.KindAgentStarted, wire.SeverityInfo, "agent "+t.o.Version+" started")
		e.Data = map[string]any{"version": t.o.Version, "boot": t.o.Boot.UTC()}
		t.send(ctx, uplink.PriorityEvent, t.topics.Events(), e)
	}
	now := t.clk.Now()
	for _, s := range t.streams {
		s.next = now
	}
	tick := t.clk.NewTicker(time.Second)
	defer tick.Stop()
	h := healthState{}
	force := false
	for {
		t.tick(ctx, t.clk.Now(), force)
		t.health(ctx, &h)
		force = false
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C():
		case <-t.refresh:
			force = true
		}
	}
}

// effective is a stream's sample interval under the data policy.
func effective(s StreamTiming, p wire.DataPolicy) time.Duration {
	switch p {
	case wire.PolicySaving:
		return min(4*s.Interval, s.MaxInterval)
	case wire.PolicyExhausted:
		return s.MaxInterval
	}
	return s.Interval
}

// Retime changes the streams' timing in place, from the next tick on: a
// configuration change of telemetry intervals needs no restart.
func (t *Telemetry) Retime(s Streams) {
	t.mu.Lock()
	t.retime = &s
	t.mu.Unlock()
}

func (t *Telemetry) takeRetime(now time.Time) {
	t.mu.Lock()
	rt := t.retime
	t.retime = nil
	t.mu.Unlock()
	if rt == nil {
		return
	}
	byName := map[string]StreamTiming{
		wire.StreamPower: rt.Power, wire.StreamSignal: rt.Signal, wire.StreamSystem: rt.System,
		wire.StreamStorage: rt.Storage, wire.StreamLink: rt.Link,
	}
	for _, s := range t.streams {
		if nt, ok := byName[s.name]; ok {
			s.timing = nt
			if at := now.Add(nt.Interval); at.Before(s.next) {
				s.next = at
			}
		}
	}
}

// tickSlack is how early a tick may come and still count as due.
const tickSlack = 500 * time.Millisecond

// tick samples the streams that are due and publishes what moved.
func (t *Telemetry) tick(ctx context.Context, now time.Time, force bool) {
	t.takeRetime(now)
	policy := wire.PolicyNormal
	if t.o.Policy != nil {
		policy = t.o.Policy()
	}
	for _, s := range t.streams {
		if !force && now.Before(s.next.Add(-tickSlack)) {
			continue
		}
		s.next = now.Add(effective(s.timing, policy))
		smp := s.read(ctx, now)
		// Ticks come a second apart, give or take the scheduler: half a
		// tick of slack keeps a 1 s max interval from becoming 2 s.
		if !force && s.last != nil && now.Sub(s.lastAt) < s.timing.MaxInterval-tickSlack && !moved(s.last, &smp, s.bands) {
			continue
		}
		if t.send(ctx, uplink.PriorityTelemetry, t.topics.Telemetry(s.name), smp.payload) {
			s.last, s.lastAt = &smp, now
		}
	}
}

// moved reports whether cur differs from prev by more than the deadbands.
func moved(prev, cur *sample, bands []float64) bool {
	if prev.words != cur.words || len(prev.nums) != len(cur.nums) {
		return true
	}
	for i, a := range prev.nums {
		b := cur.nums[i]
		band := -1.0
		if i < len(bands) {
			band = bands[i]
		}
		if band < 0 {
			continue
		}
		if (a == nil) != (b == nil) {
			return true
		}
		if a != nil && math.Abs(*a-*b) > band {
			return true
		}
	}
	return false
}

// send hands a payload to the outbox, retained, so that the control room's
// fleet view shows each unit's last sample the moment it subscribes; it
// reports whether it was taken.
func (t *Telemetry) send(ctx context.Context, class uplink.Priority, topic string, v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		t.log.Error("encoding telemetry", "topic", topic, "err", err)
		return false
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := t.up.SendRetained(sctx, class, topic, b); err != nil {
		t.log.Debug("telemetry not sent", "topic", topic, "err", err)
		return false
	}
	return true
}

func (t *Telemetry) readFailed(s string, err error) {
	for _, st := range t.streams {
		if st.name == s {
			switch {
			case err != nil && !st.failed:
				t.log.Warn("reading failed; publishing unknown values until it recovers", "stream", s, "err", err)
			case err == nil && st.failed:
				t.log.Info("reading recovered", "stream", s)
			}
			st.failed = err != nil
			return
		}
	}
}

func (t *Telemetry) readPower(ctx context.Context, now time.Time) sample {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := t.o.Power.Read(rctx)
	t.readFailed(wire.StreamPower, err)
	t.mu.Lock()
	t.lastPower, t.lastPowerErr, t.havePower = r, err, true
	t.mu.Unlock()
	if t.o.OnPower != nil {
		t.o.OnPower(r, err)
	}
	if err != nil {
		r = power.Reading{Time: now}
	}
	if r.Time.IsZero() {
		r.Time = now
	}
	p := wire.Power{
		Header: wire.NewSampleHeader(r.Time), BatteryV: round(r.BatteryV, 2), BatteryA: round(r.BatteryA, 2),
		SOCPct: round(r.SOCPercent, 1), PanelV: round(r.PanelV, 1), PanelW: round(r.PanelW, 1),
		LoadW: round(r.LoadW, 1), ChargeState: r.ChargeState, YieldTodayWh: round(r.YieldTodayWh, 0),
	}
	return sample{payload: p, words: p.ChargeState,
		nums: []*float64{p.BatteryV, p.BatteryA, p.SOCPct, p.PanelV, p.PanelW, p.LoadW, p.YieldTodayWh}}
}

func (t *Telemetry) readSignal(ctx context.Context, now time.Time) sample {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := t.o.Modem.Signal(rctx)
	t.readFailed(wire.StreamSignal, err)
	t.mu.Lock()
	t.lastSignal, t.lastSigErr, t.haveSignal = s, err, true
	t.mu.Unlock()
	quality := s.Quality()
	if err != nil {
		s, quality = modem.Signal{Time: now}, "unknown"
	}
	if s.Time.IsZero() {
		s.Time = now
	}
	t.mu.Lock()
	t.operator = s.Operator
	t.mu.Unlock()
	p := wire.Signal{
		Header: wire.NewSampleHeader(s.Time), Registered: s.Registered, Operator: s.Operator, Tech: s.Tech,
		RSRPdBm: round(s.RSRPdBm, 0), RSRQdB: round(s.RSRQdB, 0), SINRdB: round(s.SINRdB, 0), RSSIdBm: round(s.RSSIdBm, 0),
		CellID: s.CellID, Band: s.Band, Quality: quality,
	}
	// A new serving cell is published at once: the unit was moved, or the
	// network moved it.
	return sample{payload: p, words: strconv.FormatBool(p.Registered) + "|" + p.Operator + "|" + p.Tech + "|" + p.Quality + "|" + p.CellID,
		nums: []*float64{p.RSRPdBm, p.RSRQdB, p.SINRdB, p.RSSIdBm}}
}

func (t *Telemetry) readSystem(_ context.Context, now time.Time) sample {
	st := t.o.System()
	p := wire.System{
		Header: wire.NewSampleHeader(now), CPUTempC: round(st.CPUTempC, 1),
		Load1: round(st.Load1, 2), Load5: round(st.Load5, 2), Load15: round(st.Load15, 2),
		MemTotalBytes: st.MemTotalBytes, MemAvailableBytes: st.MemAvailableBytes,
		AgentUptimeS: int64(now.Sub(t.o.Boot) / time.Second),
	}
	if st.Uptime != nil {
		u := int64(*st.Uptime / time.Second)
		p.UptimeS = &u
	}
	return sample{payload: p, nums: []*float64{p.CPUTempC, p.Load1, p.Load5, p.Load15, i2f(p.MemTotalBytes), i2f(p.MemAvailableBytes), i2f(p.UptimeS)}}
}

func (t *Telemetry) readStorage(_ context.Context, now time.Time) sample {
	p := wire.Storage{Header: wire.NewSampleHeader(now)}
	if t.o.Storage != nil {
		if st, ok := t.o.Storage(); ok {
			p.DiskTotalBytes, p.DiskFreeBytes = &st.DiskTotalBytes, &st.DiskFreeBytes
			p.FootageBytes, p.HeldBytes = &st.FootageBytes, &st.HeldBytes
			if !st.OldestFootage.IsZero() {
				o := st.OldestFootage.UTC().Truncate(time.Second)
				days := now.Sub(o).Hours() / 24
				p.OldestFootage, p.FootageDays = &o, round(&days, 1)
			}
			if st.ProjectedRetentionDays > 0 {
				p.ProjectedRetentionDays = round(&st.ProjectedRetentionDays, 1)
			}
			if st.RetentionDays > 0 {
				p.RetentionDays = round(&st.RetentionDays, 2)
			}
		}
	}
	return sample{payload: p, nums: []*float64{i2f(p.DiskTotalBytes), i2f(p.DiskFreeBytes), i2f(p.FootageBytes), i2f(p.HeldBytes), p.FootageDays, p.ProjectedRetentionDays}}
}

func (t *Telemetry) readLink(_ context.Context, now time.Time) sample {
	l := t.o.Link()
	l.Header = wire.NewSampleHeader(now)
	f := func(v uint64) *float64 { x := float64(v); return &x }
	return sample{payload: l, words: strconv.FormatBool(l.Connected) + "|" + string(l.DataPolicy) + "|" + l.OutboxError,
		nums: []*float64{round(l.DataBudgetUsedPct, 0), f(l.OutboxDroppedAlert), f(l.OutboxDroppedEvent), f(l.OutboxDroppedTelemetry),
			f(l.Reconnects), f(l.WatchdogTrips), i2f(&l.DataUpTodayBytes), i2f(&l.DataDownTodayBytes), f(uint64(l.OutboxQueued))}}
}

func i2f(v *int64) *float64 {
	if v == nil {
		return nil
	}
	f := float64(*v)
	return &f
}

// healthState is what was last published on the health topic.
type healthState struct {
	last   []wire.ComponentHealth
	at     time.Time
	sent   bool
	mode   string
	faults []wire.Fault
}

// health republishes the retained health when a component's state changed,
// and hourly. It goes through the outbox with the telemetry, in order: a
// fault raised and cleared while the link was down is still told, and the
// broker keeps the latest state. A refused send is retried at the next
// tick.
func (t *Telemetry) health(ctx context.Context, h *healthState) {
	if t.o.Health == nil {
		return
	}
	now := t.clk.Now()
	cur := t.healthNow()
	faults := []wire.Fault{}
	if t.o.Faults != nil {
		faults = t.o.Faults()
	}
	mode := ""
	if t.o.PowerMode != nil {
		mode = t.o.PowerMode()
	}
	same := reflect.DeepEqual(stripSince(cur), stripSince(h.last)) && mode == h.mode && sameFaults(faults, h.faults)
	if h.sent && now.Sub(h.at) < time.Hour && same {
		return
	}
	b, err := json.Marshal(wire.Health{Header: wire.NewHeader(now), Components: cur, PowerMode: mode, Faults: faults})
	if err != nil {
		t.log.Error("encoding health", "err", err)
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := t.up.SendRetained(sctx, uplink.PriorityTelemetry, t.topics.Health(), b); err != nil {
		t.log.Debug("health not sent", "err", err)
		return
	}
	h.last, h.at, h.sent, h.mode, h.faults = cur, now, true, mode, faults
}

// sameFaults compares fault sets by kind, severity and message: figures in
// a message (the days of retention left) republish the health only when
// they change in words.
func sameFaults(a, b []wire.Fault) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Kind != b[i].Kind || a[i].Severity != b[i].Severity || a[i].Message != b[i].Message {
			return false
		}
	}
	return true
}

func (t *Telemetry) healthNow() []wire.ComponentHealth {
	var out []wire.ComponentHealth
	for _, s := range t.o.Health() {
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

// round keeps telemetry short on a metered link: 12.8 V, not 12.8034 V.
func round(v *float64, places int) *float64 {
	if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
		return nil
	}
	p := math.Pow(10, float64(places))
	r := math.Round(*v*p) / p
	return &r
}

// CommandHandler is what HandleUnitCommands needs of the uplink.
type CommandHandler interface {
	Handle(name string, h uplink.Handler)
}

// HandleUnitCommands registers the unit's own commands:
//
//   - ping: answers with the agent's version, boot time and uptime (a
//     round trip check from the control room);
//   - telemetry: samples and publishes every stream now, whatever the
//     deadbands (for a field engineer checking a fresh installation).
func HandleUnitCommands(h CommandHandler, t *Telemetry, boot time.Time) {
	h.Handle("ping", func(ctx context.Context, req uplink.Request) (any, error) {
		if err := req.DecodeArgs(&struct{}{}); err != nil {
			return nil, err
		}
		return map[string]any{
			"version": t.o.Version, "boot": boot.UTC().Truncate(time.Millisecond),
			"uptime_s": int64(t.clk.Now().Sub(boot) / time.Second),
		}, nil
	})
	h.Handle("telemetry", func(ctx context.Context, req uplink.Request) (any, error) {
		if err := req.DecodeArgs(&struct{}{}); err != nil {
			return nil, err
		}
		t.Refresh()
		names := make([]string, 0, len(t.streams))
		for _, s := range t.streams {
			names = append(names, s.name)
		}
		return map[string]any{"streams": names}, nil
	})
}
