package cmdauth

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// FuzzCheck feeds request payloads, as they arrive on cmd/<name>, through
// decoding and Check: nothing panics, a refusal is an *Error with a
// message, and only a request that carries a valid signature is admitted
// as signed. Valid signed requests are among the seeds, so the fuzzer
// mutates its way through every check.
func FuzzCheck(f *testing.F) {
	seed := func(req wire.Request) {
		b, err := json.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add("ping", b)
	}
	r := wire.Request{Header: wire.NewHeader(t0), ID: "f1", Args: json.RawMessage(`{"kind":"manual"}`)}
	if err := Sign(alice, "alice", "u1", "ping", &r, t0, time.Minute); err != nil {
		f.Fatal(err)
	}
	seed(r)
	dl := t0.Add(time.Minute)
	r = wire.Request{Header: wire.NewHeader(t0), ID: "f2", Deadline: &dl}
	if err := Sign(bob, "bob", "u1", "ping", &r, t0, time.Minute); err != nil {
		f.Fatal(err)
	}
	seed(r)
	seed(wire.Request{Header: wire.NewHeader(t0), ID: "f3", From: "carol"})
	f.Add("ping", []byte(`{"v":1,"id":"f4","auth":{"key":"alice","unit":"u1","issued":"2026-11-25T12:00:00Z","sig":""}}`))
	f.Add("clip", []byte(`{"v":1,"id":"f5","auth":{"key":"alice","unit":"u1","issued":"2026-11-25T12:00:00Z","expires":"2026-11-25T11:00:00Z","sig":"AAAA"}}`))

	// The replay state is kept in memory: fuzzing must not wear the disk.
	o := Options{Unit: "u1", Require: true, Clock: clock.NewFake(t0), Keys: map[string]ed25519.PublicKey{
		"alice": alice.Public().(ed25519.PublicKey), "bob": bob.Public().(ed25519.PublicKey)}}
	f.Fuzz(func(t *testing.T, name string, payload []byte) {
		v, err := NewVerifier(o)
		if err != nil {
			t.Fatal(err)
		}
		req, rerr := wire.DecodeRequest(payload)
		if rerr != nil {
			return
		}
		for range 2 {
			who, err := v.Check(name, req)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Reason == "" || e.Message == "" {
					t.Fatalf("refusal %v (%T) without reason or message", err, err)
				}
				return
			}
			if req.Auth == nil || who != req.Auth.Key+" (signed)" {
				t.Fatalf("admitted as %q: %s", who, payload)
			}
			if !strings.Contains(string(payload), req.Auth.Sig) {
				t.Fatalf("admitted with a signature not in the payload")
			}
		}
		t.Fatalf("the same request was admitted twice: %s", payload)
	})
}

// BenchmarkCheck measures a signed command's check (a command every
// 100 ms of issue time), with the replay state in memory and on disk
// (written and synced at each command), against decoding alone as the
// baseline.
func BenchmarkCheck(b *testing.B) {
	const step = 100 * time.Millisecond
	payloads := func(n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			req := wire.Request{Header: wire.NewHeader(t0), ID: "b" + strconv.Itoa(i),
				Args: json.RawMessage(`{"from":"2026-11-25T11:00:00Z","to":"2026-11-25T11:02:00Z"}`)}
			if err := Sign(alice, "alice", "u1", "transfer.start", &req, t0.Add(time.Duration(i)*step), time.Minute); err != nil {
				b.Fatal(err)
			}
			out[i], _ = json.Marshal(req)
		}
		return out
	}
	b.Run("decode-only", func(b *testing.B) {
		ps := payloads(b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if _, rerr := wire.DecodeRequest(ps[i]); rerr != nil {
				b.Fatal(rerr)
			}
		}
	})
	for _, disk := range []bool{false, true} {
		name := "decode+check-memory"
		if disk {
			name = "decode+check-disk"
		}
		b.Run(name, func(b *testing.B) {
			ps := payloads(b.N)
			clk := clock.NewFake(t0)
			o := Options{Unit: "u1", Keys: map[string]ed25519.PublicKey{"alice": alice.Public().(ed25519.PublicKey)}, Require: true, Clock: clk}
			if disk {
				o.StatePath = filepath.Join(b.TempDir(), "cmdauth.json")
			}
			v, err := NewVerifier(o)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				req, rerr := wire.DecodeRequest(ps[i])
				if rerr != nil {
					b.Fatal(rerr)
				}
				if _, err := v.Check("transfer.start", req); err != nil {
					b.Fatal(err)
				}
				clk.Advance(step)
			}
		})
	}
}
