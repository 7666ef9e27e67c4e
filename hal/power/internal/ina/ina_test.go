package ina

import (
	"strconv"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/outpost-cctv/outpost/hal/power"
)

func show(p *float64) string {
	if p == nil {
		return "nil"
	}
	return strconv.FormatFloat(*p, 'f', 2, 64)
}

func TestFill(t *testing.T) {
	tests := []struct {
		measures string
		amps     *float64
		watts    *float64
		want     string // batteryV|batteryA|panelV|panelW|loadW
	}{
		{Battery, power.F(-1.5), power.F(-18), "12.00|-1.50|nil|nil|nil"},
		{Battery, nil, nil, "12.00|nil|nil|nil|nil"},
		{Panel, power.F(2), power.F(24), "nil|nil|12.00|24.00|nil"},
		{Panel, nil, nil, "nil|nil|12.00|nil|nil"},
		{Load, power.F(0.5), power.F(6), "nil|nil|nil|nil|6.00"},
		{Load, nil, nil, "nil|nil|nil|nil|nil"},
	}
	for _, tt := range tests {
		var r power.Reading
		Fill(&r, tt.measures, 12, tt.amps, tt.watts)
		got := strings.Join([]string{show(r.BatteryV), show(r.BatteryA), show(r.PanelV), show(r.PanelW), show(r.LoadW)}, "|")
		if got != tt.want {
			t.Errorf("Fill(%s) = %s, want %s", tt.measures, got, tt.want)
		}
	}
}

func TestChecks(t *testing.T) {
	for _, m := range []string{Battery, Panel, Load} {
		if err := CheckMeasures("inaX", m); err != nil {
			t.Error(err)
		}
	}
	if err := CheckMeasures("inaX", "Battery"); err == nil || !strings.HasPrefix(err.Error(), "inaX: ") {
		t.Errorf("CheckMeasures(Battery) = %v", err)
	}
	for addr, ok := range map[uint16]bool{0x3F: false, 0x40: true, 0x4F: true, 0x50: false} {
		if err := CheckAddr("inaX", addr); (err == nil) != ok {
			t.Errorf("CheckAddr(%#x) = %v", addr, err)
		}
	}
}

func TestRegisters(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x44, W: []byte{0x05, 0x12, 0x34}},
		{Addr: 0x44, W: []byte{0xFE}, R: []byte{0x54, 0x49}},
	}}
	dev := &i2c.Dev{Bus: bus, Addr: 0x44}
	if err := WriteReg(dev, 0x05, 0x1234); err != nil {
		t.Fatal(err)
	}
	if v, err := Reg(dev, 0xFE); err != nil || v != 0x5449 {
		t.Fatalf("Reg = %#x, %v", v, err)
	}
	if _, err := Reg(dev, 0xFF); err == nil {
		t.Fatal("Reg past the playback succeeded")
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
	err := BusErr("inaX", "read shunt voltage", 0x44, errTest)
	if !strings.Contains(err.Error(), "inaX: read shunt voltage at 0x44: remote I/O error: check SDA/SCL") {
		t.Errorf("BusErr = %v", err)
	}
}

type testErr string

func (e testErr) Error() string { return string(e) }

const errTest = testErr("remote I/O error")
