package vedirect

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func fmtp(p *float64) string {
	if p == nil {
		return "nil"
	}
	return strings.TrimRight(strings.TrimRight(strconvF(*p), "0"), ".")
}

func strconvF(f float64) string { return strconv.FormatFloat(f, 'f', 6, 64) }

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		block   Block
		check   func(Values) string // "" when right
		wantErr string
	}{
		{"mppt", Block{{"V", "12850"}, {"I", "-3200"}, {"VPV", "18420"}, {"PPV", "45"}, {"CS", "3"}, {"MPPT", "2"}, {"ERR", "0"}, {"LOAD", "ON"}, {"IL", "600"}, {"H19", "10342"}, {"H20", "21"}, {"H21", "88"}, {"H22", "35"}, {"H23", "97"}},
			func(v Values) string {
				got := strings.Join([]string{fmtp(v.BatteryV), fmtp(v.BatteryA), fmtp(v.PanelV), fmtp(v.PanelW), fmtp(v.LoadA), fmtp(v.YieldTotalWh), fmtp(v.YieldTodayWh), fmtp(v.MaxPowerTodayW), fmtp(v.YieldYesterdayWh), fmtp(v.MaxPowerYesterdayW), v.ChargeState, v.Tracker, v.Error}, "|")
				want := "12.85|-3.2|18.42|45|0.6|103420|210|88|350|97|bulk|tracking|no error"
				if got != want || v.LoadOn == nil || !*v.LoadOn {
					return got + " want " + want
				}
				return ""
			}, ""},
		{"bmv", Block{{"V", "26201"}, {"SOC", "876"}, {"TTG", "3912"}},
			func(v Values) string {
				if fmtp(v.SOCPercent) != "87.6" || v.TimeToGo == nil || *v.TimeToGo != 3912*time.Minute {
					return "soc " + fmtp(v.SOCPercent)
				}
				return ""
			}, ""},
		{"unknowns stay nil", Block{{"SOC", "---"}, {"TTG", "-1"}, {"PID", "0xA053"}},
			func(v Values) string {
				if v.SOCPercent != nil || v.TimeToGo != nil || v.BatteryV != nil || v.ChargeState != "" || v.LoadOn != nil {
					return "made-up values"
				}
				return ""
			}, ""},
		{"unknown codes named", Block{{"CS", "42"}, {"ERR", "99"}, {"MPPT", "7"}},
			func(v Values) string {
				if v.ChargeState != "cs 42" || v.Error != "error 99" || v.Tracker != "mppt 7" {
					return v.ChargeState + "|" + v.Error + "|" + v.Tracker
				}
				return ""
			}, ""},
		{"out of range", Block{{"SOC", "1500"}, {"V", "12x"}, {"LOAD", "MAYBE"}, {"I", "100"}},
			func(v Values) string {
				if v.SOCPercent != nil || v.BatteryV != nil || v.LoadOn != nil || fmtp(v.BatteryA) != "0.1" {
					return "bad fields filled or good field lost"
				}
				return ""
			}, "SOC=\"1500\": outside 0..1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Decode(tt.block)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Decode error %v, want one containing %q", err, tt.wantErr)
			}
			if msg := tt.check(v); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestReading(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	v, _ := Decode(Block{{"V", "12500"}, {"IL", "800"}, {"CS", "5"}, {"H20", "12"}})
	r := v.Reading(at)
	if !r.Time.Equal(at) || fmtp(r.LoadW) != "10" || r.ChargeState != "float" || fmtp(r.YieldTodayWh) != "120" || r.PanelW != nil || r.SOCPercent != nil {
		t.Errorf("reading %+v", r)
	}
	v, _ = Decode(Block{{"IL", "800"}})
	if r := v.Reading(at); r.LoadW != nil {
		t.Errorf("load power without battery voltage: %v", *r.LoadW)
	}
}
