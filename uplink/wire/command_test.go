package wire

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDecodeRequestAuth(t *testing.T) {
	const auth = `"auth":{"key":"alice","unit":"u1","issued":"2026-11-25T12:00:00Z","expires":"2026-11-25T12:05:00+01:00","sig":"c2ln"}`
	for _, tc := range []struct {
		name    string
		in      string
		wantErr string
	}{
		{"signed", `{"v":1,"id":"a",` + auth + `}`, ""},
		{"from", `{"v":1,"id":"a","from":"alice@ctl"}`, ""},
		{"null auth and from", `{"v":1,"id":"a","auth":null,"from":null}`, ""},
		{"auth not an object", `{"v":1,"id":"a","auth":"yes"}`, "auth: want an object"},
		{"auth unknown field", `{"v":1,"id":"a","auth":{"key":"k","unit":"u","issued":"2026-11-25T12:00:00Z","sig":"x","alg":"none"}}`, `auth: unknown field "alg"`},
		{"auth without key", `{"v":1,"id":"a","auth":{"unit":"u","issued":"2026-11-25T12:00:00Z","sig":"x"}}`, "auth.key: missing"},
		{"auth bad key name", `{"v":1,"id":"a","auth":{"key":"a/b","unit":"u","issued":"2026-11-25T12:00:00Z","sig":"x"}}`, `auth.key: "a/b" is not`},
		{"auth without sig", `{"v":1,"id":"a","auth":{"key":"k","unit":"u","issued":"2026-11-25T12:00:00Z"}}`, "auth.sig: missing"},
		{"auth sig of the wrong type", `{"v":1,"id":"a","auth":{"key":"k","unit":"u","issued":"2026-11-25T12:00:00Z","sig":5}}`, "auth.sig: want a string, got a number"},
		{"auth long sig", `{"v":1,"id":"a","auth":{"key":"k","unit":"u","issued":"2026-11-25T12:00:00Z","sig":"` + strings.Repeat("A", 200) + `"}}`, "auth.sig: longer than 128"},
		{"auth without issued", `{"v":1,"id":"a","auth":{"key":"k","unit":"u","sig":"x"}}`, "auth.issued: missing"},
		{"auth bad expires", `{"v":1,"id":"a","auth":{"key":"k","unit":"u","issued":"2026-11-25T12:00:00Z","expires":"soon","sig":"x"}}`, "auth.expires:"},
		{"from of the wrong type", `{"v":1,"id":"a","from":1}`, "from: want a string"},
		{"from with a control character", `{"v":1,"id":"a","from":"a\nb"}`, "from:"},
		{"from too long", `{"v":1,"id":"a","from":"` + strings.Repeat("x", MaxFromLen+1) + `"}`, "from:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, rerr := DecodeRequest([]byte(tc.in))
			if req.ID != "a" {
				t.Errorf("id %q, want a", req.ID)
			}
			if tc.wantErr != "" {
				if rerr == nil || rerr.Code != CodeBadRequest || !strings.Contains(rerr.Message, tc.wantErr) {
					t.Fatalf("error %v, want bad_request containing %q", rerr, tc.wantErr)
				}
				return
			}
			if rerr != nil {
				t.Fatal(rerr)
			}
		})
	}

	req, rerr := DecodeRequest([]byte(`{"v":1,"id":"a","args":{"x": 1},` + auth + `}`))
	if rerr != nil {
		t.Fatal(rerr)
	}
	want := Auth{Key: "alice", Unit: "u1", Issued: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		Expires: time.Date(2026, 11, 25, 11, 5, 0, 0, time.UTC), Sig: "c2ln"}
	if req.Auth == nil || *req.Auth != want {
		t.Errorf("auth %+v, want %+v", req.Auth, want)
	}
	// The args are kept byte for byte as sent: they are what is signed.
	if string(req.Args) != `{"x": 1}` {
		t.Errorf("args %q, want the bytes as sent", req.Args)
	}
	// Encoding and decoding again keeps the auth.
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	again, rerr := DecodeRequest(b)
	if rerr != nil || again.Auth == nil || *again.Auth != want {
		t.Errorf("round trip: %+v, %v", again.Auth, rerr)
	}
	// An unexpiring auth (documents) leaves expires out.
	a := Auth{Key: "k", Unit: "u", Issued: want.Issued, Sig: "x"}
	if b, _ := json.Marshal(a); strings.Contains(string(b), "expires") {
		t.Errorf("zero expiry encoded: %s", b)
	}
}

func TestValidKeyName(t *testing.T) {
	for name, want := range map[string]bool{
		"alice": true, "ops.night-2": true, "A_1": true, strings.Repeat("k", 64): true,
		"": false, "-x": false, ".x": false, "a b": false, "a/b": false, strings.Repeat("k", 65): false,
	} {
		if got := ValidKeyName(name); got != want {
			t.Errorf("ValidKeyName(%q) = %v, want %v", name, got, want)
		}
	}
}

// FuzzDecodeAuth: no input panics; an accepted auth encodes and decodes to
// itself.
func FuzzDecodeAuth(f *testing.F) {
	f.Add([]byte(`{"key":"alice","unit":"u1","issued":"2026-11-25T12:00:00Z","expires":"2026-11-25T12:05:00Z","sig":"c2ln"}`))
	f.Add([]byte(`{"key":"alice","unit":"u1","issued":"2026-11-25T12:00:00.123456789-07:00","sig":""}`))
	f.Add([]byte(`{"key":"","unit":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, rerr := DecodeAuth(b)
		if rerr != nil {
			if a != nil || rerr.Code != CodeBadRequest || rerr.Message == "" {
				t.Fatalf("refusal %+v with auth %+v", rerr, a)
			}
			return
		}
		if !ValidKeyName(a.Key) {
			t.Fatalf("accepted key name %q", a.Key)
		}
		enc, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		again, rerr := DecodeAuth(enc)
		if rerr != nil {
			t.Fatalf("re-encoded auth refused: %v: %s", rerr, enc)
		}
		if again.Key != a.Key || again.Unit != a.Unit || again.Sig != a.Sig || !again.Issued.Equal(a.Issued) || !again.Expires.Equal(a.Expires) {
			t.Fatalf("round trip changed the auth:\n%+v\n%+v", a, again)
		}
	})
}
