package at

import (
	"fmt"
	"strconv"
	"strings"
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
