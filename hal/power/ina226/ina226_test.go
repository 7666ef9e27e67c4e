package ina226

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/outpost-cctv/outpost/internal/clock"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func show(p *float64) string {
	if p == nil {
		return "nil"
	}
	return strconv.FormatFloat(*p, 'f', 3, 64)
}

func rd(reg byte, hi, lo byte) i2ctest.IO {
	return i2ctest.IO{Addr: 0x40, W: []byte{reg}, R: []byte{hi, lo}}
}

// The operations of a Read with the default configuration on a 0.1 Ω
// shunt: 16 averages of 1.1 ms (0x4527), calibration 2048 (25 µA steps).
var (
	manufTIOp   = rd(0xFE, 0x54, 0x49)
	die226Op    = rd(0xFF, 0x22, 0x60)
	writeConfig = i2ctest.IO{Addr: 0x40, W: []byte{0x00, 0x45, 0x27}}
	writeCal    = i2ctest.IO{Addr: 0x40, W: []byte{0x05, 0x08, 0x00}}
	readCal     = rd(0x05, 0x08, 0x00)
	lostCal     = rd(0x05, 0x00, 0x00)
	maskReady   = rd(0x06, 0x00, 0x08)
	maskIdle    = rd(0x06, 0x00, 0x00)
	maskOVF     = rd(0x06, 0x00, 0x0C)
	// 20000 × 2.5 µV = 50 mV: 0.5 A through 0.1 Ω, and back.
	shuntPlus  = rd(0x01, 0x4E, 0x20)
	shuntMinus = rd(0x01, 0xB1, 0xE0)
	shuntMax   = rd(0x01, 0x7F, 0xFF)
	// 10240 × 1.25 mV = 12.8 V.
	bus12V8 = rd(0x02, 0x28, 0x00)
	// 20000 × 25 µA = 0.5 A, and back.
	currentPlus  = rd(0x04, 0x4E, 0x20)
	currentMinus = rd(0x04, 0xB1, 0xE0)
	// 10240 × 625 µW = 6.4 W.
	power6W4 = rd(0x03, 0x28, 0x00)

	configure = []i2ctest.IO{manufTIOp, die226Op, writeConfig, writeCal, maskReady}
	charging  = []i2ctest.IO{shuntPlus, bus12V8, currentPlus, power6W4}
)

func ops(parts ...[]i2ctest.IO) []i2ctest.IO {
	var all []i2ctest.IO
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func newSensor(t *testing.T, bus *i2ctest.Playback, cfg Config, clk clock.Clock) *Sensor {
	t.Helper()
	if cfg.ShuntOhms == 0 {
		cfg.ShuntOhms = 0.1
	}
	if cfg.Measures == "" {
		cfg.Measures = Battery
	}
	s, err := New(bus, cfg, clk, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRead(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		ops     []i2ctest.IO
		want    string // batteryV|batteryA|panelV|panelW|loadW
		wantErr string
	}{
		{"battery charging", Config{Measures: Battery}, ops(configure, charging), "12.800|0.500|nil|nil|nil", ""},
		{"battery discharging", Config{Measures: Battery},
			ops(configure, []i2ctest.IO{shuntMinus, bus12V8, currentMinus, power6W4}), "12.800|-0.500|nil|nil|nil", ""},
		{"reversed shunt", Config{Measures: Battery, Reverse: true}, ops(configure, charging), "12.800|-0.500|nil|nil|nil", ""},
		{"panel", Config{Measures: Panel}, ops(configure, charging), "nil|nil|12.800|6.400|nil", ""},
		{"load", Config{Measures: Load}, ops(configure, charging), "nil|nil|nil|nil|6.400", ""},
		{"overflow flag", Config{Measures: Panel},
			ops(configure[:4], []i2ctest.IO{maskOVF}, charging), "nil|nil|12.800|nil|nil", ""},
		{"shunt at full scale", Config{Measures: Battery},
			ops(configure, []i2ctest.IO{shuntMax, bus12V8, currentPlus, power6W4}), "12.800|nil|nil|nil|nil", ""},
		{"other address", Config{Addr: 0x45, Measures: Battery}, []i2ctest.IO{
			{Addr: 0x45, W: []byte{0xFE}, R: []byte{0x54, 0x49}}, {Addr: 0x45, W: []byte{0xFF}, R: []byte{0x22, 0x61}},
			{Addr: 0x45, W: []byte{0x00, 0x45, 0x27}}, {Addr: 0x45, W: []byte{0x05, 0x08, 0x00}}, {Addr: 0x45, W: []byte{0x06}, R: []byte{0, 8}},
			{Addr: 0x45, W: []byte{0x01}, R: []byte{0, 0}}, {Addr: 0x45, W: []byte{0x02}, R: []byte{0x28, 0x00}},
			{Addr: 0x45, W: []byte{0x04}, R: []byte{0, 0}}, {Addr: 0x45, W: []byte{0x03}, R: []byte{0, 0}},
		}, "12.800|0.000|nil|nil|nil", ""},
		{"INA260 at the address", Config{}, []i2ctest.IO{manufTIOp, rd(0xFF, 0x22, 0x70)}, "", "die ID 0x2270"},
		{"not a TI chip", Config{}, []i2ctest.IO{rd(0xFE, 0xFF, 0xFF), rd(0xFF, 0xFF, 0xFF)}, "", "manufacturer ID reads 0xffff"},
		{"no chip at the address", Config{}, []i2ctest.IO{{Addr: 0x41, W: []byte{0xFE}, R: []byte{0x54, 0x49}}}, "", "read manufacturer ID at 0x40"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bus := &i2ctest.Playback{Ops: tt.ops, DontPanic: true}
			s := newSensor(t, bus, tt.cfg, clock.NewFake(t0))
			r, err := s.Read(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Read error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			got := strings.Join([]string{show(r.BatteryV), show(r.BatteryA), show(r.PanelV), show(r.PanelW), show(r.LoadW)}, "|")
			if got != tt.want || !r.Time.Equal(t0) {
				t.Errorf("got %s at %v, want %s", got, r.Time, tt.want)
			}
			if err := bus.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestWrongChipWritesNothing checks that a chip that is not an INA226 is
// refused before anything is written to it, and again on the next Read.
func TestWrongChipWritesNothing(t *testing.T) {
	ina219 := []i2ctest.IO{rd(0xFE, 0x00, 0x00), rd(0xFF, 0x00, 0x00)}
	bus := &i2ctest.Playback{Ops: ops(ina219, ina219), DontPanic: true}
	s := newSensor(t, bus, Config{}, clock.NewFake(t0))
	for i := range 2 {
		_, err := s.Read(context.Background())
		if !errors.Is(err, ErrWrongChip) || !strings.Contains(err.Error(), "INA219") {
			t.Fatalf("Read %d = %v, want a wrong chip error", i, err)
		}
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
}

// flakyBus fails its Nth transaction, as a loose wire does, and passes the
// others to the playback.
type flakyBus struct {
	*i2ctest.Playback
	failAt, n int
}

func (b *flakyBus) Tx(addr uint16, w, r []byte) error {
	b.n++
	if b.n == b.failAt {
		return errors.New("i2c: remote I/O error")
	}
	return b.Playback.Tx(addr, w, r)
}

// TestRecovers checks that the calibration is checked on every Read, that a
// chip which lost it is configured again, and that after a bus error the
// next Read checks the ID and configures the chip again.
func TestRecovers(t *testing.T) {
	play := &i2ctest.Playback{DontPanic: true, Ops: ops(
		configure, charging, // 1: first read
		[]i2ctest.IO{readCal, maskReady}, charging, // 2: calibration still there
		[]i2ctest.IO{lostCal}, configure, charging, // 3: power dip: configured again
		[]i2ctest.IO{readCal}, // 4: its flags read fails (transaction 27)
		configure, charging,   // 5: ID checked and configured again
	)}
	bus := &flakyBus{Playback: play, failAt: 27}
	s, err := New(bus, Config{ShuntOhms: 0.1, Measures: Battery}, clock.NewFake(t0), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, wantErr := range []bool{false, false, false, true, false} {
		r, err := s.Read(ctx)
		if (err != nil) != wantErr {
			t.Fatalf("Read %d: %v, want error %v", i+1, err, wantErr)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "remote I/O error") || !strings.Contains(err.Error(), "read flags") {
				t.Errorf("Read %d lost the bus error: %v", i+1, err)
			}
			continue
		}
		if got := show(r.BatteryA); got != "0.500" {
			t.Errorf("Read %d: %s A, want 0.500", i+1, got)
		}
	}
	if err := play.Close(); err != nil {
		t.Error(err)
	}
}

// TestWaitsForConversion checks that after configuring the chip Read polls
// until a conversion is ready, on the injected clock.
func TestWaitsForConversion(t *testing.T) {
	clk := clock.NewFake(t0)
	bus := &i2ctest.Playback{DontPanic: true, Ops: ops(configure[:4], []i2ctest.IO{maskIdle, maskIdle, maskReady}, charging)}
	s := newSensor(t, bus, Config{}, clk)
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(context.Background())
		done <- err
	}()
	for range 2 {
		waitForTimer(t, clk)
		clk.Advance(10 * time.Millisecond) // the poll interval: a quarter of 35.2 ms
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
}

func TestConversionTimeout(t *testing.T) {
	clk := clock.NewFake(t0)
	idle := make([]i2ctest.IO, 12) // polls at 0, 10, ..., 110 ms
	for i := range idle {
		idle[i] = maskIdle
	}
	bus := &i2ctest.Playback{DontPanic: true, Ops: ops(configure[:4], idle)}
	s := newSensor(t, bus, Config{}, clk)
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(context.Background())
		done <- err
	}()
	for {
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "no conversion finished within 105.6ms") {
				t.Fatalf("Read = %v, want a conversion timeout", err)
			}
			if err := bus.Close(); err != nil {
				t.Error(err)
			}
			return
		case <-time.After(time.Millisecond):
			if clk.Waiters() > 0 {
				clk.Advance(10 * time.Millisecond)
			}
		}
	}
}

func TestCanceledWhileWaiting(t *testing.T) {
	clk := clock.NewFake(t0)
	bus := &i2ctest.Playback{DontPanic: true, Ops: ops(configure[:4], []i2ctest.IO{maskIdle})}
	s := newSensor(t, bus, Config{}, clk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(ctx)
		done <- err
	}()
	waitForTimer(t, clk)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Read = %v, want canceled", err)
	}
	if _, err := s.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel = %v", err)
	}
}

func waitForTimer(t *testing.T, clk *clock.Fake) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for clk.Waiters() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Read never waited on the clock")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr string
	}{
		{Config{ShuntOhms: 0.1, Measures: Battery}, ""},
		{Config{Addr: 0x4F, ShuntOhms: 0.002, MaxCurrentA: 20, Averages: 1024, ConversionTime: 8244 * time.Microsecond, Measures: Load}, ""},
		{Config{Addr: 0x70, ShuntOhms: 0.1, Measures: Battery}, "must be 0x40-0x4f"},
		{Config{ShuntOhms: -1, Measures: Battery}, "must be above 0"},
		{Config{ShuntOhms: math.Inf(1), Measures: Battery}, "must be above 0"},
		{Config{ShuntOhms: 0.1, Measures: "solar"}, "use battery, panel or load"},
		{Config{ShuntOhms: 0.1, Averages: 10, Measures: Battery}, "averages 10"},
		{Config{ShuntOhms: 0.1, ConversionTime: time.Millisecond, Measures: Battery}, "1.1ms"},
		{Config{ShuntOhms: 0.1, MaxCurrentA: 1, Measures: Battery}, "beyond the chip's 81.92 mV shunt range: lower it to 0.8192 A"},
		{Config{ShuntOhms: 0.1, MaxCurrentA: 0.01, Measures: Battery}, "raise it to 0.05121 A"},
		{Config{ShuntOhms: 0.1, MaxCurrentA: -2, Measures: Battery}, "must be above 0"},
		{Config{ShuntOhms: 0.1, MaxCurrentA: math.NaN(), Measures: Battery}, "must be above 0"},
	}
	for _, tt := range tests {
		_, err := New(&i2ctest.Playback{}, tt.cfg, clock.NewFake(t0), slog.New(slog.DiscardHandler))
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("New(%+v) = %v, want %q", tt.cfg, err, tt.wantErr)
		}
	}
}

func TestCalibrate(t *testing.T) {
	tests := []struct {
		ohms, maxA float64
		cal        uint16
		step       float64
	}{
		{0.1, 0, 2048, 25e-6},
		{0.1, 0.8192, 2048, 25e-6},
		{0.1, 0.4096, 4096, 12.5e-6},
		{0.002, 20, 4194, 0.00512 / (4194 * 0.002)},
		{0.002, 0, 2048, 1.25e-3},
		{0.01, 2, 8388, 0.00512 / (8388 * 0.01)},
	}
	for _, tt := range tests {
		cal, step, err := calibrate(tt.ohms, tt.maxA)
		if err != nil || cal != tt.cal || math.Abs(step-tt.step) > 1e-12 {
			t.Errorf("calibrate(%g, %g) = %d, %g, %v; want %d, %g", tt.ohms, tt.maxA, cal, step, err, tt.cal, tt.step)
		}
		// The step never makes the calibrated range smaller than asked.
		if tt.maxA > 0 && step*32767 < tt.maxA*(1-1e-4) {
			t.Errorf("calibrate(%g, %g): step %g covers only %g A", tt.ohms, tt.maxA, step, step*32767)
		}
	}
}

func TestConfigValue(t *testing.T) {
	tests := []struct {
		avg  int
		ct   time.Duration
		want uint16
	}{
		{1, 1100 * time.Microsecond, 0x4127}, // the power-on value
		{16, 1100 * time.Microsecond, 0x4527},
		{1024, 8244 * time.Microsecond, 0x4FFF},
		{1, 140 * time.Microsecond, 0x4007},
	}
	for _, tt := range tests {
		if got := configValue(Config{Averages: tt.avg, ConversionTime: tt.ct}); got != tt.want {
			t.Errorf("configValue(%d, %s) = %#04x, want %#04x", tt.avg, tt.ct, got, tt.want)
		}
	}
}

// FuzzDecode checks that any register values decode without panicking to a
// bus voltage within 0-40.96 V and a finite current and power within the
// calibrated range, with power carrying the current's sign.
func FuzzDecode(f *testing.F) {
	f.Add(uint16(0), uint16(0x4E20), uint16(0x2800), uint16(0x4E20), uint16(0x2800))
	f.Add(uint16(4), uint16(0x7FFF), uint16(0xFFFF), uint16(0x8000), uint16(0xFFFF))
	f.Add(uint16(8), uint16(0xB1E0), uint16(0x2800), uint16(0xB1E0), uint16(0x2800))
	f.Fuzz(func(t *testing.T, mask, shunt, bus, current, pow uint16) {
		const step = 25e-6
		v, a, w, overflow := decode(regs{mask: mask, shunt: shunt, bus: bus, current: current, power: pow}, step)
		if v < 0 || v >= 40.96 {
			t.Fatalf("volts %v", v)
		}
		if (a == nil) != overflow || (w == nil) != overflow {
			t.Fatalf("amps %s, watts %s, overflow %v", show(a), show(w), overflow)
		}
		if a != nil && (math.Abs(*a) > 32768*step || math.Abs(*w) > 65535*25*step || (*a < 0 && *w > 0)) {
			t.Fatalf("amps %s, watts %s", show(a), show(w))
		}
	})
}
