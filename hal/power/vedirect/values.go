package vedirect

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/outpost-cctv/outpost/hal/power"
)

// Values are a block's fields in SI units. A nil pointer or empty string is
// a field the block did not carry, carried as "---", or carried with a value
// out of range.
type Values struct {
	// BatteryV is the battery voltage (V, sent in mV).
	BatteryV *float64
	// BatteryA is the battery current (I, sent in mA), positive while
	// charging.
	BatteryA *float64
	// PanelV is the panel voltage (VPV, sent in mV); PanelW the panel power
	// (PPV, W).
	PanelV *float64
	PanelW *float64
	// LoadA is the load output current (IL, sent in mA); LoadOn the load
	// output state (LOAD, ON or OFF).
	LoadA  *float64
	LoadOn *bool
	// SOCPercent is the state of charge (SOC, sent in per mille).
	SOCPercent *float64
	// TimeToGo is the battery monitor's estimate of time left (TTG, sent in
	// minutes); nil when the device says infinite (-1) or does not know.
	TimeToGo *time.Duration
	// ChargeState is the charge state in words (CS), e.g. "bulk"; "cs 42"
	// for a code this package does not know.
	ChargeState string
	// Tracker is the MPPT's tracker mode in words (MPPT).
	Tracker string
	// Error is the charger's error in words (ERR), "" for none reported and
	// "no error" for code 0.
	Error string
	// YieldTotalWh, YieldTodayWh and YieldYesterdayWh are the energy
	// harvested (H19, H20, H22, sent in 0.01 kWh).
	YieldTotalWh     *float64
	YieldTodayWh     *float64
	YieldYesterdayWh *float64
	// MaxPowerTodayW and MaxPowerYesterdayW are the day's peak panel power
	// (H21, H23, W).
	MaxPowerTodayW     *float64
	MaxPowerYesterdayW *float64
}

var chargeStates = map[int]string{
	0: "off", 1: "low power", 2: "fault", 3: "bulk", 4: "absorption", 5: "float",
	6: "storage", 7: "equalize", 9: "inverting", 11: "power supply",
	245: "starting up", 246: "repeated absorption", 247: "auto equalize",
	248: "battery safe", 252: "external control",
}

var trackerModes = map[int]string{0: "off", 1: "voltage or current limited", 2: "tracking"}

var errorNames = map[int]string{
	0: "no error", 2: "battery voltage too high", 17: "charger temperature too high",
	18: "charger over current", 19: "charger current reversed", 20: "bulk time limit exceeded",
	21: "current sensor issue", 26: "terminals overheated", 28: "converter issue",
	33: "panel voltage too high", 34: "panel current too high",
	38: "input shutdown: battery voltage too high", 39: "input shutdown: current while off",
	65: "lost communication with a device", 66: "synchronised charging configuration issue",
	67: "BMS connection lost", 68: "network misconfigured", 116: "factory calibration data lost",
	117: "invalid or incompatible firmware", 119: "user settings invalid",
}

// ChargeStateName returns the words for a CS code.
func ChargeStateName(code int) string {
	if s, ok := chargeStates[code]; ok {
		return s
	}
	return "cs " + strconv.Itoa(code)
}

// ErrorName returns the words for an ERR code.
func ErrorName(code int) string {
	if s, ok := errorNames[code]; ok {
		return s
	}
	return "error " + strconv.Itoa(code)
}

// Decode maps a block's fields to Values. Fields it does not know are
// ignored. A known field with a value that does not parse or is out of range
// stays unknown, and is named in the returned error; the other fields are
// still filled.
func Decode(b Block) (Values, error) {
	var v Values
	var errs []error
	bad := func(f Field, why string) {
		errs = append(errs, fmt.Errorf("vedirect: field %s=%q: %s", f.Label, f.Value, why))
	}
	num := func(f Field, min, max int64) (int64, bool) {
		if f.Value == "---" {
			return 0, false
		}
		n, err := strconv.ParseInt(f.Value, 10, 64)
		if err != nil {
			bad(f, "not a whole number")
			return 0, false
		}
		if n < min || n > max {
			bad(f, fmt.Sprintf("outside %d..%d", min, max))
			return 0, false
		}
		return n, true
	}
	scaled := func(f Field, min, max int64, scale float64) *float64 {
		if n, ok := num(f, min, max); ok {
			return power.F(float64(n) * scale)
		}
		return nil
	}
	for _, f := range b {
		switch f.Label {
		case "V":
			v.BatteryV = scaled(f, 0, 100_000, 0.001)
		case "I":
			v.BatteryA = scaled(f, -1_000_000, 1_000_000, 0.001)
		case "VPV":
			v.PanelV = scaled(f, 0, 500_000, 0.001)
		case "PPV":
			v.PanelW = scaled(f, 0, 100_000, 1)
		case "IL":
			v.LoadA = scaled(f, 0, 1_000_000, 0.001)
		case "LOAD":
			switch f.Value {
			case "ON":
				v.LoadOn = ptr(true)
			case "OFF":
				v.LoadOn = ptr(false)
			default:
				bad(f, "not ON or OFF")
			}
		case "SOC":
			v.SOCPercent = scaled(f, 0, 1000, 0.1)
		case "TTG":
			if n, ok := num(f, -1, 1<<31); ok && n >= 0 {
				v.TimeToGo = ptr(time.Duration(n) * time.Minute)
			}
		case "CS":
			if n, ok := num(f, 0, 255); ok {
				v.ChargeState = ChargeStateName(int(n))
			}
		case "MPPT":
			if n, ok := num(f, 0, 255); ok {
				if s, known := trackerModes[int(n)]; known {
					v.Tracker = s
				} else {
					v.Tracker = "mppt " + strconv.Itoa(int(n))
				}
			}
		case "ERR":
			if n, ok := num(f, 0, 255); ok {
				v.Error = ErrorName(int(n))
			}
		case "H19":
			v.YieldTotalWh = scaled(f, 0, 1<<40, 10)
		case "H20":
			v.YieldTodayWh = scaled(f, 0, 1<<31, 10)
		case "H21":
			v.MaxPowerTodayW = scaled(f, 0, 100_000, 1)
		case "H22":
			v.YieldYesterdayWh = scaled(f, 0, 1<<31, 10)
		case "H23":
			v.MaxPowerYesterdayW = scaled(f, 0, 100_000, 1)
		}
	}
	return v, errors.Join(errs...)
}

// Reading returns the values the agent publishes, taken at t. The load's
// power is the load output current times the battery voltage, the voltage
// the load output switches; it is unknown unless both are known.
func (v Values) Reading(t time.Time) power.Reading {
	r := power.Reading{
		Time:         t,
		BatteryV:     v.BatteryV,
		BatteryA:     v.BatteryA,
		SOCPercent:   v.SOCPercent,
		PanelV:       v.PanelV,
		PanelW:       v.PanelW,
		ChargeState:  v.ChargeState,
		YieldTodayWh: v.YieldTodayWh,
	}
	if v.Error != "" && v.Error != ErrorName(0) {
		r.ControllerError = v.Error
	}
	if v.LoadA != nil && v.BatteryV != nil {
		r.LoadW = power.F(*v.LoadA * *v.BatteryV)
	}
	return r
}

func ptr[T any](v T) *T { return &v }
