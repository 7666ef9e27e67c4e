package at

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"reflect"
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

// TestModemPTY plays recorded modems on a real pseudo-terminal and reads
// them through the serial library.
func TestModemPTY(t *testing.T) {
	tests := []struct {
		file, flavor string
		want         string // registered|operator|tech|rsrp|rsrq|sinr|quality
		more         string // rssi|cell|tac|band|nr rsrp|nr rsrq|nr sinr
		cmds         []string
		wantErr      error
	}{
		{"quectel.txt", Quectel, "true|EE|lte|-95|-11|12|fair", "-65|1A2B3C4|1A2B|3|nil|nil|nil",
			[]string{"ATE0", "AT+CEREG?", "AT+COPS?", "AT+CSQ", `AT+QENG="servingcell"`}, nil},
		{"nsa.txt", Quectel, "true|Vodafone UK|5g-nsa|-88|-9|18|good", "-58|2B3C4D5|4C5D|20|-85|-11|22", nil, nil},
		{"generic.txt", Quectel, "true|23430|lte|-101|-10|nil|poor", "nil||||nil|nil|nil",
			[]string{"ATE0", "AT+CEREG?", "AT+COPS?", "AT+CSQ", `AT+QENG="servingcell"`, "AT+CESQ"}, nil},
		{"generic.txt", Generic, "true|23430|lte|-101|-10|nil|poor", "nil||||nil|nil|nil",
			[]string{"ATE0", "AT+CEREG?", "AT+COPS?", "AT+CSQ", "AT+CESQ"}, nil},
		{"nosim.txt", Quectel, "false|||nil|nil|nil|none", "nil||||nil|nil|nil", nil, nil},
		{"simcom.txt", SIMCom, "true|3 UK|lte|-100.3|-9.4|15|poor", "-67.8|BC614E|1A2B|20|nil|nil|nil",
			[]string{"ATE0", "AT+CEREG?", "AT+COPS?", "AT+CSQ", "AT+CPSI?"}, nil},
		{"simcom7000.txt", SIMCom, "true|Vodafone UK|lte-m|-98|-13|12|fair", "-71|1B21910|1816|20|nil|nil|nil", nil, nil},
		{"simcom.txt", Generic, "true|3 UK|lte|nil|nil|nil|unknown", "-67||||nil|nil|nil", nil, nil},
		{"csqonly.txt", Generic, "true|EE||nil|nil|nil|unknown", "-77||||nil|nil|nil",
			[]string{"ATE0", "AT+CEREG?", "AT+COPS?", "AT+CSQ", "AT+CESQ"}, nil},
		{"noisy.txt", Quectel, "true|EE|lte|-97|-12|9|fair", "-66|1A2B3C4|1A2B|3|nil|nil|nil", nil, nil},
		{"silent.txt", Quectel, "", "", nil, ErrNoAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.flavor, func(t *testing.T) {
			path, fm := startModem(t, tt.file)
			clk := clock.NewFake(t0)
			m, err := Open(path, tt.flavor, 300*time.Millisecond, clk, quiet())
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 { // the second reading reopens the port
				s, err := m.Signal(context.Background())
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("Signal error %v, want %v", err, tt.wantErr)
					}
					t.Logf("error: %v", err)
					return
				}
				if err != nil {
					t.Fatalf("Signal %d: %v", i, err)
				}
				got := strings.Join([]string{strconv.FormatBool(s.Registered), s.Operator, s.Tech, show(s.RSRPdBm), show(s.RSRQdB), show(s.SINRdB), s.Quality()}, "|")
				if got != tt.want || !s.Time.Equal(t0) {
					t.Fatalf("Signal %d = %s at %v, want %s", i, got, s.Time, tt.want)
				}
				more := strings.Join([]string{show(s.RSSIdBm), s.CellID, s.TAC, bandString(s.Band), show(s.NRRSRPdBm), show(s.NRRSRQdB), show(s.NRSINRdB)}, "|")
				if more != tt.more {
					t.Fatalf("Signal %d = %s, want %s", i, more, tt.more)
				}
				if s.QualityPct != nil {
					t.Errorf("QualityPct = %v, want nil from AT commands", *s.QualityPct)
				}
			}
			if tt.cmds != nil {
				if got := fm.commands()[:len(tt.cmds)]; !reflect.DeepEqual(got, tt.cmds) {
					t.Errorf("commands %q, want %q", got, tt.cmds)
				}
			}
		})
	}
}

func bandString(b int) string {
	if b == 0 {
		return ""
	}
	return strconv.Itoa(b)
}

func TestModemClock(t *testing.T) {
	tests := []struct {
		file    string
		want    time.Time
		offset  int // seconds east of UTC
		wantErr error
	}{
		{"quectel.txt", time.Date(2026, 11, 25, 20, 55, 1, 0, time.UTC), 0, nil},
		{"simcom.txt", time.Date(2026, 11, 25, 20, 55, 1, 0, time.UTC), 3600, nil},
		{"noisy.txt", time.Date(2026, 11, 26, 1, 55, 1, 0, time.UTC), -5 * 3600, nil},
		{"csqonly.txt", time.Time{}, 0, ErrClockNotSet},
		{"nosim.txt", time.Time{}, 0, ErrClockNotSet},
		{"generic.txt", time.Time{}, 0, ErrError},
		{"silent.txt", time.Time{}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			if tt.file == "silent.txt" {
				path, fm := startModem(t, tt.file)
				fm.play(transcript{"ATE0": {"OK"}, "AT+CCLK?": {"(silence)"}})
				m, _ := Open(path, Quectel, 200*time.Millisecond, clock.NewFake(t0), quiet())
				if _, err := m.Clock(context.Background()); !errors.Is(err, ErrNoAnswer) {
					t.Fatalf("Clock error %v, want no answer", err)
				}
				return
			}
			path, _ := startModem(t, tt.file)
			m, err := Open(path, Quectel, 300*time.Millisecond, clock.NewFake(t0), quiet())
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Clock(context.Background())
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Clock = %v, %v; want error %v", got, err, tt.wantErr)
				}
				if tt.wantErr == ErrClockNotSet && !strings.Contains(err.Error(), "modem clock not set") {
					t.Errorf("error %q does not say the clock is not set", err)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("Clock = %v, %v; want %v", got, err, tt.want)
			}
			if _, off := got.Zone(); off != tt.offset {
				t.Errorf("zone offset %d, want %d", off, tt.offset)
			}
		})
	}
}

// TestModemStopsAnswering: a mute modem fails one reading, is left alone
// (readings fail at once, without touching the port) until the backoff
// ends, and is read again once it answers.
func TestModemStopsAnswering(t *testing.T) {
	pm := newPTYModem(t, "silent.txt")
	clk := clock.NewFake(t0)
	m, err := Open(pm.link, Quectel, 200*time.Millisecond, clk, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Signal(context.Background()); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("Signal error %v, want no answer", err)
	}
	n := len(pm.fm.commands())
	_, err = m.Signal(context.Background())
	var ue *UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, ErrNoAnswer) || ue.Failures != 1 {
		t.Fatalf("second Signal error %v, want unavailable after no answer", err)
	}
	if wait := ue.Until.Sub(t0); wait < RetryMin*8/10 || wait > RetryMin*12/10 {
		t.Errorf("retry in %s, want about %s", wait, RetryMin)
	}
	if got := len(pm.fm.commands()); got != n {
		t.Errorf("the port was used while backing off: %d commands, had %d", got, n)
	}
	pm.fm.play(loadTranscript(t, "quectel.txt"))
	clk.Advance(RetryMin * 2)
	s, err := m.Signal(context.Background())
	if err != nil || !s.Registered || show(s.RSRPdBm) != "-95" {
		t.Fatalf("after the modem answers again: %+v, %v", s, err)
	}
	// Success resets the backoff: a new failure waits RetryMin again.
	pm.fm.play(loadTranscript(t, "silent.txt"))
	m.Signal(context.Background())
	if _, err := m.Signal(context.Background()); !errors.As(err, &ue) || ue.Failures != 1 || ue.Until.Sub(clk.Now()) > RetryMin*12/10 {
		t.Fatalf("after a new failure: %v", err)
	}
}

// TestModemLateAnswer: an answer that comes after its command timed out
// is dropped with the port, not read as the next reading's.
func TestModemLateAnswer(t *testing.T) {
	pm := newPTYModem(t, "late.txt")
	clk := clock.NewFake(t0)
	m, err := Open(pm.link, Quectel, 300*time.Millisecond, clk, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Signal(context.Background()); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("Signal error %v, want no answer", err)
	}
	pm.fm.play(loadTranscript(t, "quectel.txt"))
	<-time.After(700 * time.Millisecond) // the late answer is in the port's buffer now
	clk.Advance(RetryMin * 2)
	s, err := m.Signal(context.Background())
	if err != nil || s.Operator != "EE" || show(s.RSRPdBm) != "-95" {
		t.Fatalf("after the late answer: %+v, %v", s, err)
	}
}

// TestModemReenumerates: the port disappears (the modem resets and its USB
// device goes away), readings fail with a clear error and back off, and the
// modem is read again when its port comes back as a new device.
func TestModemReenumerates(t *testing.T) {
	pm := newPTYModem(t, "quectel.txt")
	clk := clock.NewFake(t0)
	m, err := Open(pm.link, Quectel, 300*time.Millisecond, clk, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Signal(context.Background()); err != nil {
		t.Fatal(err)
	}
	pm.vanish()
	_, err = m.Signal(context.Background())
	if err == nil || !strings.Contains(err.Error(), "check the modem is connected") {
		t.Fatalf("Signal with the port gone: %v", err)
	}
	t.Logf("port gone: %v", err)
	var ue *UnavailableError
	clk.Advance(RetryMin * 2)
	if _, err := m.Signal(context.Background()); err == nil || errors.As(err, &ue) {
		t.Fatalf("second try with the port gone: %v, want an open error", err)
	}
	_, err = m.Signal(context.Background())
	if !errors.As(err, &ue) || ue.Failures != 2 || ue.Until.Sub(clk.Now()) < RetryMin*12/10 {
		t.Fatalf("after two failures: %v, want a longer backoff", err)
	}
	pm.reappear()
	clk.Advance(RetryMax * 2)
	s, err := m.Signal(context.Background())
	if err != nil || !s.Registered || s.Operator != "EE" {
		t.Fatalf("after the port came back: %+v, %v", s, err)
	}
}

// TestModemVanishesMidReading: the port disappears while the modem is
// answering; the reading fails as a lost port, and the next one, after the
// backoff, reads the modem on its new port.
func TestModemVanishesMidReading(t *testing.T) {
	pm := newPTYModem(t, "vanish.txt")
	clk := clock.NewFake(t0)
	m, err := Open(pm.link, Quectel, 300*time.Millisecond, clk, quiet())
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Signal(context.Background())
	if !errors.Is(err, ErrPortLost) && !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("Signal error %v, want the port lost", err)
	}
	t.Logf("vanished: %v", err)
	pm.vanish()
	pm.fm.play(loadTranscript(t, "quectel.txt"))
	pm.reappear()
	clk.Advance(RetryMin * 2)
	if s, err := m.Signal(context.Background()); err != nil || show(s.RSRPdBm) != "-95" {
		t.Fatalf("after the port came back: %+v, %v", s, err)
	}
}

// TestModemConcurrent: readings from several goroutines take turns on the
// port, and one that waits too long for its turn gives up.
func TestModemConcurrent(t *testing.T) {
	path, _ := startModem(t, "quectel.txt")
	m, err := Open(path, Quectel, 300*time.Millisecond, clock.NewFake(t0), quiet())
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 3 {
		go func() {
			_, err := m.Signal(context.Background())
			errs <- err
		}()
	}
	go func() {
		_, err := m.Clock(context.Background())
		errs <- err
	}()
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	m.sem <- struct{}{} // the port is busy
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := m.Signal(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Signal while the port is busy: %v", err)
	}
	<-m.sem
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("/dev/null", "huawei", 0, clock.NewFake(t0), quiet()); err == nil || !strings.Contains(err.Error(), "use quectel, simcom or generic") {
		t.Errorf("unknown flavor: %v", err)
	}
	m, err := Open(filepath.Join(t.TempDir(), "ttyUSB2"), Quectel, 0, clock.NewFake(t0), quiet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Signal(context.Background()); err == nil || !strings.Contains(err.Error(), "check the modem is connected") {
		t.Errorf("missing port: %v", err)
	}
}
