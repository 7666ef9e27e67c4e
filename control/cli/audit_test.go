package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/audit"
	"github.com/outpost-cctv/outpost/control"
)

func TestPrintAudit(t *testing.T) {
	at := time.Date(2026, 11, 25, 3, 12, 0, 0, time.UTC)
	list := control.AuditList{
		Entries: []audit.Entry{
			{Seq: 41, Time: at, Action: "clip.start", Requester: "alice (signed)", From: at.Add(-time.Hour), To: at.Add(-58 * time.Minute),
				Result: "ok", Recipient: "Met Police PC 1234", Reason: "crime ref 55/25"},
			{Seq: 42, Time: at.Add(time.Minute), Action: "config.set", Requester: "unverified: mallory\x1b[2J", Result: "unauthorized", Detail: "no valid signature"},
			{Seq: 43, Time: at.Add(2 * time.Minute), Action: "snapshot", Requester: "bob (signed)", From: at.Add(-25 * time.Hour), To: at, Result: "ok"},
		},
		Head: "3fa2b1c0d4e5f60718293a4b5c6d7e8f00112233445566778899aabbccddeeff", HeadSeq: 43, FirstSeq: 1, ChainOK: true,
	}
	var out bytes.Buffer
	printAudit(&out, "u1", at.Add(-24*time.Hour), list, time.UTC)
	got := out.String()
	for _, want := range []string{
		"SEQ  TIME                 REQUESTER",
		"41   2026-11-25 03:12:00  alice (signed)",
		"2026-11-25 02:12:00 - 02:14:00",            // same day: the end shortened
		"2026-11-24 02:12:00 - 2026-11-25 03:12:00", // across days: in full
		"Met Police PC 1234 / crime ref 55/25",      // the disclosure
		"unauthorized: no valid signature",          // a refusal and why
		"unverified: mallory?[2J",                   // no terminal escapes from the unit
		"chain intact: the unit verified entries 1 to 43; head 3fa2b1c0d4e5f607 (entry 43)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\x1b") {
		t.Error("an escape sequence from the unit reached the terminal")
	}

	list.ChainOK, list.FirstSeq = false, 12
	list.Problems = []string{"entry 42 (0000000000000001.audit at offset 9000): the hash does not match"}
	list.More = true
	out.Reset()
	printAudit(&out, "u1", at, list, time.UTC)
	got = out.String()
	for _, want := range []string{"more entries follow entry 43", "CHAIN BROKEN", "  - entry 42 (0000000000000001.audit", "data protection officer"} {
		if !strings.Contains(got, want) {
			t.Errorf("broken chain output lacks %q:\n%s", want, got)
		}
	}

	out.Reset()
	printAudit(&out, "u1", at, control.AuditList{Entries: []audit.Entry{}, ChainOK: true, FirstSeq: 1}, time.UTC)
	if got := out.String(); !strings.HasPrefix(got, "u1 recorded no access since 2026-11-25 03:12:00\n") {
		t.Errorf("empty list: %q", got)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"24h", now.Add(-24 * time.Hour), false},
		{"90m", now.Add(-90 * time.Minute), false},
		{"2026-11-01T00:00:00Z", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), false},
		{"all", time.Time{}, false},
		{"-5h", time.Time{}, true},
		{"0s", time.Time{}, true},
		{"last tuesday", time.Time{}, true},
	}
	for _, c := range cases {
		got, err := parseSince(c.in, now)
		if (err != nil) != c.bad || !got.Equal(c.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v (error %v)", c.in, got, err, c.want, c.bad)
		}
	}
}

func TestCell(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "-",
		"plain":                "plain",
		"tab\there\nnewline":   "tab here newline",
		"bell\a esc\x1b[31m":   "bell? esc?[31m",
		"rtl\u202eevil":        "rtl?evil",
		"0123456789abcdefghij": "0123456789abcdef…",
	} {
		if got := cell(in, 16); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}
