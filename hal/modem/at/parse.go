package at

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// fields splits an information response "+NAME: a,"b",c" into its
// parameters, without quotes. Commas inside quotes do not split.
func fields(line string) []string {
	if i := strings.IndexByte(line, ':'); i >= 0 {
		line = line[i+1:]
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return nil
	}
	var out []string
	var cur strings.Builder
	quoted := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, strings.TrimSpace(cur.String()))
}

// isQuoted reports whether parameter i of line is in quotes.
func isQuoted(line string, i int) bool {
	if j := strings.IndexByte(line, ':'); j >= 0 {
		line = line[j+1:]
	}
	n, quoted, start := 0, false, true
	for k := 0; k < len(line); k++ {
		c := line[k]
		if start && c != ' ' {
			if n == i {
				return c == '"'
			}
			start = false
		}
		switch {
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			n++
			start = true
		}
	}
	return false
}

func atoi(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil
}

func f(v float64) *float64 { return &v }

// CSQ is the answer to AT+CSQ.
type CSQ struct {
	// RSSIdBm is the received signal strength, nil when the modem does not
	// know (99).
	RSSIdBm *float64
}

// ParseCSQ parses "+CSQ: <rssi>,<ber>": rssi 0-31 is -113 to -51 dBm in
// steps of 2, 99 unknown.
func ParseCSQ(line string) (CSQ, error) {
	p := fields(line)
	if !strings.HasPrefix(line, "+CSQ:") || len(p) < 1 {
		return CSQ{}, fmt.Errorf("at: %q is not a +CSQ response", line)
	}
	n, ok := atoi(p[0])
	switch {
	case !ok:
		return CSQ{}, fmt.Errorf("at: +CSQ rssi %q is not a number", p[0])
	case n == 99:
		return CSQ{}, nil
	case n < 0 || n > 31:
		return CSQ{}, fmt.Errorf("at: +CSQ rssi %d is outside 0-31 and 99", n)
	}
	return CSQ{RSSIdBm: f(float64(-113 + 2*n))}, nil
}

// Registration is the answer to AT+CEREG?.
type Registration struct {
	// Stat is the 27.007 registration status: 1 home, 5 roaming, 2
	// searching, 3 denied, 0 not registered.
	Stat int
	// TAC and CellID are hexadecimal strings, empty unless the modem was
	// asked for them (AT+CEREG=2).
	TAC, CellID string
	// AcT is the access technology, -1 when not given.
	AcT int
}

// Registered reports whether the modem is on a home or roaming network.
func (r Registration) Registered() bool { return r.Stat == 1 || r.Stat == 5 }

// ParseCEREG parses the solicited "+CEREG: <n>,<stat>[,<tac>,<ci>,<AcT>]"
// among lines, skipping unsolicited "+CEREG: <stat>[,...]" codes that may
// arrive in the middle of the response: the solicited form is the one whose
// second parameter is an unquoted number.
func ParseCEREG(lines []string) (Registration, error) {
	for _, line := range lines {
		if !strings.HasPrefix(line, "+CEREG:") {
			continue
		}
		p := fields(line)
		if len(p) < 2 || isQuoted(line, 1) {
			continue
		}
		stat, ok := atoi(p[1])
		if _, nok := atoi(p[0]); !ok || !nok {
			continue
		}
		if stat < 0 || stat > 10 {
			return Registration{}, fmt.Errorf("at: +CEREG stat %d is outside 0-10", stat)
		}
		r := Registration{Stat: stat, AcT: -1}
		if len(p) >= 4 {
			r.TAC, r.CellID = p[2], p[3]
		}
		if len(p) >= 5 {
			if a, ok := atoi(p[4]); ok {
				r.AcT = a
			}
		}
		return r, nil
	}
	return Registration{}, fmt.Errorf("at: no +CEREG response in %q", lines)
}

// Operator is the answer to AT+COPS?.
type Operator struct {
	// Name is the operator as the modem gives it (long or short name, or
	// MCC+MNC digits), empty when not registered.
	Name string
	// Tech is the radio technology in the agent's words ("lte", "5g-nsa",
	// ...), empty when unknown.
	Tech string
}

var techs = map[int]string{
	0: "gsm", 1: "gsm", 2: "umts", 3: "gsm", 4: "umts", 5: "umts", 6: "umts",
	7: "lte", 8: "lte-m", 9: "nb-iot", 10: "lte", 11: "5g-sa", 12: "5g-sa", 13: "5g-nsa",
}

// TechName returns the words for a 27.007 AcT number, "" when unknown.
func TechName(act int) string { return techs[act] }

// ParseCOPS parses "+COPS: <mode>[,<format>,<oper>[,<AcT>]]".
func ParseCOPS(line string) (Operator, error) {
	p := fields(line)
	if !strings.HasPrefix(line, "+COPS:") || len(p) < 1 {
		return Operator{}, fmt.Errorf("at: %q is not a +COPS response", line)
	}
	var o Operator
	if len(p) >= 3 {
		o.Name = p[2]
	}
	if len(p) >= 4 {
		if a, ok := atoi(p[3]); ok {
			o.Tech = TechName(a)
		}
	}
	return o, nil
}

// LTE is the serving LTE cell's measurements. Nil means unknown.
type LTE struct {
	RSRPdBm, RSRQdB, RSSIdBm, SINRdB *float64
	// CellID is the hexadecimal cell identity and Band the E-UTRA band,
	// 0 when unknown.
	CellID string
	Band   int
	// TAC is the hexadecimal tracking area code, empty when unknown.
	TAC string
}

// ParseQENG parses Quectel's answer to AT+QENG="servingcell". The LTE
// parameters follow the "LTE" parameter, in the single-line LTE form
// (+QENG: "servingcell",<state>,"LTE",...) and in the line of the 5G NSA
// form (+QENG: "LTE",...):
//
//	"LTE",<is_tdd>,<MCC>,<MNC>,<cellID>,<PCID>,<earfcn>,<band>,<ul_bw>,<dl_bw>,<TAC>,<RSRP>,<RSRQ>,<RSSI>,<SINR>,...
//
// SINR is taken in dB as these modems report it here. It returns the zero
// LTE, no error, when the modem is not on an LTE cell ("SEARCH",
// "LIMSRV", or another technology).
func ParseQENG(lines []string) (LTE, error) {
	for _, line := range lines {
		if !strings.HasPrefix(line, "+QENG:") {
			continue
		}
		p := fields(line)
		i := -1
		for k, v := range p {
			if v == "LTE" {
				i = k
				break
			}
		}
		if i < 0 {
			continue
		}
		p = p[i:]
		if len(p) < 15 {
			return LTE{}, fmt.Errorf("at: +QENG LTE line has %d parameters, want at least 15: %q", len(p), line)
		}
		var l LTE
		l.CellID = p[4]
		if len(p) > 10 {
			l.TAC = hexID(p[10])
		}
		if b, ok := atoi(p[7]); ok && b > 0 && b < 256 {
			l.Band = b
		}
		l.RSRPdBm = inRange(p[11], -156, -31)
		l.RSRQdB = inRange(p[12], -43, 20)
		l.RSSIdBm = inRange(p[13], -130, 0)
		l.SINRdB = inRange(p[14], -30, 50)
		return l, nil
	}
	return LTE{}, nil
}

// inRange parses s as a number and returns it if it is within lo..hi; a
// value outside (such as "-" or the modems' "-32768") is unknown.
func inRange(s string, lo, hi float64) *float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < lo || v > hi {
		return nil
	}
	return f(v)
}

// ParseCESQ parses "+CESQ: <rxlev>,<ber>,<rscp>,<ecno>,<rsrq>,<rsrp>". RSRQ
// 0-34 is -20 to -3 dB in steps of 0.5 and RSRP 0-97 is -141 to -44 dBm,
// each the lower bound of its 27.007 range; 255 is unknown.
func ParseCESQ(line string) (LTE, error) {
	p := fields(line)
	if !strings.HasPrefix(line, "+CESQ:") || len(p) < 6 {
		return LTE{}, fmt.Errorf("at: %q is not a +CESQ response", line)
	}
	var l LTE
	if n, ok := atoi(p[4]); ok && n >= 0 && n <= 34 {
		l.RSRQdB = f(-20 + 0.5*float64(n))
	} else if !ok || n != 255 {
		return LTE{}, fmt.Errorf("at: +CESQ rsrq %q is outside 0-34 and 255", p[4])
	}
	if n, ok := atoi(p[5]); ok && n >= 0 && n <= 97 {
		l.RSRPdBm = f(-141 + float64(n))
	} else if !ok || n != 255 {
		return LTE{}, fmt.Errorf("at: +CESQ rsrp %q is outside 0-97 and 255", p[5])
	}
	return l, nil
}

// hexID normalises a hexadecimal identity ("0x1A2B", "01a2b3c4") to upper
// case without a prefix or leading zeros; "" when s is not hexadecimal.
func hexID(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if s == "" || len(s) > 16 {
		return ""
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return ""
	}
	return strings.ToUpper(strconv.FormatUint(v, 16))
}

// NR is the 5G NR cell's measurements. Nil means unknown.
type NR struct {
	RSRPdBm, RSRQdB, SINRdB *float64
	// Band is the NR band (78 for n78), 0 when unknown.
	Band int
}

// ParseQENGNR parses the 5G NR part of Quectel's answer to
// AT+QENG="servingcell", in the NSA form
//
//	+QENG: "NR5G-NSA",<MCC>,<MNC>,<PCID>,<RSRP>,<SINR>,<RSRQ>,<ARFCN>,<band>,...
//
// and the SA form
//
//	+QENG: "servingcell",<state>,"NR5G-SA",<duplex>,<MCC>,<MNC>,<cellID>,<PCID>,<TAC>,<ARFCN>,<band>,<NR_DL_bw>,<RSRP>,<RSRQ>,<SINR>,...
//
// It returns the zero NR, no error, when the modem is not on an NR cell.
func ParseQENGNR(lines []string) (NR, error) {
	for _, line := range lines {
		if !strings.HasPrefix(line, "+QENG:") {
			continue
		}
		p := fields(line)
		for k, v := range p {
			switch v {
			case "NR5G-NSA":
				q := p[k:]
				if len(q) < 9 {
					return NR{}, fmt.Errorf("at: +QENG NR5G-NSA line has %d parameters, want at least 9: %q", len(q), line)
				}
				n := NR{RSRPdBm: inRange(q[4], -156, -31), SINRdB: inRange(q[5], -30, 50), RSRQdB: inRange(q[6], -43, 20)}
				n.Band = band(q[8])
				return n, nil
			case "NR5G-SA":
				q := p[k:]
				if len(q) < 13 {
					return NR{}, fmt.Errorf("at: +QENG NR5G-SA line has %d parameters, want at least 13: %q", len(q), line)
				}
				n := NR{RSRPdBm: inRange(q[10], -156, -31), RSRQdB: inRange(q[11], -43, 20), SINRdB: inRange(q[12], -30, 50)}
				n.Band = band(q[8])
				return n, nil
			}
		}
	}
	return NR{}, nil
}

// band parses a band number, alone ("20") or at the end of a name
// ("EUTRAN-BAND20", "NR5G_BAND78"); 0 when there is none or it is out of
// 1-255.
func band(s string) int {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	if i == len(s) || len(s)-i > 3 {
		return 0
	}
	b, _ := strconv.Atoi(s[i:])
	if b < 1 || b > 255 {
		return 0
	}
	return b
}

// CPSI is SIMCom's answer to AT+CPSI?: the system the modem is on and the
// serving cell.
type CPSI struct {
	// Mode is the system mode as the modem gives it: "LTE", "LTE CAT-M1",
	// "NR5G_SA", "WCDMA", "GSM", "NO SERVICE", ...
	Mode string
	// Online is true when the operation mode is "Online".
	Online bool
	// PLMN is the serving network's "MCC-MNC", e.g. "234-15".
	PLMN string
	// Tech is the radio technology in the agent's words ("lte", "5g-nsa",
	// "5g-sa", "lte-m", ...), empty when unknown.
	Tech string
	LTE  LTE
	NR   NR
}

var cpsiTechs = map[string]string{
	"GSM": "gsm", "WCDMA": "umts", "TDS-CDMA": "umts", "LTE": "lte", "LTE CAT-M1": "lte-m",
	"CAT-M": "lte-m", "LTE NB-IOT": "nb-iot", "NB-IOT": "nb-iot", "NR5G_SA": "5g-sa",
}

// ParseCPSI parses SIMCom's answer to AT+CPSI? (SIM7000, SIM7080, SIM7600,
// A76xx, SIM8200). On LTE the parameters are
//
//	+CPSI: LTE,<operation mode>,<MCC>-<MNC>,<TAC>,<SCellID>,<PCellID>,<band>,<earfcn>,<dlbw>,<ulbw>,<RSRQ>,<RSRP>,<RSSI>,<RSSNR>
//	+CPSI: LTE,Online,234-15,0x1A2B,12345678,123,EUTRAN-BAND20,6300,5,5,-94,-1003,-678,15
//
// TAC is hexadecimal with "0x"; SCellID, the E-UTRAN cell identity, is
// decimal and is returned in hexadecimal like the other parsers'; the band
// is "EUTRAN-BAND<n>". The SIM7600 and A76xx give RSRQ, RSRP and RSSI in
// tenths of a dB (-94 is -9.4 dB, -1003 is -100.3 dBm, -678 is -67.8 dBm)
// while the SIM7000 family gives whole dB (-13,-98,-71): RSRP, which is
// -140..-44 dBm, tells them apart, as does RSSI when RSRP is missing.
// RSSNR is taken as the SINR in dB, as the modems print it; a value
// outside -30..50 (such as 255) is unknown.
//
// In 5G NSA a second line gives the NR secondary cell,
//
//	+CPSI: NR5G_NSA,<PCellID>,<band>,<ssb>,<RSRP>,<RSRQ>,<SNR>,...
//
// and in 5G SA
//
//	+CPSI: NR5G_SA,<operation mode>,<MCC>-<MNC>,<TAC>,<SCellID>,<PCellID>,<band>,<arfcn>,<RSRP>,<RSRQ>,<SNR>
//
// with the same tenths rule for RSRP and RSRQ; their SNR is in tenths of a
// dB on some firmware and in dB on others, so one outside -30..50 dB is
// taken in tenths. Other systems (GSM, WCDMA, "NO SERVICE") give Mode, Online and PLMN
// only.
func ParseCPSI(lines []string) (CPSI, error) {
	var c CPSI
	found := false
	for _, line := range lines {
		if !strings.HasPrefix(line, "+CPSI:") {
			continue
		}
		p := fields(line)
		if len(p) < 2 {
			return CPSI{}, fmt.Errorf("at: %q is not a +CPSI response", line)
		}
		mode := strings.ToUpper(p[0])
		switch {
		case mode == "NR5G_NSA":
			if len(p) < 7 {
				return CPSI{}, fmt.Errorf("at: +CPSI NR5G_NSA line has %d parameters, want at least 7: %q", len(p), line)
			}
			c.NR = cpsiNR(p[2], p[4], p[5], p[6])
			c.Tech = "5g-nsa"
			found = true
			continue
		case found:
			continue // a second system line: keep the first
		}
		found = true
		c.Mode, c.Online = p[0], strings.EqualFold(p[1], "Online")
		if c.Tech == "" {
			c.Tech = cpsiTechs[mode]
		}
		if len(p) >= 3 && strings.Contains(p[2], "-") {
			c.PLMN = p[2]
		}
		switch {
		case strings.HasPrefix(mode, "LTE"):
			if len(p) < 14 {
				if len(p) > 2 {
					return CPSI{}, fmt.Errorf("at: +CPSI LTE line has %d parameters, want 14: %q", len(p), line)
				}
				continue // "+CPSI: LTE,Offline" and the like
			}
			c.LTE.TAC = hexID(p[3])
			if id, err := strconv.ParseUint(p[4], 10, 64); err == nil && id > 0 {
				c.LTE.CellID = strings.ToUpper(strconv.FormatUint(id, 16))
			}
			c.LTE.Band = band(p[6])
			tenths := isTenths(p[11], 300) || (!isNumber(p[11]) && isTenths(p[12], 250))
			c.LTE.RSRQdB = scaled(p[10], tenths, -43, 20)
			c.LTE.RSRPdBm = scaled(p[11], tenths, -156, -31)
			c.LTE.RSSIdBm = scaled(p[12], tenths, -130, 0)
			c.LTE.SINRdB = inRange(p[13], -30, 50)
		case mode == "NR5G_SA":
			if len(p) < 11 {
				if len(p) > 2 {
					return CPSI{}, fmt.Errorf("at: +CPSI NR5G_SA line has %d parameters, want 11: %q", len(p), line)
				}
				continue
			}
			c.LTE.TAC = hexID(p[3])
			if id, err := strconv.ParseUint(p[4], 10, 64); err == nil && id > 0 {
				c.LTE.CellID = strings.ToUpper(strconv.FormatUint(id, 16))
			}
			c.NR = cpsiNR(p[6], p[8], p[9], p[10])
		}
	}
	if !found {
		return CPSI{}, fmt.Errorf("at: no +CPSI response in %q", lines)
	}
	return c, nil
}

func cpsiNR(bandS, rsrp, rsrq, sinr string) NR {
	tenths := isTenths(rsrp, 300)
	return NR{Band: band(bandS), RSRPdBm: scaled(rsrp, tenths, -156, -31), RSRQdB: scaled(rsrq, tenths, -43, 20), SINRdB: snr(sinr)}
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// isTenths reports whether s is a number whose size is above limit, which a
// value in whole dB never is.
func isTenths(s string, limit float64) bool {
	v, err := strconv.ParseFloat(s, 64)
	return err == nil && (v > limit || v < -limit)
}

// scaled parses s, divides it by ten when tenths is set, and keeps it when
// it is within lo..hi.
func scaled(s string, tenths bool, lo, hi float64) *float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil
	}
	if tenths {
		v /= 10
	}
	if v < lo || v > hi {
		return nil
	}
	return f(v)
}

// snr parses an SNR in dB, or in tenths of a dB when it is outside what a
// modem measures in dB.
func snr(s string) *float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil
	}
	if v < -30 || v > 50 {
		v /= 10
	}
	if v < -30 || v > 50 {
		return nil
	}
	return f(v)
}

// ErrClockNotSet means the modem's clock still holds its power-on default:
// the network has not sent the time (NITZ) since the modem started.
var ErrClockNotSet = errors.New("at: modem clock not set: the network has not sent the time since the modem started; use another time source")

// clockNotBefore is the earliest time a set modem clock can show. Modems
// start their clock at a fixed default (1980-01-06, the GPS epoch, on
// Quectel; 2004-01-01 or 1970-01-01 on others), all before it.
var clockNotBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// ParseCCLK parses the answer to AT+CCLK?, the modem's real-time clock:
//
//	+CCLK: "yy/MM/dd,hh:mm:ss±zz"
//
// The date and time are local time and zz is the local time's offset from
// UTC in quarters of an hour (-96..+96), so "25/11/25,20:55:01+04" is
// 20:55:01 at UTC+01:00, 19:55:01 UTC. The result is in a fixed zone of
// that offset. A clock without an offset is taken as UTC. Two-digit years
// from 70 are 19yy, the others 20yy; a four-digit year is taken as is. A
// clock before 2020, such as the default "80/01/06,00:00:00+00" of a modem
// the network has not set, fails with ErrClockNotSet.
func ParseCCLK(line string) (time.Time, error) {
	p := fields(line)
	if !strings.HasPrefix(line, "+CCLK:") || len(p) < 1 {
		return time.Time{}, fmt.Errorf("at: %q is not a +CCLK response", line)
	}
	s := p[0]
	if len(p) >= 2 && !strings.Contains(s, ",") {
		s += "," + p[1] // the time without quotes
	}
	date, clk, ok := strings.Cut(s, ",")
	if !ok {
		return time.Time{}, fmt.Errorf("at: +CCLK %q has no time", s)
	}
	offset := 0
	if i := strings.LastIndexAny(clk, "+-"); i >= 0 {
		q, err := strconv.Atoi(clk[i+1:])
		if err != nil || len(clk[i+1:]) > 3 || q > 96 {
			return time.Time{}, fmt.Errorf("at: +CCLK time zone %q is not a number of quarter hours 0-96", clk[i:])
		}
		if clk[i] == '-' {
			q = -q
		}
		offset = q * 15 * 60
		clk = clk[:i]
	}
	d := strings.Split(date, "/")
	c := strings.Split(clk, ":")
	if len(d) != 3 || len(c) != 3 {
		return time.Time{}, fmt.Errorf("at: +CCLK %q is not yy/MM/dd,hh:mm:ss", s)
	}
	var n [6]int
	for i, v := range append(d, c...) {
		x, err := strconv.Atoi(v)
		if err != nil || x < 0 || len(v) > 4 {
			return time.Time{}, fmt.Errorf("at: +CCLK %q is not yy/MM/dd,hh:mm:ss", s)
		}
		n[i] = x
	}
	year := n[0]
	switch {
	case len(d[0]) == 4:
	case year >= 70 && year <= 99:
		year += 1900
	case year < 70:
		year += 2000
	default:
		return time.Time{}, fmt.Errorf("at: +CCLK year %q is not yy or yyyy", d[0])
	}
	zone := time.UTC
	if offset != 0 {
		zone = time.FixedZone("", offset)
	}
	t := time.Date(year, time.Month(n[1]), n[2], n[3], n[4], n[5], 0, zone)
	if t.Year() != year || int(t.Month()) != n[1] || t.Day() != n[2] || t.Hour() != n[3] || t.Minute() != n[4] || t.Second() != n[5] {
		return time.Time{}, fmt.Errorf("at: +CCLK %q is not a valid date and time", s)
	}
	if t.Before(clockNotBefore) {
		return time.Time{}, fmt.Errorf("%w (it reads %q)", ErrClockNotSet, s)
	}
	return t, nil
}
