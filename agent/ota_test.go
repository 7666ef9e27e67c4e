package agent

import (
	"errors"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/ota"
	"github.com/outpost-cctv/outpost/uplink"
)

func TestOTARootAndArch(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = "/var/lib/outpost"
	if got := OTARoot(cfg); got != "/var/lib/outpost/ota" {
		t.Errorf("default root %s", got)
	}
	cfg.OTA.Root = "/srv/ota"
	if got := OTARoot(cfg); got != "/srv/ota" {
		t.Errorf("root %s", got)
	}
	a := BuildArch()
	if runtime.GOARCH != "arm" && a != runtime.GOARCH || !strings.Contains(strings.Join(ota.Arches, " "), a) {
		t.Errorf("BuildArch %q for %s", a, runtime.GOARCH)
	}
}

func pf(v float64) *float64 { return &v }

func TestOTAPreconditions(t *testing.T) {
	cfg := config.Default()
	cfg.Uplink.MonthlyBudget = 0 // the budget is checked against the session's meter
	args := ota.PushArgs{ID: "ota-0123456789abcdef01234567", Size: 1 << 20}
	for _, tc := range []struct {
		name    string
		reading power.Reading
		err     error
		want    string
	}{
		{"charged", power.Reading{SOCPercent: pf(80)}, nil, ""},
		{"low", power.Reading{SOCPercent: pf(23)}, nil, "deferred: battery 23 % < 40 %"},
		{"unknown", power.Reading{}, errors.New("no reading yet"), "deferred: the battery's charge is not known yet"},
		{"voltage only", power.Reading{BatteryV: pf(12.6)}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &otaUpdater{cfg: cfg, inputs: MonitorInputs{Power: func() (power.Reading, error) { return tc.reading, tc.err }}}
			err := o.preconditions(args)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ce uplink.CommandError
			if !errors.As(err, &ce) || !strings.Contains(ce.Message, tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOTARefusedWithoutKeysOrLauncher(t *testing.T) {
	key, _ := ota.GenerateKey()
	for _, tc := range []struct {
		name     string
		keys     []string
		launched bool
		want     string
	}{
		{"no key", nil, true, "no release key is pinned"},
		{"no launcher", []string{key.Public().String()}, false, "not run by 'outpost launch'"},
		{"not set up", []string{key.Public().String()}, true, "not set up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			cfg.OTA.Keys = tc.keys
			o := &otaUpdater{cfg: cfg, log: slog.New(slog.DiscardHandler), clk: clock.Real{}, root: filepath.Join(cfg.DataDir, "ota"), launched: tc.launched}
			o.open()
			_, err := o.installer()
			var ce uplink.CommandError
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Message, "rejected: ") || !strings.Contains(ce.Message, tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if st := o.status(); st.State != "" || !strings.Contains(st.Reason, tc.want) {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

func TestWritable(t *testing.T) {
	if err := writable(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := writable(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing directory is writable")
	}
}
