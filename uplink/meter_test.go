package uplink

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/uplink/wire"
)

func TestMeterCountsWithOverhead(t *testing.T) {
	m := newMeter("", 0)
	m.addUp(t0, 100)    // one segment: 100 + 40 up, one ACK down
	m.addDown(t0, 3000) // three segments: 3000 + 120 down, two ACKs up
	u := m.usage(t0)
	if u.UpToday != 140+80 || u.DownToday != 40+3120 || u.UpMonth != u.UpToday || u.DownMonth != u.DownToday {
		t.Fatalf("usage %+v", u)
	}
	if u.Policy != wire.PolicyNormal || u.Budget != 0 {
		t.Fatalf("without a budget: %+v", u)
	}
}

func TestMeterRollsOverDaysAndMonths(t *testing.T) {
	m := newMeter("", 0)
	day1 := time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC)
	m.add(day1, 100, 10)
	m.add(day1.Add(2*time.Hour), 50, 5) // 30 November
	u := m.usage(day1.Add(2 * time.Hour))
	if u.UpToday != 50 || u.UpMonth != 150 || u.DownMonth != 15 {
		t.Fatalf("next day: %+v", u)
	}
	dec := time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC)
	if u := m.usage(dec); u.UpMonth != 0 || u.UpToday != 0 {
		t.Fatalf("new month: %+v", u)
	}
}

func TestBudgetPolicy(t *testing.T) {
	m := newMeter("", 1000)
	for _, tc := range []struct {
		add    int64
		policy wire.DataPolicy
		alert  bool
	}{
		{500, wire.PolicyNormal, false},
		{299, wire.PolicyNormal, false},
		{1, wire.PolicySaving, true}, // 80 %
		{100, wire.PolicySaving, false},
		{100, wire.PolicyExhausted, true}, // 100 %
		{500, wire.PolicyExhausted, false},
	} {
		m.add(t0, tc.add, 0)
		if p := m.policy(t0); p != tc.policy {
			t.Fatalf("after %d more bytes: policy %s, want %s", tc.add, p, tc.policy)
		}
		p, _, ok := m.crossed(t0)
		if ok != tc.alert || (ok && p != tc.policy) {
			t.Fatalf("after %d more bytes: alert %v %s, want %v", tc.add, ok, p, tc.alert)
		}
	}
	// A new month starts normal and alerts again.
	next := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	m.add(next, 800, 0)
	if p, _, ok := m.crossed(next); !ok || p != wire.PolicySaving {
		t.Fatalf("new month: %s %v", p, ok)
	}
}

func TestMeterPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.json")
	m := newMeter(path, 1000)
	m.add(t0, 850, 0)
	m.crossed(t0)
	if err := m.save(t0); err != nil {
		t.Fatal(err)
	}
	n := newMeter(path, 1000)
	if err := n.load(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if u := n.usage(t0); u.UpMonth != 850 || u.Policy != wire.PolicySaving {
		t.Fatalf("restored %+v", u)
	}
	if _, _, ok := n.crossed(t0); ok {
		t.Fatal("the 80 % alert repeated after a restart")
	}
	// A file from last month restarts the counters.
	if err := n.load(t0.AddDate(0, 1, 0)); err != nil {
		t.Fatal(err)
	}
	if u := n.usage(t0.AddDate(0, 1, 0)); u.UpMonth != 0 {
		t.Fatalf("last month's use carried over: %+v", u)
	}
	os.WriteFile(path, []byte("not json"), 0o600)
	if err := newMeter(path, 0).load(t0); err == nil {
		t.Fatal("a damaged file was read")
	}
	if err := newMeter(filepath.Join(t.TempDir(), "none.json"), 0).load(t0); err != nil {
		t.Fatalf("missing file: %v", err)
	}
}

func TestMatchTopic(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a/b/c", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/b", "$SYS/b", false},
		{"outpost/u1/xfer/+/ack", "outpost/u1/xfer/t1/ack", true},
		{"outpost/u1/xfer/+/ack", "outpost/u1/xfer/t1/chunk", false},
		{"a/b/c", "a/b", false},
		{"a/+", "a/", true},
	} {
		if got := matchTopic(tc.filter, tc.topic); got != tc.want {
			t.Errorf("matchTopic(%q, %q) = %v", tc.filter, tc.topic, got)
		}
	}
	for f, want := range map[string]bool{"a/#": true, "#": true, "+": true, "a/#/b": false, "a+": false, "a/b#": false, "": false} {
		if validFilter(f) != want {
			t.Errorf("validFilter(%q) = %v", f, !want)
		}
	}
}
