package audit

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

func list(t *testing.T, l *Log, args string) (ListResult, []byte, error) {
	t.Helper()
	res, err := l.ListHandler()(context.Background(), uplink.Request{Name: ListCommand, ID: "r1", Args: json.RawMessage(args)})
	if err != nil {
		return ListResult{}, nil, err
	}
	// Through JSON, as the reply travels.
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var lr ListResult
	if err := json.Unmarshal(b, &lr); err != nil {
		t.Fatal(err)
	}
	return lr, b, nil
}

func TestListHandler(t *testing.T) {
	clk := clock.NewFake(t0)
	l := openT(t, t.TempDir(), Options{Clock: clk})
	wrote := appendN(t, l, clk, 30)

	res, _, err := list(t, l, `{"since":"2026-11-25T03:20:00Z","limit":15}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 15 || res.Entries[0].Seq != 9 || !res.More {
		t.Fatalf("page 1: %d entries from %d, more %v", len(res.Entries), res.Entries[0].Seq, res.More)
	}
	if !res.ChainOK || res.Head != wrote[29].Hash || res.HeadSeq != 30 || res.FirstSeq != 1 {
		t.Fatalf("chain fields %+v", res)
	}
	if res.Entries[0] != wrote[8] {
		t.Fatalf("entry %+v, want %+v", res.Entries[0], wrote[8])
	}
	res, _, err = list(t, l, `{"since":"2026-11-25T03:20:00Z","limit":15,"after_seq":23}`)
	if err != nil || len(res.Entries) != 7 || res.More {
		t.Fatalf("page 2: %d entries, more %v, %v", len(res.Entries), res.More, err)
	}
	res, _, err = list(t, l, ``)
	if err != nil || len(res.Entries) != 30 {
		t.Fatalf("no args: %d entries, %v", len(res.Entries), err)
	}
	res, b, err := list(t, l, `{"since":"2030-01-01T00:00:00Z"}`)
	if err != nil || res.Entries == nil || !strings.Contains(string(b), `"entries":[]`) {
		t.Fatalf("nothing since: %s, %v", b, err)
	}

	for _, bad := range []string{`{"since":"yesterday"}`, `{"limit":-1}`, `{"limt":5}`, `{"limit":"5"}`} {
		_, _, err := list(t, l, bad)
		var ce uplink.CommandError
		if !errors.As(err, &ce) || ce.Code != wire.CodeBadRequest {
			t.Errorf("args %s: %v, want bad_request", bad, err)
		}
	}
}

func TestListHandlerBoundsTheReply(t *testing.T) {
	l := openT(t, t.TempDir(), Options{})
	big := strings.Repeat("d", maxDetail)
	for range 200 {
		if _, err := l.Append(Entry{Action: "config.set", Detail: big, Reason: big}); err != nil {
			t.Fatal(err)
		}
	}
	res, b, err := list(t, l, `{"limit":1000}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 200<<10 || !res.More || len(res.Entries) == 0 {
		t.Fatalf("reply of %d bytes with %d entries, more %v: want under 200 KiB and more", len(b), len(res.Entries), res.More)
	}
	n := len(res.Entries)
	res, _, err = list(t, l, `{"limit":1000,"after_seq":`+jsonNum(res.Entries[n-1].Seq)+`}`)
	if err != nil || res.Entries[0].Seq != uint64(n+1) {
		t.Fatalf("next page starts at %d, %v", res.Entries[0].Seq, err)
	}
}

func jsonNum(v uint64) string { b, _ := json.Marshal(v); return string(b) }

func TestListHandlerReportsBrokenChain(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(t0)
	l := openT(t, dir, Options{Clock: clk})
	appendN(t, l, clk, 10)
	path := logFiles(t, dir)[0]
	res0, b := records(t, path)
	rewrite(b, res0.recs[4], []byte(strings.Replace(string(res0.recs[4].canon), "theft", "thief", 1)))
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	res, _, err := list(t, l, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if res.ChainOK || len(res.Problems) == 0 || !strings.HasPrefix(res.Problems[0], "entry 5 ") {
		t.Fatalf("chain_ok %v, problems %q: want entry 5 reported", res.ChainOK, res.Problems)
	}
}
