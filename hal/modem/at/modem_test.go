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
		cmds         []string
		wantErr      error
	}{
		{"quectel.txt", Quectel, "true|EE|lte|-95|-11|12|fair",
			[]string{"ATE0", "AT+CEREG?", "AT+COPS?", "AT+CSQ", `AT+QENG="servingcell"`}, nil},
		{"nsa.txt", Quectel, "true|Vodafone UK|5g-nsa|-88|-9|18|good", nil, nil},
		{"generic.txt", Quectel, "true|23430|lte|-101|-10|nil|poor",
			[]string{"ATE0", "AT+CEREG?", "AT+COPS?", "AT+CSQ", `AT+QENG="servingcell"`, "AT+CESQ"}, nil},
		{"generic.txt", Generic, "true|23430|lte|-101|-10|nil|poor",
			[]string{"ATE0", "AT+CEREG?", "AT+COPS?", "AT+CSQ", "AT+CESQ"}, nil},
		{"nosim.txt", Quectel, "false|||nil|nil|nil|none", nil, nil},
		{"silent.txt", Quectel, "", nil, ErrNoAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.flavor, func(t *testing.T) {
			path, fm := startModem(t, tt.file)
			m, err := Open(path, tt.flavor, 300*time.Millisecond, clock.NewFake(t0), quiet())
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
			}
			if tt.cmds != nil {
				if got := fm.commands()[:len(tt.cmds)]; !reflect.DeepEqual(got, tt.cmds) {
					t.Errorf("commands %q, want %q", got, tt.cmds)
				}
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("/dev/null", "huawei", 0, clock.NewFake(t0), quiet()); err == nil || !strings.Contains(err.Error(), "use quectel or generic") {
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
