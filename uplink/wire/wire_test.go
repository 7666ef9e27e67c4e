package wire

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTopics(t *testing.T) {
	tp := Topics{Prefix: "outpost", Unit: "lamp-14"}
	for _, tc := range []struct{ got, want string }{
		{tp.Base(), "outpost/lamp-14/"},
		{tp.Status(), "outpost/lamp-14/status"},
		{tp.Telemetry(StreamPower), "outpost/lamp-14/telemetry/power"},
		{tp.Health(), "outpost/lamp-14/health"},
		{tp.Events(), "outpost/lamp-14/events"},
		{tp.Cmd("ping"), "outpost/lamp-14/cmd/ping"},
		{tp.CmdFilter(), "outpost/lamp-14/cmd/+"},
		{tp.Reply("r1"), "outpost/lamp-14/reply/r1"},
		{tp.ConfigDesired(), "outpost/lamp-14/config/desired"},
		{tp.ConfigReported(), "outpost/lamp-14/config/reported"},
		{tp.Join("xfer", "t1", "chunk"), "outpost/lamp-14/xfer/t1/chunk"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	unit, rest, err := SplitTopic("outpost", "outpost/lamp-14/telemetry/power")
	if err != nil || unit != "lamp-14" || rest != "telemetry/power" {
		t.Errorf("SplitTopic: %q %q %v", unit, rest, err)
	}
}

func TestDecodeRequest(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantID  string
		wantErr string
	}{
		{`{"v":1,"id":"a"}`, "a", ""},
		{`{"v":1,"id":"a","deadline":"2026-11-25T12:00:30+01:00"}`, "a", ""},
		{`{"v":1,"id":"` + strings.Repeat("a", 64) + `"}`, strings.Repeat("a", 64), ""},
		{`{"v":1,"id":"` + strings.Repeat("a", 65) + `"}`, "", "is not 1-64"},
		{`{"v":1,"id":""}`, "", "is not 1-64"},
		{`{"v":1.5,"id":"a"}`, "a", "v: want the whole number"},
		{`{"v":1,"id":"a","ts":"noon"}`, "a", "ts:"},
		{`{"v":1,"id":"a"} trailing`, "a", "malformed JSON"},
		{`"just a string"`, "", "must be a JSON object"},
	} {
		req, rerr := DecodeRequest([]byte(tc.in))
		if req.ID != tc.wantID {
			t.Errorf("%s: id %q, want %q", tc.in, req.ID, tc.wantID)
		}
		switch {
		case tc.wantErr == "" && rerr != nil:
			t.Errorf("%s: %v", tc.in, rerr)
		case tc.wantErr != "" && (rerr == nil || rerr.Code != CodeBadRequest || !strings.Contains(rerr.Message, tc.wantErr)):
			t.Errorf("%s: error %v, want bad_request containing %q", tc.in, rerr, tc.wantErr)
		}
	}
	req, _ := DecodeRequest([]byte(`{"v":1,"id":"a","deadline":"2026-11-25T12:00:30+01:00"}`))
	if want := time.Date(2026, 11, 25, 11, 0, 30, 0, time.UTC); req.Deadline == nil || !req.Deadline.Equal(want) || req.Deadline.Location() != time.UTC {
		t.Errorf("deadline %v, want %v in UTC", req.Deadline, want)
	}
}

func TestDecodeConfigDesired(t *testing.T) {
	for _, tc := range []struct{ in, wantErr string }{
		{`{"v":1,"version":2,"base_version":1,"config":{}}`, ""},
		{`{"v":1,"version":2,"base_version":2,"config":{}}`, "base_version"},
		{`{"v":1,"version":0,"base_version":0,"config":{}}`, "version: 0"},
		{`{"v":1,"version":2,"base_version":1,"config":[]}`, "config: want a JSON object"},
		{`{"v":1,"version":2,"base_version":1}`, "config: want a JSON object"},
		{`{"v":2,"version":2,"base_version":1,"config":{}}`, "version 2 is not supported"},
		{`{"v":1,"version":2,"base_version":1,"config":{}}{}`, "data after"},
		{`{"v":1,"version":"2"}`, "config/desired"},
	} {
		_, err := DecodeConfigDesired([]byte(tc.in))
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: %v, want %q", tc.in, err, tc.wantErr)
		}
	}
	if _, err := DecodeConfigDesired(make([]byte, MaxConfigBytes+1)); err == nil || !strings.Contains(err.Error(), "above the limit") {
		t.Errorf("oversized: %v", err)
	}
}

func TestDataPolicy(t *testing.T) {
	for _, tc := range []struct {
		p            DataPolicy
		thumbs, auto bool
	}{{PolicyNormal, true, true}, {PolicySaving, false, false}, {PolicyExhausted, false, false}} {
		if tc.p.Thumbnails() != tc.thumbs || tc.p.AutoClips() != tc.auto {
			t.Errorf("%s: thumbnails %v auto clips %v", tc.p, tc.p.Thumbnails(), tc.p.AutoClips())
		}
	}
}

// seeds adds every file of testdata/dir to the corpus.
func seeds(f *testing.F, dir string) {
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/%s", dir)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzDecodeRequest: no input panics; an accepted request is valid and
// survives a round trip; a refused one says why, and any id it recovered
// is a valid one.
func FuzzDecodeRequest(f *testing.F) {
	seeds(f, "requests")
	f.Fuzz(func(t *testing.T, b []byte) {
		req, rerr := DecodeRequest(b)
		if req.ID != "" && !ValidRequestID(req.ID) {
			t.Fatalf("recovered an invalid id %q", req.ID)
		}
		if rerr != nil {
			if rerr.Code != CodeBadRequest || rerr.Message == "" {
				t.Fatalf("error without code or message: %+v", rerr)
			}
			return
		}
		if req.V != Version {
			t.Fatalf("accepted version %d", req.V)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		req2, rerr := DecodeRequest(again)
		if rerr != nil {
			t.Fatalf("re-encoded request refused: %v: %s", rerr, again)
		}
		if req2.ID != req.ID || !reflect.DeepEqual(req2.Deadline, req.Deadline) || !req2.TS.Equal(req.TS) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", req, req2)
		}
		if (len(req.Args) == 0) != (len(req2.Args) == 0) {
			t.Fatalf("round trip changed the args: %q -> %q", req.Args, req2.Args)
		}
	})
}

// FuzzDecodeReply: no input panics; an accepted reply is consistent.
func FuzzDecodeReply(f *testing.F) {
	seeds(f, "replies")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeReply(b)
		if err != nil {
			return
		}
		if r.OK == (r.Error != nil) || r.V != Version {
			t.Fatalf("inconsistent reply accepted: %+v", r)
		}
	})
}

// FuzzDecodeConfigDesired: no input panics; an accepted payload has a
// usable version and an object.
func FuzzDecodeConfigDesired(f *testing.F) {
	seeds(f, "config-desired")
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeConfigDesired(b)
		if err != nil {
			return
		}
		if d.Version <= 0 || d.BaseVersion >= d.Version || !json.Valid(d.Config) {
			t.Fatalf("accepted %+v", d)
		}
	})
}

func TestScanRequestID(t *testing.T) {
	for in, want := range map[string]string{
		`{"v":1,"id":"abc",`: "abc",
		`{"id" : "x_y-z"`:    "x_y-z",
		`{"id":"a/b"}`:       "",
		`garbage`:            "",
		strings.Repeat(" ", 5000) + `"id":"late"`: "",
	} {
		if got := ScanRequestID([]byte(in)); got != want {
			t.Errorf("ScanRequestID(%.30q) = %q, want %q", in, got, want)
		}
	}
}
