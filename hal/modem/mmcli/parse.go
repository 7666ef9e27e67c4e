package mmcli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// str is an mmcli JSON value: normally a string, "--" when unavailable.
// A number, a boolean or null is accepted too, as its text ("" for null).
type str string

func (s *str) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = str(v)
	case bytes.Equal(b, []byte("null")):
		*s = ""
	case len(b) > 0 && (b[0] == '{' || b[0] == '['):
		*s = "" // a structure where a value was expected: unknown
	default:
		*s = str(b)
	}
	return nil
}

// known returns the value, "" when mmcli says it is unavailable.
func (s str) known() string {
	v := strings.TrimSpace(string(s))
	if v == "--" || strings.EqualFold(v, "unknown") {
		return ""
	}
	return v
}

// strList is an mmcli JSON list of strings; a single string is a list of
// one, "--" and an empty string a list of none.
type strList []string

func (l *strList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var vs []str
		if err := json.Unmarshal(b, &vs); err != nil {
			return err
		}
		*l = nil
		for _, v := range vs {
			if k := v.known(); k != "" {
				*l = append(*l, k)
			}
		}
		return nil
	}
	var v str
	if err := v.UnmarshalJSON(b); err != nil {
		return err
	}
	*l = nil
	for _, p := range strings.Split(v.known(), ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// number parses a value within lo..hi; anything else is unknown.
func number(s str, lo, hi float64) *float64 {
	v, err := strconv.ParseFloat(s.known(), 64)
	if err != nil || math.IsNaN(v) || v < lo || v > hi {
		return nil
	}
	return &v
}

func counter(s str) *uint64 {
	v, err := strconv.ParseUint(s.known(), 10, 64)
	if err != nil {
		return nil
	}
	return &v
}

// Status is what `mmcli -m <modem> -J` says about the modem.
type Status struct {
	// DBusPath identifies the modem object; it changes when the modem
	// re-appears.
	DBusPath string
	// State is the modem's state: "connected", "registered", "searching",
	// "enabled", "disabled", "locked", "failed", ..., empty when unknown.
	State string
	// FailedReason says why the state is "failed", e.g. "sim-missing".
	FailedReason string
	// Operator is the operator's name, or its MCC+MNC code when the modem
	// has no name; OperatorCode is the code.
	Operator, OperatorCode string
	// Registration is the 3GPP registration state: "home", "roaming",
	// "searching", "denied", "idle", ..., empty when unknown.
	Registration string
	// AccessTechnologies are ModemManager's words: "lte", "5gnr", "umts",
	// "hspa-plus", "gsm", ...
	AccessTechnologies []string
	// QualityPct is ModemManager's 0-100 % signal quality.
	QualityPct *float64
	// Bearers are the D-Bus paths of the modem's bearers.
	Bearers []string
}

// Registered reports whether the modem is registered for data on its home
// network or roaming. The "sms-only" states are not: they carry no data.
func (s Status) Registered() bool {
	switch s.Registration {
	case "home", "roaming", "home-csfb-not-preferred", "roaming-csfb-not-preferred":
		return true
	}
	return false
}

// Tech returns the radio technology in the agent's words: "5g-nsa" when
// the modem is on LTE and 5G NR at once, "5g-sa", "lte", "lte-m", "nb-iot",
// "umts", "gsm", or "" when unknown.
func (s Status) Tech() string {
	has := map[string]bool{}
	for _, t := range s.AccessTechnologies {
		has[strings.ToLower(t)] = true
	}
	switch {
	case has["5gnr"] && has["lte"]:
		return "5g-nsa"
	case has["5gnr"]:
		return "5g-sa"
	case has["lte"]:
		return "lte"
	case has["lte-cat-m"]:
		return "lte-m"
	case has["lte-nb-iot"]:
		return "nb-iot"
	case has["umts"], has["hsdpa"], has["hsupa"], has["hspa"], has["hspa-plus"]:
		return "umts"
	case has["gsm"], has["gsm-compact"], has["gprs"], has["edge"]:
		return "gsm"
	}
	return ""
}

type modemJSON struct {
	Modem *struct {
		DBusPath str `json:"dbus-path"`
		ThreeGPP struct {
			OperatorName      str `json:"operator-name"`
			OperatorCode      str `json:"operator-code"`
			RegistrationState str `json:"registration-state"`
		} `json:"3gpp"`
		Generic struct {
			AccessTechnologies strList `json:"access-technologies"`
			Bearers            strList `json:"bearers"`
			SignalQuality      struct {
				Value str `json:"value"`
			} `json:"signal-quality"`
			State             str `json:"state"`
			StateFailedReason str `json:"state-failed-reason"`
		} `json:"generic"`
	} `json:"modem"`
}

// ParseStatus parses the output of `mmcli -m <modem> -J`.
func ParseStatus(data []byte) (Status, error) {
	var j modemJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return Status{}, fmt.Errorf("mmcli: modem status is not mmcli's JSON: %w", err)
	}
	if j.Modem == nil {
		return Status{}, fmt.Errorf("mmcli: modem status has no \"modem\" object")
	}
	m := j.Modem
	s := Status{
		DBusPath:           m.DBusPath.known(),
		State:              m.Generic.State.known(),
		FailedReason:       m.Generic.StateFailedReason.known(),
		Operator:           m.ThreeGPP.OperatorName.known(),
		OperatorCode:       m.ThreeGPP.OperatorCode.known(),
		Registration:       m.ThreeGPP.RegistrationState.known(),
		AccessTechnologies: m.Generic.AccessTechnologies,
		QualityPct:         number(m.Generic.SignalQuality.Value, 0, 100),
		Bearers:            m.Generic.Bearers,
	}
	if s.Operator == "" {
		s.Operator = s.OperatorCode
	}
	return s, nil
}

// Measurements is what `mmcli -m <modem> --signal-get -J` says. Nil means
// unknown.
type Measurements struct {
	// Rate is how often ModemManager polls the signal, 0 when it was not
	// set up (every value is then unknown).
	Rate time.Duration
	// LTE: RSRP, RSRQ and RSSI in dBm/dB, SNR in dB.
	LTERSRPdBm, LTERSRQdB, LTERSSIdBm, LTESNRdB *float64
	// NR (the "5g" block): RSRP, RSRQ and SNR.
	NRRSRPdBm, NRRSRQdB, NRSNRdB *float64
	// UMTSRSSIdBm and GSMRSSIdBm are the older technologies' RSSI.
	UMTSRSSIdBm, GSMRSSIdBm *float64
}

type signalJSON struct {
	Modem *struct {
		Signal *struct {
			Refresh struct {
				Rate str `json:"rate"`
			} `json:"refresh"`
			LTE struct {
				RSRP str `json:"rsrp"`
				RSRQ str `json:"rsrq"`
				RSSI str `json:"rssi"`
				SNR  str `json:"snr"`
			} `json:"lte"`
			NR struct {
				RSRP str `json:"rsrp"`
				RSRQ str `json:"rsrq"`
				SNR  str `json:"snr"`
			} `json:"5g"`
			UMTS struct {
				RSSI str `json:"rssi"`
			} `json:"umts"`
			GSM struct {
				RSSI str `json:"rssi"`
			} `json:"gsm"`
		} `json:"signal"`
	} `json:"modem"`
}

// ParseSignal parses the output of `mmcli -m <modem> --signal-get -J`.
func ParseSignal(data []byte) (Measurements, error) {
	var j signalJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return Measurements{}, fmt.Errorf("mmcli: signal is not mmcli's JSON: %w", err)
	}
	if j.Modem == nil || j.Modem.Signal == nil {
		return Measurements{}, fmt.Errorf("mmcli: signal has no \"modem.signal\" object")
	}
	s := j.Modem.Signal
	var m Measurements
	if r := number(s.Refresh.Rate, 0, 86400); r != nil {
		m.Rate = time.Duration(*r * float64(time.Second))
	}
	m.LTERSRPdBm = number(s.LTE.RSRP, -156, -31)
	m.LTERSRQdB = number(s.LTE.RSRQ, -43, 20)
	m.LTERSSIdBm = number(s.LTE.RSSI, -130, 0)
	m.LTESNRdB = number(s.LTE.SNR, -30, 50)
	m.NRRSRPdBm = number(s.NR.RSRP, -156, -31)
	m.NRRSRQdB = number(s.NR.RSRQ, -43, 20)
	m.NRSNRdB = number(s.NR.SNR, -30, 50)
	m.UMTSRSSIdBm = number(s.UMTS.RSSI, -130, 0)
	m.GSMRSSIdBm = number(s.GSM.RSSI, -130, 0)
	return m, nil
}

// Bearer is what `mmcli -b <bearer> -J` says about a packet data
// connection. Nil means unknown.
type Bearer struct {
	DBusPath  string
	Connected bool
	// Interface is the network interface, e.g. "wwan0".
	Interface string
	// RxBytes and TxBytes count this connection; TotalRxBytes and
	// TotalTxBytes every connection of the bearer.
	RxBytes, TxBytes, TotalRxBytes, TotalTxBytes *uint64
	// Duration is how long this connection has been up.
	Duration *time.Duration
}

type bearerJSON struct {
	Bearer *struct {
		DBusPath str `json:"dbus-path"`
		Status   struct {
			Connected str `json:"connected"`
			Interface str `json:"interface"`
		} `json:"status"`
		Stats struct {
			BytesRx      str `json:"bytes-rx"`
			BytesTx      str `json:"bytes-tx"`
			TotalBytesRx str `json:"total-bytes-rx"`
			TotalBytesTx str `json:"total-bytes-tx"`
			Duration     str `json:"duration"`
		} `json:"stats"`
	} `json:"bearer"`
}

// ParseBearer parses the output of `mmcli -b <bearer> -J`.
func ParseBearer(data []byte) (Bearer, error) {
	var j bearerJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return Bearer{}, fmt.Errorf("mmcli: bearer is not mmcli's JSON: %w", err)
	}
	if j.Bearer == nil {
		return Bearer{}, fmt.Errorf("mmcli: bearer has no \"bearer\" object")
	}
	b := j.Bearer
	out := Bearer{
		DBusPath:     b.DBusPath.known(),
		Connected:    b.Status.Connected.known() == "yes",
		Interface:    b.Status.Interface.known(),
		RxBytes:      counter(b.Stats.BytesRx),
		TxBytes:      counter(b.Stats.BytesTx),
		TotalRxBytes: counter(b.Stats.TotalBytesRx),
		TotalTxBytes: counter(b.Stats.TotalBytesTx),
	}
	// Up to 100 years; more is not a duration mmcli would print.
	if s := counter(b.Stats.Duration); s != nil && *s < 100*365*24*3600 {
		d := time.Duration(*s) * time.Second
		out.Duration = &d
	}
	return out, nil
}
