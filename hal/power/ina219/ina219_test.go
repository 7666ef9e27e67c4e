package ina219

import (
	"context"
	"errors"
	"log/slog"
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

var (
	writeConfig = i2ctest.IO{Addr: 0x40, W: []byte{0x00, 0x39, 0x9F}}
	// 0x01F4 = 500 × 10 µV = 5 mV: 0.05 A through 0.1 Ω.
	shunt50mA = i2ctest.IO{Addr: 0x40, W: []byte{0x01}, R: []byte{0x01, 0xF4}}
	// -500 × 10 µV: 0.05 A the other way.
	shuntMinus50mA = i2ctest.IO{Addr: 0x40, W: []byte{0x01}, R: []byte{0xFE, 0x0C}}
	// 12.8 V = 3200 × 4 mV, shifted left 3, conversion ready.
	bus12V8      = i2ctest.IO{Addr: 0x40, W: []byte{0x02}, R: []byte{0x64, 0x02}}
	bus12V8OVF   = i2ctest.IO{Addr: 0x40, W: []byte{0x02}, R: []byte{0x64, 0x03}}
	shuntMax     = i2ctest.IO{Addr: 0x40, W: []byte{0x01}, R: []byte{0x7D, 0x00}}
	wrongAddrOps = []i2ctest.IO{{Addr: 0x41, W: []byte{0x00, 0x39, 0x9F}}}
)

func TestRead(t *testing.T) {
	tests := []struct {
		name     string
		measures string
		reverse  bool
		ops      []i2ctest.IO
		want     string // batteryV|batteryA|panelV|panelW|loadW
		wantErr  string
	}{
		{"battery charging", Battery, false, []i2ctest.IO{writeConfig, shunt50mA, bus12V8}, "12.800|0.050|nil|nil|nil", ""},
		{"battery discharging", Battery, false, []i2ctest.IO{writeConfig, shuntMinus50mA, bus12V8}, "12.800|-0.050|nil|nil|nil", ""},
		{"panel", Panel, false, []i2ctest.IO{writeConfig, shunt50mA, bus12V8}, "nil|nil|12.800|0.640|nil", ""},
		{"load", Load, false, []i2ctest.IO{writeConfig, shunt50mA, bus12V8}, "nil|nil|nil|nil|0.640", ""},
		{"overflow flag", Battery, false, []i2ctest.IO{writeConfig, shunt50mA, bus12V8OVF}, "12.800|nil|nil|nil|nil", ""},
		{"shunt at full scale", Panel, false, []i2ctest.IO{writeConfig, shuntMax, bus12V8}, "nil|nil|12.800|nil|nil", ""},
		{"reversed shunt", Battery, true, []i2ctest.IO{writeConfig, shunt50mA, bus12V8}, "12.800|-0.050|nil|nil|nil", ""},
		{"reversed panel", Panel, true, []i2ctest.IO{writeConfig, shuntMinus50mA, bus12V8}, "nil|nil|12.800|0.640|nil", ""},
		{"no chip at the address", Battery, false, wrongAddrOps, "", "write configuration at 0x40"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bus := &i2ctest.Playback{Ops: tt.ops, DontPanic: true}
			s, err := New(bus, Config{ShuntOhms: 0.1, Measures: tt.measures, Reverse: tt.reverse}, clock.NewFake(t0), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.Read(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "check SDA/SCL") {
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

// TestRecovers checks that after a bus error the configuration is written
// again, and only then.
func TestRecovers(t *testing.T) {
	play := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		writeConfig, shunt50mA, bus12V8, // first read
		shunt50mA, bus12V8, // second: no configuration write
		// third: its shunt read fails
		writeConfig, shunt50mA, bus12V8, // fourth writes the configuration again
	}}
	bus := &flakyBus{Playback: play, failAt: 6}
	s, err := New(bus, Config{ShuntOhms: 0.1, Measures: Battery}, clock.NewFake(t0), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, wantErr := range []bool{false, false, true, false} {
		_, err := s.Read(ctx)
		if (err != nil) != wantErr {
			t.Fatalf("Read %d: %v, want error %v", i, err, wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "remote I/O error") {
			t.Errorf("Read %d lost the bus error: %v", i, err)
		}
	}
	if err := play.Close(); err != nil {
		t.Error(err)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr string
	}{
		{Config{ShuntOhms: 0.1, Measures: Battery}, ""},
		{Config{Addr: 0x45, ShuntOhms: 0.01, Measures: Load}, ""},
		{Config{Addr: 0x70, ShuntOhms: 0.1, Measures: Battery}, "must be 0x40-0x4f"},
		{Config{ShuntOhms: 0, Measures: Battery}, "must be above 0"},
		{Config{ShuntOhms: 0.1, Measures: "solar"}, "use battery, panel or load"},
	}
	for _, tt := range tests {
		_, err := New(&i2ctest.Playback{}, tt.cfg, clock.NewFake(t0), slog.New(slog.DiscardHandler))
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("New(%+v) = %v, want %q", tt.cfg, err, tt.wantErr)
		}
	}
}

func TestReadCanceled(t *testing.T) {
	s, _ := New(&i2ctest.Playback{DontPanic: true}, Config{ShuntOhms: 0.1, Measures: Battery}, clock.NewFake(t0), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Read(ctx); err == nil {
		t.Fatal("Read after cancel succeeded")
	}
}

// FuzzDecode checks that any pair of register values decodes without
// panicking to a bus voltage within the chip's 0-32.76 V and a finite
// current.
func FuzzDecode(f *testing.F) {
	f.Add(uint16(0x01F4), uint16(0x6402))
	f.Add(uint16(0x7D00), uint16(0xFFFF))
	f.Fuzz(func(t *testing.T, shunt, bus uint16) {
		v, a, _ := decode(shunt, bus, 0.1)
		if v < 0 || v > 32.764 || (a != nil && (*a > 3.2 || *a < -3.2)) {
			t.Fatalf("decode(%#x, %#x) = %v, %v", shunt, bus, v, show(a))
		}
	})
}
