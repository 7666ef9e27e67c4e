package mmcli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func show(p *float64) string {
	if p == nil {
		return "nil"
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}

func showU(p *uint64) string {
	if p == nil {
		return "nil"
	}
	return strconv.FormatUint(*p, 10)
}

// fakeMMCLI is a shell script standing in for mmcli. For each command line
// it knows it prints a testdata file ("modem-lte.json"), or fails with
// "fail: <stderr>", or hangs with "hang"; it fails on any other command
// line. It records each command line in a log.
type fakeMMCLI struct {
	t         *testing.T
	path, log string
}

func newFake(t *testing.T, answers map[string]string) *fakeMMCLI {
	t.Helper()
	dir := t.TempDir()
	f := &fakeMMCLI{t: t, path: filepath.Join(dir, "mmcli"), log: filepath.Join(dir, "calls.log")}
	f.answer(answers)
	return f
}

// answer rewrites the script to answer as given from the next run on.
func (f *fakeMMCLI) answer(answers map[string]string) {
	f.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\necho \"$*\" >> '%s'\ncase \"$*\" in\n", f.log)
	keys := make([]string, 0, len(answers))
	for k := range answers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, args := range keys {
		a := answers[args]
		fmt.Fprintf(&b, "'%s')\n", args)
		switch {
		case a == "hang":
			b.WriteString("  sleep 30\n")
		case strings.HasPrefix(a, "fail: "):
			fmt.Fprintf(&b, "  echo %s >&2\n  exit 1\n", shellQuote(strings.TrimPrefix(a, "fail: ")))
		default:
			abs, err := filepath.Abs(filepath.Join("testdata", a))
			if err != nil {
				f.t.Fatal(err)
			}
			if _, err := os.Stat(abs); err != nil {
				f.t.Fatal(err)
			}
			fmt.Fprintf(&b, "  cat '%s'\n", abs)
		}
		b.WriteString("  ;;\n")
	}
	b.WriteString("*)\n  echo \"error: unexpected arguments: $*\" >&2\n  exit 64\n  ;;\nesac\n")
	tmp := f.path + ".new"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		f.t.Fatal(err)
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// calls returns the command lines run so far, and forgets them.
func (f *fakeMMCLI) calls() []string {
	f.t.Helper()
	data, err := os.ReadFile(f.log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	os.Remove(f.log)
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func newModem(t *testing.T, f *fakeMMCLI, modemSel string) *Modem {
	t.Helper()
	m, err := New(Config{Path: f.path, Modem: modemSel, Clock: clock.NewFake(t0)}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const (
	status   = "-m any -J"
	signal   = "-m any --signal-get -J"
	setup    = "-m any --signal-setup=10"
	setupOut = "fail: unused"
)

func TestSignal(t *testing.T) {
	tests := []struct {
		name           string
		modem, signal  string
		want           string // registered|operator|tech|rsrp|rsrq|sinr|rssi|quality
		nr             string // rsrp|rsrq|sinr|pct
		wantCallsFirst []string
	}{
		{"lte", "modem-lte.json", "signal-lte.json", "true|vodafone UK|lte|-98|-12|9.8|-68|fair", "nil|nil|nil|67",
			[]string{status, setup, signal}},
		{"5g nsa, operator code only", "modem-nsa.json", "signal-nsa.json", "true|23430|5g-nsa|-88|-9|18|-58|good", "-85|-11|22|80", nil},
		{"no sim", "modem-nosim.json", "signal-unset.json", "false|||nil|nil|nil|nil|none", "nil|nil|nil|0", nil},
		{"older mmcli, 3g", "modem-umts-old.json", "signal-umts-old.json", "true|O2 - UK|umts|nil|nil|nil|-71|unknown", "nil|nil|nil|45", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, map[string]string{status: tt.modem, signal: tt.signal, setup: "modem-lte.json"})
			m := newModem(t, f, "")
			for i := range 2 {
				s, err := m.Signal(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				got := strings.Join([]string{strconv.FormatBool(s.Registered), s.Operator, s.Tech, show(s.RSRPdBm), show(s.RSRQdB), show(s.SINRdB), show(s.RSSIdBm), s.Quality()}, "|")
				nr := strings.Join([]string{show(s.NRRSRPdBm), show(s.NRRSRQdB), show(s.NRSINRdB), show(s.QualityPct)}, "|")
				if got != tt.want || nr != tt.nr || !s.Time.Equal(t0) {
					t.Fatalf("reading %d: %s %s at %v, want %s %s", i, got, nr, s.Time, tt.want, tt.nr)
				}
				calls := f.calls()
				if i == 0 && tt.wantCallsFirst != nil && !reflect.DeepEqual(calls, tt.wantCallsFirst) {
					t.Errorf("first reading ran %q, want %q", calls, tt.wantCallsFirst)
				}
				if i == 1 && tt.signal != "signal-unset.json" && !reflect.DeepEqual(calls, []string{status, signal}) {
					t.Errorf("second reading ran %q, want no set-up", calls)
				}
			}
		})
	}
}

// TestSignalSetupAgain: the signal set-up runs again when the modem
// re-appears as a new ModemManager object, and when ModemManager forgot it.
func TestSignalSetupAgain(t *testing.T) {
	f := newFake(t, map[string]string{status: "modem-lte.json", signal: "signal-lte.json", setup: "modem-lte.json"})
	m := newModem(t, f, "")
	if _, err := m.Signal(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.calls()
	f.answer(map[string]string{status: "modem-nsa.json", signal: "signal-unset.json", setup: "modem-lte.json"})
	if _, err := m.Signal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.calls(); !reflect.DeepEqual(got, []string{status, setup, signal}) {
		t.Errorf("after the modem re-appeared: %q, want a set-up", got)
	}
	if _, err := m.Signal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.calls(); !reflect.DeepEqual(got, []string{status, setup, signal}) {
		t.Errorf("after a refresh rate of 0: %q, want a set-up", got)
	}
}

func TestSignalModemIndex(t *testing.T) {
	f := newFake(t, map[string]string{"-m 3 -J": "modem-nsa.json", "-m 3 --signal-get -J": "signal-nsa.json", "-m 3 --signal-setup=30": "modem-lte.json"})
	m, err := New(Config{Path: f.path, Modem: "3", SignalRate: 30 * time.Second, Timeout: 2 * time.Second}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Signal(context.Background())
	if err != nil || show(s.NRRSRPdBm) != "-85" || s.Time.IsZero() {
		t.Fatalf("Signal = %+v, %v", s, err)
	}
}

func TestSignalFailures(t *testing.T) {
	tests := []struct {
		name    string
		answers map[string]string
		want    []string // in the error, or in the log when the reading succeeds
		ok      bool     // the reading succeeds with the signal unknown
	}{
		{"no modem", map[string]string{status: "fail: error: couldn't find modem"},
			[]string{"mmcli -m any -J", "exit status 1", "couldn't find modem", "mmcli -L"}, false},
		{"no modemmanager", map[string]string{status: "fail: error: couldn't create manager: The name org.freedesktop.ModemManager1 was not provided by any .service files"},
			[]string{"was not provided", "systemctl status ModemManager"}, false},
		{"garbage", map[string]string{status: "bearer-connected.json"}, []string{"no \"modem\" object", "-m any -J", "ModemManager's mmcli"}, false},
		{"hangs", map[string]string{status: "hang"}, []string{"no answer in time", "deadline exceeded"}, false},
		{"signal-setup refused", map[string]string{status: "modem-lte.json", setup: "fail: error: couldn't setup extended signal information: Unsupported"},
			[]string{"signal set-up failed", "Unsupported"}, true},
		{"signal-get hangs", map[string]string{status: "modem-lte.json", setup: "modem-lte.json", signal: "hang"},
			[]string{"signal unknown", "no answer in time"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.answers)
			var logs strings.Builder
			m, err := New(Config{Path: f.path, Clock: clock.NewFake(t0)}, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			m.timeout = 300 * time.Millisecond
			start := time.Now()
			s, err := m.Signal(context.Background())
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("took %s: the hung mmcli was not killed in time", took)
			}
			text := logs.String()
			if !tt.ok {
				if err == nil {
					t.Fatalf("Signal = %+v, want an error", s)
				}
				text = err.Error()
			} else if err != nil || !s.Registered || s.RSRPdBm != nil {
				t.Fatalf("Signal = %+v, %v; want registered, signal unknown", s, err)
			}
			t.Log(text)
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("%q does not say %q", text, w)
				}
			}
		})
	}
}

func TestMissingBinary(t *testing.T) {
	m, err := New(Config{Path: filepath.Join(t.TempDir(), "mmcli")}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Signal(context.Background()); err == nil || !strings.Contains(err.Error(), "install ModemManager") {
		t.Errorf("Signal with no mmcli: %v", err)
	}
	m, _ = New(Config{Path: "mmcli-is-not-here"}, quiet())
	if _, err := m.Signal(context.Background()); !errors.Is(err, exec_ErrNotFound()) {
		t.Errorf("Signal with no mmcli in PATH: %v", err)
	}
}

func TestCanceled(t *testing.T) {
	f := newFake(t, map[string]string{status: "hang"})
	m := newModem(t, f, "")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := m.Signal(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Signal error %v, want the caller's deadline", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s after the caller's deadline", took)
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []Config{
		{Modem: "-b"}, {Modem: "0 1"}, {Timeout: time.Millisecond}, {Timeout: time.Hour},
		{SignalRate: 1500 * time.Millisecond}, {SignalRate: 2 * time.Hour},
	} {
		if _, err := New(c, quiet()); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	m, err := New(Config{}, quiet())
	if err != nil || m.path != DefaultPath || m.modem != DefaultModem || m.timeout != DefaultTimeout || m.rate != 10 {
		t.Errorf("defaults: %+v, %v", m, err)
	}
}

func TestTraffic(t *testing.T) {
	b0, b4, b5 := "-b /org/freedesktop/ModemManager1/Bearer/0 -J", "-b /org/freedesktop/ModemManager1/Bearer/4 -J", "-b /org/freedesktop/ModemManager1/Bearer/5 -J"
	tests := []struct {
		name    string
		answers map[string]string
		want    string // connected|interface|rx|tx|total rx|total tx|duration
		err     string
	}{
		{"connected", map[string]string{status: "modem-lte.json", b0: "bearer-connected.json"},
			"true|wwan0|123456789|9876543|987654321|87654321|1h0m0s", ""},
		{"two bearers, one down", map[string]string{status: "modem-nsa.json", b4: "bearer-disconnected.json", b5: "bearer-second.json"},
			"true|wwan1|1000|2000|5000|6000|1m0s", ""},
		{"no bearer", map[string]string{status: "modem-nosim.json"}, "false||0|0|0|0|nil", ""},
		{"bearer gone", map[string]string{status: "modem-lte.json", b0: "fail: error: couldn't find bearer at '/org/freedesktop/ModemManager1/Bearer/0'"},
			"", "couldn't find bearer"},
		{"no modem", map[string]string{status: "fail: error: couldn't find modem"}, "", "couldn't find modem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.answers)
			m := newModem(t, f, "")
			tr, err := m.Traffic(context.Background())
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Traffic = %+v, %v; want an error with %q", tr, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := "nil"
			if tr.Duration != nil {
				d = tr.Duration.String()
			}
			got := strings.Join([]string{strconv.FormatBool(tr.Connected), tr.Interface, showU(tr.RxBytes), showU(tr.TxBytes), showU(tr.TotalRxBytes), showU(tr.TotalTxBytes), d}, "|")
			if got != tt.want || !tr.Time.Equal(t0) {
				t.Errorf("Traffic = %s at %v, want %s", got, tr.Time, tt.want)
			}
		})
	}
}
