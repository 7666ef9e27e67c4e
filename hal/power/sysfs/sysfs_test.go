package sysfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func show(p *float64) string {
	if p == nil {
		return "nil"
	}
	return strconv.FormatFloat(*p, 'f', 3, 64)
}

func showBool(p *bool) string {
	if p == nil {
		return "nil"
	}
	return strconv.FormatBool(*p)
}

// summary is a Status in one line:
// battery|V|A|SOC|state|temp|health|sources.
func summary(st Status) string {
	r := st.Reading
	var src []string
	for _, s := range st.Sources {
		src = append(src, s.Name+"="+s.Type+":"+showBool(s.Online))
	}
	return strings.Join([]string{st.Battery, show(r.BatteryV), show(r.BatteryA), show(r.SOCPercent), r.ChargeState,
		show(st.TempC), st.Health, strings.Join(src, ",")}, "|")
}

func TestBoards(t *testing.T) {
	tests := []struct {
		board   string
		cfg     Config
		want    string
		wantErr []string
	}{
		{"axp20x", Config{}, "axp20x-battery|4.012|0.512|78.000|charging|nil|Good|axp20x-ac=Mains:true,axp20x-usb=USB:false", nil},
		{"bq27xxx", Config{}, "bq27441-0|3.712|-0.245|54.000|discharging|23.100|Good|bq24190-charger=USB:true", nil},
		{"bq27xxx-old", Config{}, "bq27500-0|3.650|-0.300|41.000|discharging|-5.200||", nil},
		{"bq27xxx-old", Config{CurrentSign: SignABI}, "bq27500-0|3.650|0.300|41.000|discharging|-5.200||", nil},
		{"bq27xxx", Config{CurrentSign: SignInverted}, "bq27441-0|3.712|0.245|54.000|discharging|23.100|Good|bq24190-charger=USB:true", nil},
		{"powergauge", Config{}, "max17048|12.800|-0.500|nil||nil||mains=Mains:nil", nil},
		{"bq27xxx", Config{Name: "bq24190-charger"}, "bq24190-charger|nil|nil|nil|not charging|nil|Good|", nil},
		{"rpi-poe", Config{}, "", []string{"no battery in", "found hid-00:1f:20:aa:bb:cc-battery (Battery, a peripheral's), rpi-poe-power-supply@0 (Mains)"}},
		{"empty", Config{}, "", []string{"no battery in", "found no power supply at all"}},
		{"axp20x", Config{Name: "bq27441-0"}, "", []string{"no power supply bq27441-0", "found axp20x-ac (Mains), axp20x-battery (Battery), axp20x-usb (USB)"}},
		{"axp20x-nobattery", Config{}, "", []string{"battery not present: axp20x-battery", "connector"}},
		{"no-such-board", Config{}, "", []string{"list power supplies", "check"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %+v", tt.board, tt.cfg), func(t *testing.T) {
			cfg := tt.cfg
			cfg.Root = filepath.Join("testdata", tt.board)
			s, err := New(cfg, clock.NewFake(t0), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			st, err := s.Status(context.Background())
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Status = %s, want an error", summary(st))
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Status error %q, want it to say %q", err, w)
					}
				}
				if fatal := errors.Is(err, ErrNoBattery) || errors.Is(err, ErrNotPresent); fatal == (tt.board == "no-such-board") {
					t.Errorf("Status error %q: classified fatal %v", err, fatal)
				}
				return
			}
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			if got := summary(st); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !st.Reading.Time.Equal(t0) {
				t.Errorf("time %v, want %v", st.Reading.Time, t0)
			}
			r, err := s.Read(context.Background())
			if err != nil || show(r.BatteryV) != show(st.Reading.BatteryV) || r.PanelV != nil || r.LoadW != nil {
				t.Errorf("Read = %+v, %v", r, err)
			}
		})
	}
}

// errFS fails reading the files named in errs, as sysfs does with EIO or
// ENODATA while a gauge is busy.
type errFS struct {
	fs.FS
	errs map[string]error
}

func (f errFS) Open(name string) (fs.File, error) {
	if err, ok := f.errs[name]; ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return f.FS.Open(name)
}

func TestUnreadable(t *testing.T) {
	fsys := errFS{os.DirFS("testdata/bq27xxx"), map[string]error{
		"bq27441-0/current_now":  syscall.EIO,
		"bq27441-0/capacity":     syscall.ENODATA,
		"bq27441-0/temp":         syscall.EIO,
		"bq24190-charger/online": syscall.EIO,
	}}
	s := newFS(Config{Root: "testdata/bq27xxx", CurrentSign: SignAuto}, fsys, clock.NewFake(t0), slog.New(slog.DiscardHandler))
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The current comes from power_avg / voltage_now: -0.909 W / 3.712 V.
	want := "bq27441-0|3.712|-0.245|nil|discharging|nil|Good|bq24190-charger=USB:nil"
	if got := summary(st); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestCanceled(t *testing.T) {
	s, _ := New(Config{Root: "testdata/axp20x"}, clock.NewFake(t0), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read = %v", err)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr string
	}{
		{Config{}, ""},
		{Config{Name: "axp20x-battery", CurrentSign: SignInverted}, ""},
		{Config{CurrentSign: "negative"}, "use auto, abi or inverted"},
		{Config{Name: "../../etc"}, "give the directory's name"},
		{Config{Name: ".."}, "give the directory's name"},
	}
	for _, tt := range tests {
		cfg := tt.cfg
		err := cfg.Validate()
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.cfg, err, tt.wantErr)
		}
		if err == nil && (cfg.Root != DefaultRoot || cfg.CurrentSign == "") {
			t.Errorf("Validate(%+v) left %+v", tt.cfg, cfg)
		}
	}
}

func TestSigned(t *testing.T) {
	tests := []struct {
		a          float64
		status     string
		convention string
		want       float64
	}{
		{0.5, "Charging", SignAuto, 0.5},
		{-0.5, "Charging", SignAuto, 0.5},
		{0.5, "Discharging", SignAuto, -0.5},
		{-0.5, "Discharging", SignAuto, -0.5},
		{0.5, "Full", SignAuto, 0.5},
		{-0.1, "Not charging", SignAuto, -0.1},
		{0.5, "Discharging", SignABI, 0.5},
		{0.5, "Charging", SignInverted, -0.5},
	}
	for _, tt := range tests {
		if got := signed(tt.a, tt.status, tt.convention); got != tt.want {
			t.Errorf("signed(%g, %q, %s) = %g, want %g", tt.a, tt.status, tt.convention, got, tt.want)
		}
	}
}

func TestChargeState(t *testing.T) {
	for in, want := range map[string]string{
		"Charging": "charging", "Discharging": "discharging", "Full": "full",
		"Not charging": "not charging", "Unknown": "", "": "", "Balancing": "balancing",
	} {
		if got := chargeState(in); got != want {
			t.Errorf("chargeState(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzSupply reads a battery whose attributes hold arbitrary bytes: it
// never panics, never fails, and gives only unknown or finite values.
func FuzzSupply(f *testing.F) {
	f.Add("4012000\n", "512000\n", "78\n", "Charging\n", "231\n", "1\n")
	f.Add("", "-245000", "bogus", "Not charging", "-52", "0")
	f.Add("99999999999999999999", "0x10", " 12 ", "\x00", "1e3", "2")
	f.Fuzz(func(t *testing.T, volts, amps, capacity, status, temp, online string) {
		fsys := fstest.MapFS{
			"bat/type":        {Data: []byte("Battery\n")},
			"bat/voltage_now": {Data: []byte(volts)},
			"bat/current_now": {Data: []byte(amps)},
			"bat/capacity":    {Data: []byte(capacity)},
			"bat/status":      {Data: []byte(status)},
			"bat/temp":        {Data: []byte(temp)},
			"usb/type":        {Data: []byte("USB\n")},
			"usb/online":      {Data: []byte(online)},
		}
		s := newFS(Config{Root: "fuzz", CurrentSign: SignAuto}, fsys, clock.NewFake(t0), slog.New(slog.DiscardHandler))
		st, err := s.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []*float64{st.Reading.BatteryV, st.Reading.BatteryA, st.Reading.SOCPercent, st.TempC} {
			if p != nil && (math.IsNaN(*p) || math.IsInf(*p, 0)) {
				t.Fatalf("non-finite value in %s", summary(st))
			}
		}
		if len(st.Sources) != 1 {
			t.Fatalf("sources %+v", st.Sources)
		}
	})
}
