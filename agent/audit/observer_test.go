package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink"
)

func TestObserveCommand(t *testing.T) {
	clk := clock.NewFake(t0)
	l := openT(t, t.TempDir(), Options{Clock: clk})
	recv := t0.Add(-time.Second)
	l.ObserveCommand(uplink.CommandRecord{Name: "transfer.start", ID: "r1", Requester: "alice (signed)", Received: recv, OK: true,
		Args: json.RawMessage(`{"kind":"clip","from":"2026-11-25T02:00:00Z","to":"2026-11-25T02:05:00Z","recipient":"Met Police","reason":"crime 55/25","upload_url":"https://x.example/put?sig=abc","chunk_size":65536,"extra":{"a":1}}`)})
	l.ObserveCommand(uplink.CommandRecord{Name: "config.set", ID: "r2", Requester: "unverified: bob", Received: recv, OK: false,
		Code: "unauthorized", Message: "no valid signature", Args: json.RawMessage(`{"wifi_password":"hunter2"}`)})
	l.ObserveCommand(uplink.CommandRecord{Name: "snapshot", ID: "r3", OK: true, Args: json.RawMessage(`not json`)})

	got, err := l.Since(time.Time{}, 0)
	if err != nil || len(got) != 3 {
		t.Fatalf("%d entries, %v", len(got), err)
	}
	e := got[0]
	if e.Action != "transfer.start" || e.Requester != "alice (signed)" || e.RequestID != "r1" || !e.Time.Equal(recv) || e.Result != "ok" ||
		!e.From.Equal(time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)) || !e.To.Equal(time.Date(2026, 11, 25, 2, 5, 0, 0, time.UTC)) ||
		e.Recipient != "Met Police" || e.Reason != "crime 55/25" {
		t.Fatalf("disclosure entry %+v", e)
	}
	if e.Detail != "args: chunk_size=65536, extra, kind=clip, upload_url" {
		t.Errorf("detail %q", e.Detail)
	}
	if e := got[1]; e.Result != "unauthorized" || e.Detail != "no valid signature" || strings.Contains(e.Detail, "hunter2") {
		t.Errorf("refusal entry %+v", e)
	}
	if e := got[2]; !e.Time.Equal(t0) || e.Detail != "" {
		t.Errorf("entry without time or readable args %+v", e)
	}
	for _, e := range got {
		if b, _ := json.Marshal(e); strings.Contains(string(b), "hunter2") || strings.Contains(string(b), "sig=abc") {
			t.Errorf("a secret was recorded: %s", b)
		}
	}
}
