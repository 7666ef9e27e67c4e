package agent

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/hal/modem"
	modemsim "github.com/outpost-cctv/outpost/hal/modem/sim"
	"github.com/outpost-cctv/outpost/hal/power"
	powersim "github.com/outpost-cctv/outpost/hal/power/sim"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

var tt0 = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

type sent struct {
	class    uplink.Priority
	topic    string
	payload  []byte
	retained bool
}

// fakeUplink records what telemetry sends. sendErr fails Send and
// SendRetained; pubErr fails SendRetained only.
type fakeUplink struct {
	mu      sync.Mutex
	sent    []sent
	sendErr error
	pubErr  error
}

func (f *fakeUplink) Send(ctx context.Context, class uplink.Priority, topic string, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sendErr != nil {
		return f.sendErr
	}
	f.sent = append(f.sent, sent{class, topic, append([]byte(nil), payload...), false})
	return nil
}

func (f *fakeUplink) SendRetained(ctx context.Context, class uplink.Priority, topic string, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pubErr != nil {
		return f.pubErr
	}
	if f.sendErr != nil {
		return f.sendErr
	}
	f.sent = append(f.sent, sent{class, topic, append([]byte(nil), payload...), true})
	return nil
}

// on returns the payloads sent on topic, and forgets everything sent.
func (f *fakeUplink) take(topic string) []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]any
	for _, s := range f.sent {
		if s.topic == topic {
			var v map[string]any
			if err := json.Unmarshal(s.payload, &v); err != nil {
				panic(err)
			}
			out = append(out, v)
		}
	}
	f.sent = nil
	return out
}

// fakePower returns whatever reading is set.
type fakePower struct {
	mu    sync.Mutex
	r     power.Reading
	err   error
	reads int
}

func (p *fakePower) Read(ctx context.Context) (power.Reading, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reads++
	return p.r, p.err
}

func (p *fakePower) set(f func(r *power.Reading)) {
	p.mu.Lock()
	f(&p.r)
	p.mu.Unlock()
}

type fakeModem struct{ s modem.Signal }

func (m fakeModem) Signal(ctx context.Context) (modem.Signal, error) { return m.s, nil }

func minute(every, max time.Duration) StreamTiming { return StreamTiming{every, max} }

func newTestTelemetry(up *fakeUplink, clk *clock.Fake, o TelemetryOptions) *Telemetry {
	o.Clock = clk
	o.Topics = wire.Topics{Prefix: "outpost", Unit: "u1"}
	if o.System == nil {
		o.System = func() SystemStats { return SystemStats{} }
	}
	t := NewTelemetry(quietLog(), up, o)
	for _, s := range t.streams {
		s.next = clk.Now()
	}
	return t
}

// TestDeadbandsAndMaxInterval: a quiet reading is published once, then
// only at the max interval; a move past a deadband, a value becoming
// unknown, or a changed word publishes at once.
func TestDeadbandsAndMaxInterval(t *testing.T) {
	clk := clock.NewFake(tt0)
	up := &fakeUplink{}
	pw := &fakePower{r: power.Reading{BatteryV: power.F(12.80), SOCPercent: power.F(80), PanelW: power.F(0), ChargeState: "off"}}
	tel := newTestTelemetry(up, clk, TelemetryOptions{Power: pw, Streams: Streams{Power: minute(time.Minute, 15*time.Minute)}})
	ctx := context.Background()
	step := func(d time.Duration) []map[string]any {
		clk.Advance(d)
		tel.tick(ctx, clk.Now(), false)
		return up.take("outpost/u1/telemetry/power")
	}
	if got := step(0); len(got) != 1 {
		t.Fatalf("first sample: %d published", len(got))
	}
	for i := 1; i < 15; i++ {
		pw.set(func(r *power.Reading) { *r.BatteryV = 12.80 + 0.04*float64(i%2) }) // within 0.05 V
		if got := step(time.Minute); len(got) != 0 {
			t.Fatalf("minute %d: published %v inside the deadband", i, got)
		}
	}
	if got := step(time.Minute); len(got) != 1 {
		t.Fatalf("max interval: %d published", len(got))
	}
	for _, tc := range []struct {
		name string
		f    func(r *power.Reading)
		want bool
	}{
		{"battery past its deadband", func(r *power.Reading) { r.BatteryV = power.F(12.90) }, true},
		{"no change", func(r *power.Reading) {}, false},
		{"panel within 5 W", func(r *power.Reading) { r.PanelW = power.F(4.9) }, false},
		{"panel past 5 W", func(r *power.Reading) { r.PanelW = power.F(10.2) }, true},
		{"state of charge unknown", func(r *power.Reading) { r.SOCPercent = nil }, true},
		{"still unknown", func(r *power.Reading) {}, false},
		{"charge state word", func(r *power.Reading) { r.ChargeState = "bulk" }, true},
	} {
		pw.set(tc.f)
		got := step(time.Minute)
		if (len(got) == 1) != tc.want {
			t.Fatalf("%s: published %d, want %v", tc.name, len(got), tc.want)
		}
		if tc.name == "state of charge unknown" {
			if v, ok := got[0]["soc_pct"]; !ok || v != nil {
				t.Fatalf("unknown state of charge published as %v (want null)", v)
			}
		}
	}
}

// TestDataPolicyStretchesIntervals: at 80 % of the budget streams are
// sampled four times less often (up to the max interval); at 100 %, only
// at the max interval.
func TestDataPolicyStretchesIntervals(t *testing.T) {
	for _, tc := range []struct {
		policy wire.DataPolicy
		reads  int // in an hour at 1 min / 15 min
	}{
		{wire.PolicyNormal, 61},
		{wire.PolicySaving, 16},
		{wire.PolicyExhausted, 5},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			clk := clock.NewFake(tt0)
			pw := &fakePower{r: power.Reading{BatteryV: power.F(12)}}
			tel := newTestTelemetry(&fakeUplink{}, clk, TelemetryOptions{Power: pw, Policy: func() wire.DataPolicy { return tc.policy },
				Streams: Streams{Power: minute(time.Minute, 15*time.Minute)}})
			for range 3601 {
				tel.tick(context.Background(), clk.Now(), false)
				clk.Advance(time.Second)
			}
			if pw.reads != tc.reads {
				t.Fatalf("%d reads in an hour, want %d", pw.reads, tc.reads)
			}
		})
	}
}

func TestStorageNullUntilProvided(t *testing.T) {
	clk := clock.NewFake(tt0)
	up := &fakeUplink{}
	var stats StorageStats
	ok := false
	tel := newTestTelemetry(up, clk, TelemetryOptions{
		Storage: func() (StorageStats, bool) { return stats, ok },
		Streams: Streams{Storage: minute(time.Minute, time.Hour)},
	})
	tel.tick(context.Background(), clk.Now(), false)
	got := up.take("outpost/u1/telemetry/storage")
	if len(got) != 1 {
		t.Fatal("nothing published")
	}
	for _, k := range []string{"disk_total_bytes", "disk_free_bytes", "footage_bytes", "held_bytes", "oldest_footage", "footage_days"} {
		if v, present := got[0][k]; !present || v != nil {
			t.Errorf("%s = %v, want null", k, v)
		}
	}
	stats, ok = StorageStats{DiskTotalBytes: 64 << 30, DiskFreeBytes: 10 << 30, FootageBytes: 50 << 30, OldestFootage: tt0.Add(-36 * time.Hour)}, true
	clk.Advance(time.Minute)
	tel.tick(context.Background(), clk.Now(), false)
	got = up.take("outpost/u1/telemetry/storage")
	if len(got) != 1 || got[0]["footage_days"] != 1.5 || got[0]["held_bytes"] != float64(0) || got[0]["disk_free_bytes"] != float64(10<<30) {
		t.Fatalf("with the store: %v", got)
	}
}

func TestReadFailurePublishesUnknown(t *testing.T) {
	clk := clock.NewFake(tt0)
	up := &fakeUplink{}
	pw := &fakePower{r: power.Reading{BatteryV: power.F(12)}}
	tel := newTestTelemetry(up, clk, TelemetryOptions{Power: pw, Streams: Streams{Power: minute(time.Minute, time.Hour)}})
	tel.tick(context.Background(), clk.Now(), false)
	up.take("outpost/u1/telemetry/power")
	pw.mu.Lock()
	pw.err = errors.New("ve.direct: no frame for 5s")
	pw.mu.Unlock()
	clk.Advance(time.Minute)
	tel.tick(context.Background(), clk.Now(), false)
	got := up.take("outpost/u1/telemetry/power")
	if len(got) != 1 || got[0]["battery_v"] != nil {
		t.Fatalf("after a failed read: %v (want battery_v null)", got)
	}
}

func TestRefreshAndAgentStarted(t *testing.T) {
	clk := clock.NewFake(tt0)
	up := &fakeUplink{}
	pw := &fakePower{r: power.Reading{BatteryV: power.F(12)}}
	tel := newTestTelemetry(up, clk, TelemetryOptions{Power: pw, Modem: fakeModem{modem.Signal{Registered: true, Operator: "EE", RSRPdBm: power.F(-91)}},
		Version: "v1.2.3", Streams: Streams{Power: minute(time.Minute, time.Hour), Signal: minute(time.Minute, time.Hour)}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tel.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "first samples", func() bool {
		up.mu.Lock()
		defer up.mu.Unlock()
		return len(up.sent) >= 3
	})
	up.mu.Lock()
	first := up.sent[0]
	up.mu.Unlock()
	var e wire.Event
	if json.Unmarshal(first.payload, &e) != nil || e.Kind != wire.KindAgentStarted || first.class != uplink.PriorityEvent || !strings.Contains(e.Message, "v1.2.3") {
		t.Fatalf("first message %s %s", first.topic, first.payload)
	}
	if tel.Operator() != "EE" {
		t.Errorf("operator %q", tel.Operator())
	}
	up.take("")
	tel.Refresh() // nothing moved, yet everything goes
	waitFor(t, "refreshed samples", func() bool {
		up.mu.Lock()
		defer up.mu.Unlock()
		return len(up.sent) >= 2
	})
}

func TestHealthOnChangeAndHourly(t *testing.T) {
	clk := clock.NewFake(tt0)
	up := &fakeUplink{}
	st := []Status{{Name: "camera", State: StateRunning, Since: tt0}}
	tel := newTestTelemetry(up, clk, TelemetryOptions{Health: func() []Status { return st }})
	var h healthState
	count := func() int {
		up.mu.Lock()
		defer up.mu.Unlock()
		n := 0
		for _, s := range up.sent {
			if strings.HasSuffix(s.topic, "/health") && s.retained {
				n++
			}
		}
		return n
	}
	tel.health(context.Background(), &h)
	tel.health(context.Background(), &h)
	if n := count(); n != 1 {
		t.Fatalf("%d health publishes, want 1", n)
	}
	st = []Status{{Name: "camera", State: StateRestarting, Since: tt0, Restarts: 1, LastError: "no frames"}}
	tel.health(context.Background(), &h)
	if n := count(); n != 2 {
		t.Fatalf("a change was not published: %d", n)
	}
	clk.Advance(time.Hour)
	tel.health(context.Background(), &h)
	if n := count(); n != 3 {
		t.Fatalf("not republished after an hour: %d", n)
	}
	up.pubErr = errors.New("outbox: full of higher-priority messages; message dropped")
	st = []Status{}
	tel.health(context.Background(), &h)
	up.pubErr = nil
	tel.health(context.Background(), &h) // retried
	if n := count(); n != 4 {
		t.Fatalf("a failed publish was not retried: %d", n)
	}
}

func TestReadSystem(t *testing.T) {
	full := fstest.MapFS{
		"sys/class/thermal/thermal_zone0/type": {Data: []byte("gpu-thermal\n")},
		"sys/class/thermal/thermal_zone0/temp": {Data: []byte("39000\n")},
		"sys/class/thermal/thermal_zone1/type": {Data: []byte("cpu-thermal\n")},
		"sys/class/thermal/thermal_zone1/temp": {Data: []byte("51540\n")},
		"proc/loadavg":                         {Data: []byte("0.52 0.58 0.59 1/467 12345\n")},
		"proc/meminfo":                         {Data: []byte("MemTotal:        3884620 kB\nMemFree:  1000 kB\nMemAvailable:    2662452 kB\n")},
		"proc/uptime":                          {Data: []byte("12345.67 23456.78\n")},
	}
	s := ReadSystem(full)
	if s.CPUTempC == nil || *s.CPUTempC != 51.54 {
		t.Errorf("cpu temp %v", s.CPUTempC)
	}
	if s.Load1 == nil || *s.Load1 != 0.52 || *s.Load15 != 0.59 {
		t.Errorf("load %v %v", s.Load1, s.Load15)
	}
	if s.MemTotalBytes == nil || *s.MemTotalBytes != 3884620*1024 || *s.MemAvailableBytes != 2662452*1024 {
		t.Errorf("memory %v %v", s.MemTotalBytes, s.MemAvailableBytes)
	}
	if s.Uptime == nil || *s.Uptime != 12345670*time.Millisecond {
		t.Errorf("uptime %v", s.Uptime)
	}
	// A board without thermal zones, and files full of garbage.
	bad := fstest.MapFS{
		"sys/class/thermal/thermal_zone0/temp": {Data: []byte("hot")},
		"proc/loadavg":                         {Data: []byte("x y")},
		"proc/meminfo":                         {Data: []byte("MemTotal: lots\n")},
		"proc/uptime":                          {Data: []byte("-5")},
	}
	for name, fsys := range map[string]fstest.MapFS{"empty": {}, "garbage": bad} {
		s := ReadSystem(fsys)
		if s.CPUTempC != nil || s.Load1 != nil || s.MemTotalBytes != nil || s.Uptime != nil {
			t.Errorf("%s: %+v (want everything unknown)", name, s)
		}
	}
}

// dayOfTelemetry runs the default telemetry of a quiet unit (simulated
// battery, panel and modem) for 24 simulated hours and returns what it
// sent, in order.
func dayOfTelemetry(tb testing.TB) []sent {
	tb.Helper()
	cfg := config.Default()
	clk := clock.NewFake(tt0)
	pw, err := powersim.New(powersim.Config{CapacityWh: 1200, PanelPeakW: 100, LoadW: 8, InitialSOC: 80, TimeScale: 1}, clk)
	if err != nil {
		tb.Fatal(err)
	}
	md, err := modemsim.New(modemsim.Config{RSRPdBm: -95, RSRQdB: -11, SINRdB: 8, Seed: 1}, clk)
	if err != nil {
		tb.Fatal(err)
	}
	up := &fakeUplink{}
	stream := func(s config.Stream) StreamTiming { return StreamTiming{s.Interval.D(), s.MaxInterval.D()} }
	var upBytes int64
	tel := newTestTelemetry(up, clk, TelemetryOptions{
		Topics: wire.Topics{Prefix: cfg.Uplink.TopicPrefix, Unit: cfg.Unit.ID}, Power: pw, Modem: md,
		System: func() SystemStats {
			temp, load, total, avail := 48.0, 0.4, int64(1<<30), int64(600<<20)
			return SystemStats{CPUTempC: &temp, Load1: &load, Load5: &load, Load15: &load, MemTotalBytes: &total, MemAvailableBytes: &avail}
		},
		Storage: func() (StorageStats, bool) {
			return StorageStats{DiskTotalBytes: 64 << 30, DiskFreeBytes: 6 << 30, FootageBytes: 50 << 30, OldestFootage: clk.Now().Add(-28 * 24 * time.Hour)}, true
		},
		Link: func() wire.Link {
			b := int64(cfg.Uplink.MonthlyBudget)
			used := float64(upBytes) * 100 / float64(b)
			return wire.Link{Connected: true, DataUpTodayBytes: upBytes, DataBudgetBytes: &b, DataBudgetUsedPct: &used, DataPolicy: wire.PolicyNormal}
		},
		Health: func() []Status {
			return []Status{{Name: "uplink", State: StateRunning, Since: tt0}, {Name: "camera", State: StateRunning, Since: tt0},
				{Name: "recorder", State: StateRunning, Since: tt0}, {Name: "telemetry", State: StateRunning, Since: tt0}}
		},
		Streams: Streams{Power: stream(cfg.Telemetry.Power), Signal: stream(cfg.Telemetry.Signal), System: stream(cfg.Telemetry.System),
			Storage: stream(cfg.Telemetry.Storage), Link: stream(cfg.Telemetry.Link)},
	})
	tel.o.Topics = wire.Topics{Prefix: cfg.Uplink.TopicPrefix, Unit: cfg.Unit.ID}
	tel.topics = tel.o.Topics
	var out []sent
	var h healthState
	ctx := context.Background()
	for range 24 * 3600 {
		tel.tick(ctx, clk.Now(), false)
		tel.health(ctx, &h)
		up.mu.Lock()
		for _, s := range up.sent {
			upBytes += int64(len(s.payload))
		}
		out = append(out, up.sent...)
		up.sent = nil
		up.mu.Unlock()
		clk.Advance(time.Second)
	}
	return out
}

// mqttPublishBytes is what a QoS 1 PUBLISH and its PUBACK cost: fixed
// header, remaining length, topic, packet id and payload; PUBACK 4 bytes.
func mqttPublishBytes(topic string, payload int) int {
	rem := 2 + len(topic) + 2 + payload
	varint := 1
	for n := rem; n > 127; n >>= 7 {
		varint++
	}
	return 1 + varint + rem + 4
}

// dayCost sums a day of messages: payload bytes, MQTT bytes (with keep-
// alive pings in the gaps longer than the keep-alive), and packets.
type dayCost struct {
	messages, payload, mqtt, packets int
}

func costOf(msgs []sent, at func(i int) time.Time, keepalive time.Duration) dayCost {
	var c dayCost
	last := tt0
	for i, m := range msgs {
		c.messages++
		c.payload += len(m.payload)
		c.mqtt += mqttPublishBytes(m.topic, len(m.payload))
		c.packets += 2
		if gap := at(i).Sub(last); gap > keepalive {
			pings := int(gap / keepalive)
			c.mqtt += 4 * pings
			c.packets += 2 * pings
		}
		last = at(i)
	}
	if gap := tt0.Add(24 * time.Hour).Sub(last); gap > keepalive {
		pings := int(gap / keepalive)
		c.mqtt += 4 * pings
		c.packets += 2 * pings
	}
	return c
}

func sentAt(msgs []sent) func(int) time.Time {
	return func(i int) time.Time {
		var h wire.Header
		json.Unmarshal(msgs[i].payload, &h)
		return h.TS
	}
}

// naiveDay is 1 KB of JSON every minute on one topic.
func naiveDay() []sent {
	var out []sent
	payload := []byte(`{"ts":"2026-11-25T00:00:00Z","pad":"` + strings.Repeat("x", 1024-39) + `"}`)
	for range 1440 {
		out = append(out, sent{uplink.PriorityTelemetry, "outpost/outpost-unit/telemetry", payload, false})
	}
	return out
}

// TestTelemetryDataPerDay holds the goal of the uplink issue: at the
// default settings, power and signal at one-minute resolution cost at most
// 0.5 MB a day (payload and MQTT), against about 1.4 MB for a naive 1 KB
// of JSON every minute.
func TestTelemetryDataPerDay(t *testing.T) {
	msgs := dayOfTelemetry(t)
	ka := config.Default().Uplink.KeepAlive.D()
	all := costOf(msgs, sentAt(msgs), ka)
	var ps []sent
	for _, m := range msgs {
		if strings.HasSuffix(m.topic, "/power") || strings.HasSuffix(m.topic, "/signal") {
			ps = append(ps, m)
		}
	}
	powerSignal := costOf(ps, sentAt(ps), ka)
	naive := costOf(naiveDay(), func(i int) time.Time { return tt0.Add(time.Duration(i) * time.Minute) }, ka)
	t.Logf("a day of telemetry: %d messages, %d payload bytes, %d with MQTT (power and signal: %d); naive: %d", all.messages, all.payload, all.mqtt, powerSignal.mqtt, naive.mqtt)
	if powerSignal.mqtt > 500_000 {
		t.Errorf("power and signal cost %d bytes a day; the goal is 500000", powerSignal.mqtt)
	}
	if all.mqtt > 500_000 {
		t.Errorf("all streams cost %d bytes a day; the goal is 500000", all.mqtt)
	}
	byTopic := map[string]int{}
	for _, m := range msgs {
		byTopic[m.topic[strings.LastIndex(m.topic, "/")+1:]]++
	}
	t.Logf("messages a day by stream: %v", byTopic)
	for _, s := range []string{"power", "signal", "system", "storage", "link"} {
		if byTopic[s] < 24 {
			t.Errorf("%s: %d messages in a day, fewer than its max interval allows", s, byTopic[s])
		}
	}
}

// BenchmarkTelemetryBytesPerDay reports a simulated day of the default
// telemetry against a naive 1 KB JSON every minute, in bytes per day:
// payload, payload with MQTT framing and keep-alives, and with an estimate
// of TLS records (29 bytes a packet) and TCP/IP headers (40 bytes a
// packet) on top.
func BenchmarkTelemetryBytesPerDay(b *testing.B) {
	ka := config.Default().Uplink.KeepAlive.D()
	var ours, naive dayCost
	for b.Loop() {
		msgs := dayOfTelemetry(b)
		ours = costOf(msgs, sentAt(msgs), ka)
		naive = costOf(naiveDay(), func(i int) time.Time { return tt0.Add(time.Duration(i) * time.Minute) }, ka)
	}
	wire := func(c dayCost) float64 { return float64(c.mqtt + c.packets*(29+40)) }
	b.ReportMetric(float64(ours.messages), "msgs/day")
	b.ReportMetric(float64(ours.payload), "payload-B/day")
	b.ReportMetric(float64(ours.mqtt), "mqtt-B/day")
	b.ReportMetric(wire(ours), "wire-B/day")
	b.ReportMetric(float64(naive.mqtt), "naive-mqtt-B/day")
	b.ReportMetric(wire(naive), "naive-wire-B/day")
	b.ReportMetric(float64(naive.mqtt)/float64(ours.mqtt), "x-smaller")
}
