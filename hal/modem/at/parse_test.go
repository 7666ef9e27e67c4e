package at

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseCSQ(t *testing.T) {
	tests := []struct{ line, want, err string }{
		{"+CSQ: 0,99", "-113", ""},
		{"+CSQ: 31,99", "-51", ""},
		{"+CSQ: 20,0", "-73", ""},
		{"+CSQ: 99,99", "nil", ""},
		{"+CSQ: 32,99", "", "outside 0-31"},
		{"+CSQ: x,99", "", "not a number"},
		{"+CESQ: 1,2", "", "not a +CSQ"},
	}
	for _, tt := range tests {
		c, err := ParseCSQ(tt.line)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseCSQ(%q) error %v, want %q", tt.line, err, tt.err)
			}
			continue
		}
		if err != nil || show(c.RSSIdBm) != tt.want {
			t.Errorf("ParseCSQ(%q) = %s, %v; want %s", tt.line, show(c.RSSIdBm), err, tt.want)
		}
	}
}

func TestParseCEREG(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		stat  int
		reg   bool
		ci    string
		act   int
		err   bool
	}{
		{"home", []string{"+CEREG: 0,1"}, 1, true, "", -1, false},
		{"roaming with cell", []string{`+CEREG: 2,5,"1A2B","01A2B3C4",7`}, 5, true, "01A2B3C4", 7, false},
		{"urc first", []string{"+CEREG: 1", `+CEREG: 2,1,"1A2B","01A2B3C4",7`}, 1, true, "01A2B3C4", 7, false},
		{"urc with cell first", []string{`+CEREG: 5,"1A2B","01A2B3C4",7`, "+CEREG: 0,2"}, 2, false, "", -1, false},
		{"denied", []string{"+CEREG: 0,3"}, 3, false, "", -1, false},
		{"only a urc", []string{"+CEREG: 1"}, 0, false, "", 0, true},
		{"empty", nil, 0, false, "", 0, true},
		{"stat out of range", []string{"+CEREG: 0,99"}, 0, false, "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseCEREG(tt.lines)
			if tt.err {
				if err == nil {
					t.Fatalf("got %+v, want an error", r)
				}
				return
			}
			if err != nil || r.Stat != tt.stat || r.Registered() != tt.reg || r.CellID != tt.ci || r.AcT != tt.act {
				t.Errorf("got %+v, %v", r, err)
			}
		})
	}
}

func TestParseCOPS(t *testing.T) {
	tests := []struct{ line, name, tech string }{
		{`+COPS: 0,0,"EE",7`, "EE", "lte"},
		{`+COPS: 0,0,"Vodafone UK",13`, "Vodafone UK", "5g-nsa"},
		{`+COPS: 0,2,"23430",2`, "23430", "umts"},
		{`+COPS: 0`, "", ""},
		{`+COPS: 0,0,"A, B",99`, "A, B", ""},
	}
	for _, tt := range tests {
		o, err := ParseCOPS(tt.line)
		if err != nil || o.Name != tt.name || o.Tech != tt.tech {
			t.Errorf("ParseCOPS(%q) = %+v, %v", tt.line, o, err)
		}
	}
}

func TestParseQENG(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string // rsrp|rsrq|rssi|sinr|cell|band
		err   bool
	}{
		{"lte", []string{`+QENG: "servingcell","NOCONN","LTE","FDD",234,30,1A2B3C4,123,1300,3,5,5,1A2B,-95,-11,-65,12,10,-,40`}, "-95|-11|-65|12|1A2B3C4|3", false},
		{"nsa", []string{`+QENG: "servingcell","NOCONN"`, `+QENG: "LTE","FDD",234,15,2B3C4D5,301,6300,20,5,5,4C5D,-88,-9,-58,18,12,10,-`}, "-88|-9|-58|18|2B3C4D5|20", false},
		{"searching", []string{`+QENG: "servingcell","SEARCH"`}, "nil|nil|nil|nil||0", false},
		{"invalid values", []string{`+QENG: "servingcell","NOCONN","LTE","FDD",234,30,1A2B3C4,123,1300,3,5,5,1A2B,-32768,-,0,999`}, "nil|nil|0|nil|1A2B3C4|3", false},
		{"truncated", []string{`+QENG: "servingcell","NOCONN","LTE","FDD",234`}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseQENG(tt.lines)
			if tt.err {
				if err == nil {
					t.Fatalf("got %+v, want an error", l)
				}
				return
			}
			got := strings.Join([]string{show(l.RSRPdBm), show(l.RSRQdB), show(l.RSSIdBm), show(l.SINRdB), l.CellID, itoa(l.Band)}, "|")
			if err != nil || got != tt.want {
				t.Errorf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestParseCESQ(t *testing.T) {
	tests := []struct{ line, rsrq, rsrp string }{
		{"+CESQ: 99,99,255,255,20,40", "-10", "-101"},
		{"+CESQ: 99,99,255,255,0,0", "-20", "-141"},
		{"+CESQ: 99,99,255,255,34,97", "-3", "-44"},
		{"+CESQ: 99,99,255,255,255,255", "nil", "nil"},
		{"+CESQ: 99,99,255,255,35,40", "err", ""},
		{"+CESQ: 99,99,255,255,20,98", "err", ""},
		{"+CESQ: 99,99", "err", ""},
	}
	for _, tt := range tests {
		l, err := ParseCESQ(tt.line)
		if tt.rsrq == "err" {
			if err == nil {
				t.Errorf("ParseCESQ(%q) = %+v, want an error", tt.line, l)
			}
			continue
		}
		if err != nil || show(l.RSRQdB) != tt.rsrq || show(l.RSRPdBm) != tt.rsrp {
			t.Errorf("ParseCESQ(%q) = %s, %s, %v", tt.line, show(l.RSRQdB), show(l.RSRPdBm), err)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// FuzzParsers feeds every parser the same line and checks that none
// panics and that what they return is in the documented ranges.
func FuzzParsers(f *testing.F) {
	for _, l := range responseLines(f) {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if c, err := ParseCSQ(line); err == nil && c.RSSIdBm != nil && (*c.RSSIdBm < -113 || *c.RSSIdBm > -51) {
			t.Fatalf("ParseCSQ(%q) rssi %v", line, *c.RSSIdBm)
		}
		if r, err := ParseCEREG([]string{line}); err == nil && (r.Stat < 0 || r.Stat > 10) {
			t.Fatalf("ParseCEREG(%q) stat %d", line, r.Stat)
		}
		ParseCOPS(line)
		if l, err := ParseQENG([]string{line}); err == nil && l.RSRPdBm != nil && (*l.RSRPdBm < -156 || *l.RSRPdBm > -31) {
			t.Fatalf("ParseQENG(%q) rsrp %v", line, *l.RSRPdBm)
		}
		if l, err := ParseCESQ(line); err == nil && l.RSRPdBm != nil && (*l.RSRPdBm < -141 || *l.RSRPdBm > -44) {
			t.Fatalf("ParseCESQ(%q) rsrp %v", line, *l.RSRPdBm)
		}
		fields(line)
	})
}

// BenchmarkParseQENG measures the busiest parser against a baseline that
// only splits the line.
func BenchmarkParseQENG(b *testing.B) {
	lines := []string{`+QENG: "servingcell","NOCONN","LTE","FDD",234,30,1A2B3C4,123,1300,3,5,5,1A2B,-95,-11,-65,12,10,-,40`}
	b.Run("baseline-split", func(b *testing.B) {
		b.SetBytes(int64(len(lines[0])))
		b.ReportAllocs()
		for b.Loop() {
			strings.Split(lines[0], ",")
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.SetBytes(int64(len(lines[0])))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseQENG(lines); err != nil {
				b.Fatal(err)
			}
		}
	})
}
