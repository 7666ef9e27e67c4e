package cmdauth

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// testKey derives a fixed key from a seed byte, so failures reproduce.
func testKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s)
}

var (
	alice = testKey(1)
	bob   = testKey(2)
	mallo = testKey(3) // nobody's key, as the unit sees it
)

type fixture struct {
	t    *testing.T
	clk  *clock.Fake
	path string
	o    Options
	v    *Verifier
}

func newFixture(t *testing.T, require bool) *fixture {
	t.Helper()
	f := &fixture{t: t, clk: clock.NewFake(t0), path: filepath.Join(t.TempDir(), "cmdauth.json")}
	f.o = Options{
		Unit:      "u1",
		Keys:      map[string]ed25519.PublicKey{"alice": alice.Public().(ed25519.PublicKey), "bob": bob.Public().(ed25519.PublicKey)},
		Require:   require,
		StatePath: f.path,
		Clock:     f.clk,
	}
	f.restart()
	return f
}

// restart makes a new Verifier from the same state file, as after a
// reboot.
func (f *fixture) restart() {
	f.t.Helper()
	v, err := NewVerifier(f.o)
	if err != nil {
		f.t.Fatal(err)
	}
	f.v = v
}

// signed returns a request for command name signed with priv as keyName
// for unit, issued at issued.
func signed(t testing.TB, priv ed25519.PrivateKey, keyName, unit, name, id string, args string, issued time.Time, ttl time.Duration) wire.Request {
	t.Helper()
	req := wire.Request{Header: wire.NewHeader(issued), ID: id}
	if args != "" {
		req.Args = json.RawMessage(args)
	}
	if err := Sign(priv, keyName, unit, name, &req, issued, ttl); err != nil {
		t.Fatal(err)
	}
	return req
}

// overTheWire encodes req and decodes it as the unit does.
func overTheWire(t testing.TB, req wire.Request) wire.Request {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	got, rerr := wire.DecodeRequest(b)
	if rerr != nil {
		t.Fatalf("%v: %s", rerr, b)
	}
	return got
}

func wantReason(t *testing.T, err error, reason, msg string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want a refusal %s", err, err, reason)
	}
	if e.Reason != reason || !strings.Contains(e.Message, msg) {
		t.Fatalf("refused %s: %q; want %s containing %q", e.Reason, e.Message, reason, msg)
	}
	if e.ReplyCode() != wire.CodeUnauthorized {
		t.Errorf("reply code %q, want unauthorized", e.ReplyCode())
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	f := newFixture(t, true)
	dl := t0.Add(30 * time.Second)
	req := wire.Request{Header: wire.NewHeader(t0), ID: "r1", Deadline: &dl,
		Args: json.RawMessage(`{ "from": "2026-11-25T11:00:00Z", "note": "<b>&" }`)}
	if err := Sign(alice, "alice", "u1", "transfer.start", &req, t0, time.Minute); err != nil {
		t.Fatal(err)
	}
	got := overTheWire(t, req)
	who, err := f.v.Check("transfer.start", got)
	if err != nil {
		t.Fatal(err)
	}
	if who != "alice (signed)" {
		t.Errorf("requester %q", who)
	}
	if got.Auth.Expires.Sub(got.Auth.Issued) != time.Minute {
		t.Errorf("validity %s, want 1m", got.Auth.Expires.Sub(got.Auth.Issued))
	}
}

func TestUnsigned(t *testing.T) {
	f := newFixture(t, false)
	who, err := f.v.Check("ping", wire.Request{ID: "r1", From: "carol@ctl-2"})
	if err != nil || who != "unverified: carol@ctl-2" {
		t.Errorf("got %q, %v", who, err)
	}
	who, err = f.v.Check("ping", wire.Request{ID: "r1"})
	if err != nil || who != "unverified: unknown" {
		t.Errorf("got %q, %v", who, err)
	}
	// A signed request is checked even when signatures are optional.
	_, err = f.v.Check("ping", overTheWire(t, signed(t, mallo, "mallory", "u1", "ping", "r2", "", t0, time.Minute)))
	wantReason(t, err, ReasonUnknownKey, `key "mallory" is not one this unit lists`)

	f = newFixture(t, true)
	_, err = f.v.Check("ping", wire.Request{ID: "r1", From: "carol"})
	wantReason(t, err, ReasonUnsigned, "this unit accepts only signed commands; set sign_key in ctl.yaml")
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, true)
	ok := func(name, id, args string) wire.Request {
		return overTheWire(t, signed(t, alice, "alice", "u1", name, id, args, f.clk.Now(), time.Minute))
	}
	for _, tc := range []struct {
		name   string
		cmd    string
		req    func() wire.Request
		reason string
		msg    string
	}{
		{"unknown key", "ping", func() wire.Request {
			return overTheWire(t, signed(t, mallo, "mallory", "u1", "ping", "a1", "", t0, time.Minute))
		}, ReasonUnknownKey, "not one this unit lists"},
		{"another key under a listed name", "ping", func() wire.Request {
			return overTheWire(t, signed(t, mallo, "alice", "u1", "ping", "a2", "", t0, time.Minute))
		}, ReasonBadSignature, "does not match"},
		{"signed for another unit", "ping", func() wire.Request {
			return overTheWire(t, signed(t, alice, "alice", "u2", "ping", "a3", "", t0, time.Minute))
		}, ReasonWrongUnit, `signed for unit "u2", but this is unit "u1"`},
		{"unit field changed to this unit", "ping", func() wire.Request {
			r := signed(t, alice, "alice", "u2", "ping", "a4", "", t0, time.Minute)
			r.Auth.Unit = "u1"
			return overTheWire(t, r)
		}, ReasonBadSignature, "does not match"},
		{"tampered args", "clip", func() wire.Request {
			r := ok("clip", "a5", `{"from":"2026-11-25T11:00:00Z"}`)
			r.Args = json.RawMessage(`{"from":"2026-11-20T11:00:00Z"}`)
			return r
		}, ReasonBadSignature, "does not match"},
		{"args added", "ping", func() wire.Request {
			r := ok("ping", "a6", "")
			r.Args = json.RawMessage(`{}`)
			return r
		}, ReasonBadSignature, "does not match"},
		{"sent to another command", "reboot", func() wire.Request { return ok("ping", "a7", "") }, ReasonBadSignature, "does not match"},
		{"id changed", "ping", func() wire.Request {
			r := ok("ping", "a8", "")
			r.ID = "a8x"
			return r
		}, ReasonBadSignature, "does not match"},
		{"deadline pushed back", "ping", func() wire.Request {
			dl := t0.Add(time.Minute)
			r := wire.Request{Header: wire.NewHeader(t0), ID: "a9", Deadline: &dl}
			if err := Sign(alice, "alice", "u1", "ping", &r, t0, time.Minute); err != nil {
				t.Fatal(err)
			}
			later := t0.Add(time.Hour)
			r.Deadline = &later
			return overTheWire(t, r)
		}, ReasonBadSignature, "does not match"},
		{"expiry extended", "ping", func() wire.Request {
			r := ok("ping", "a10", "")
			r.Auth.Expires = r.Auth.Expires.Add(time.Hour)
			return r
		}, ReasonBadSignature, "does not match"},
		{"signature not base64", "ping", func() wire.Request {
			r := ok("ping", "a11", "")
			r.Auth.Sig = "!!"
			return r
		}, ReasonBadSignature, "not a base64 Ed25519 signature"},
		{"expired", "ping", func() wire.Request {
			return overTheWire(t, signed(t, alice, "alice", "u1", "ping", "a12", "", t0.Add(-2*time.Minute), time.Minute))
		}, ReasonExpired, "the signature expired at 2026-11-25T11:59:00Z"},
		{"valid for too long", "ping", func() wire.Request {
			return overTheWire(t, signed(t, alice, "alice", "u1", "ping", "a13", "", t0, 2*time.Hour))
		}, ReasonTTL, "this unit accepts at most 1h0m0s"},
		{"issued in the future", "ping", func() wire.Request {
			return overTheWire(t, signed(t, alice, "alice", "u1", "ping", "a14", "", t0.Add(10*time.Minute), time.Minute))
		}, ReasonFuture, "10m0s ahead of this unit's clock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.v.Check(tc.cmd, tc.req())
			wantReason(t, err, tc.reason, tc.msg)
		})
	}
	// Nothing refused was recorded: no state file was written.
	if _, err := os.Stat(f.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state written for refused requests: %v", err)
	}
	// Within the skew allowance, a little ahead is fine.
	if _, err := f.v.Check("ping", overTheWire(t, signed(t, alice, "alice", "u1", "ping", "b1", "", t0.Add(time.Minute), time.Minute))); err != nil {
		t.Errorf("issued a minute ahead: %v", err)
	}
}

func TestReplay(t *testing.T) {
	f := newFixture(t, true)
	r1 := overTheWire(t, signed(t, alice, "alice", "u1", "clip", "r1", `{"x":1}`, t0, 10*time.Minute))
	if _, err := f.v.Check("clip", r1); err != nil {
		t.Fatal(err)
	}
	_, err := f.v.Check("clip", r1)
	wantReason(t, err, ReasonReplay, "request id r1 was already admitted")

	// Another key keeps its own state: the same id is its own request.
	if _, err := f.v.Check("clip", overTheWire(t, signed(t, bob, "bob", "u1", "clip", "r1", "", t0, time.Minute))); err != nil {
		t.Errorf("bob's r1: %v", err)
	}

	// After a restart, from the same state file, the replay is still
	// refused.
	f.restart()
	_, err = f.v.Check("clip", r1)
	wantReason(t, err, ReasonReplay, "request id r1 was already admitted")

	// Out of order within the window: issued later, then earlier.
	f.clk.Advance(4 * time.Minute)
	late := overTheWire(t, signed(t, alice, "alice", "u1", "clip", "r3", "", t0.Add(4*time.Minute), 10*time.Minute))
	early := overTheWire(t, signed(t, alice, "alice", "u1", "clip", "r2", "", t0.Add(time.Minute), 10*time.Minute))
	if _, err := f.v.Check("clip", late); err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Check("clip", early); err != nil {
		t.Errorf("out of order by 3 min, within the 5 min window: %v", err)
	}
	// Too old: issued more than the window before the high-water mark,
	// though not expired.
	f.clk.Advance(4 * time.Minute) // now t0+8m, high water t0+8m next
	if _, err := f.v.Check("clip", overTheWire(t, signed(t, alice, "alice", "u1", "clip", "r4", "", t0.Add(8*time.Minute), 10*time.Minute))); err != nil {
		t.Fatal(err)
	}
	old := overTheWire(t, signed(t, alice, "alice", "u1", "clip", "r5", "", t0.Add(2*time.Minute), 10*time.Minute))
	_, err = f.v.Check("clip", old)
	wantReason(t, err, ReasonTooOld, "more than 5m0s before the latest command admitted")

	// r1 has been pruned from memory (issued before high water - window)
	// but is still refused, now as too old, also after a restart.
	f.restart()
	_, err = f.v.Check("clip", r1)
	wantReason(t, err, ReasonTooOld, "too old or a replay")
	var st state
	b, _ := os.ReadFile(f.path)
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	// Only ids issued within the window below the high water are kept.
	if ids := st.Keys["alice"].IDs; len(ids) != 2 || !ids["r3"].Equal(t0.Add(4*time.Minute)) || !ids["r4"].Equal(t0.Add(8*time.Minute)) {
		t.Errorf("alice's ids on disk: %v, want r3 and r4", ids)
	}
	if !st.Keys["alice"].HighWater.Equal(t0.Add(8 * time.Minute)) {
		t.Errorf("high water %v", st.Keys["alice"].HighWater)
	}
}

// At most MaxIDs ids are kept per key; those dropped early raise a floor
// below which everything is refused.
func TestReplayMemoryBound(t *testing.T) {
	f := newFixture(t, true)
	f.o.MaxIDs = 3
	f.restart()
	for i, id := range []string{"m1", "m2", "m3", "m4"} {
		r := overTheWire(t, signed(t, alice, "alice", "u1", "ping", id, "", t0.Add(time.Duration(i)*time.Second), time.Minute))
		if _, err := f.v.Check("ping", r); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.v.st.Keys["alice"].IDs); n != 3 {
		t.Errorf("%d ids kept, want 3", n)
	}
	_, err := f.v.Check("ping", overTheWire(t, signed(t, alice, "alice", "u1", "ping", "m1", "", t0, time.Minute)))
	wantReason(t, err, ReasonTooOld, "at or before the oldest request")
	// Newer than the floor and unseen: admitted.
	if _, err := f.v.Check("ping", overTheWire(t, signed(t, alice, "alice", "u1", "ping", "m0", "", t0.Add(500*time.Millisecond), time.Minute))); err != nil {
		t.Errorf("m0: %v", err)
	}
}

// A state that cannot be written refuses the request, which stays
// unrecorded: once the disk is back, it is admitted.
func TestStateWriteFailure(t *testing.T) {
	f := newFixture(t, true)
	// A file where the state's directory should be: every write fails,
	// for root too.
	dir := filepath.Join(t.TempDir(), "state")
	f.o.StatePath = filepath.Join(dir, "cmdauth.json")
	f.restart()
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := overTheWire(t, signed(t, alice, "alice", "u1", "ping", "w1", "", t0, time.Minute))
	_, err := f.v.Check("ping", r)
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonStorage || e.ReplyCode() != wire.CodeUnavailable || e.Err == nil {
		t.Fatalf("got %v, want a storage refusal", err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Check("ping", r); err != nil {
		t.Errorf("after the disk came back: %v", err)
	}
}

func TestStateFileRecovery(t *testing.T) {
	f := newFixture(t, true)
	s1 := overTheWire(t, signed(t, alice, "alice", "u1", "ping", "s1", "", t0, 10*time.Minute))
	if _, err := f.v.Check("ping", s1); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(f.path)

	// Damaged, or of another version: put aside, and everything issued
	// before the restart is refused, for every key, while fresh commands
	// run.
	for _, damaged := range []string{`{"v":1,"unit":"u1","keys":{`, `{"v":7,"unit":"u1"}`, "\x00\x00"} {
		if err := os.WriteFile(f.path, []byte(damaged), 0o600); err != nil {
			t.Fatal(err)
		}
		f.clk.Advance(time.Second)
		f.restart()
		if aside, err := os.ReadFile(f.path + ".damaged"); err != nil || string(aside) != damaged {
			t.Errorf("damaged copy %q, %v", aside, err)
		}
		_, err := f.v.Check("ping", s1)
		wantReason(t, err, ReasonTooOld, "before this unit's replay record was reset")
		bobOld := overTheWire(t, signed(t, bob, "bob", "u1", "ping", "x"+strconv.Itoa(len(damaged)), "", f.clk.Now().Add(-time.Millisecond), time.Minute))
		_, err = f.v.Check("ping", bobOld)
		wantReason(t, err, ReasonTooOld, "before this unit's replay record was reset")
		fresh := overTheWire(t, signed(t, alice, "alice", "u1", "ping", "y"+strconv.Itoa(len(damaged)), "", f.clk.Now().Add(time.Millisecond), time.Minute))
		if _, err := f.v.Check("ping", fresh); err != nil {
			t.Errorf("fresh request after recovery: %v", err)
		}
		// The floor is kept across the next restart.
		f.restart()
		_, err = f.v.Check("ping", s1)
		wantReason(t, err, ReasonTooOld, "reset")
	}

	// Another unit's state: started afresh (its commands name that unit).
	if err := os.WriteFile(f.path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	o := f.o
	o.Unit = "u2"
	v, err := NewVerifier(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.st.Keys) != 0 || !v.st.Floor.IsZero() || v.st.Unit != "u2" {
		t.Errorf("state for u2: %+v", v.st)
	}
	_, err = v.Check("ping", s1)
	wantReason(t, err, ReasonWrongUnit, `signed for unit "u1"`)
}

func TestNewVerifierChecks(t *testing.T) {
	pub := alice.Public().(ed25519.PublicKey)
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{}, "no unit id"},
		{Options{Unit: "u1", Require: true}, "no operator key is listed"},
		{Options{Unit: "u1", Keys: map[string]ed25519.PublicKey{"a b": pub}}, `"a b" is not`},
		{Options{Unit: "u1", Keys: map[string]ed25519.PublicKey{"a": pub[:5]}}, "is 5 bytes"},
	} {
		if _, err := NewVerifier(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestDocuments(t *testing.T) {
	f := newFixture(t, true)
	doc := []byte(`{"version":7,"config":{"camera":{"fps":25}}}`)
	a, err := SignDocument(alice, "alice", "u1", "config.desired", doc, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Expires.IsZero() {
		t.Errorf("ttl 0 expires at %v", a.Expires)
	}
	// Days later (a retained document waits for an offline unit), and as
	// often as it is delivered again: accepted.
	f.clk.Advance(72 * time.Hour)
	for range 2 {
		if who, err := f.v.CheckDocument("config.desired", doc, a); err != nil || who != "alice (signed)" {
			t.Fatalf("got %q, %v", who, err)
		}
	}
	_, err = f.v.CheckDocument("config.desired", []byte(`{"version":7,"config":{"camera":{"fps":1}}}`), a)
	wantReason(t, err, ReasonBadSignature, "does not match")
	_, err = f.v.CheckDocument("ota.manifest", doc, a)
	wantReason(t, err, ReasonBadSignature, "does not match")
	_, err = f.v.CheckDocument("config.desired", doc, nil)
	wantReason(t, err, ReasonUnsigned, "only signed config.desired documents")
	other, _ := SignDocument(alice, "alice", "u2", "config.desired", doc, t0, 0)
	_, err = f.v.CheckDocument("config.desired", doc, other)
	wantReason(t, err, ReasonWrongUnit, "signed for unit")
	short, _ := SignDocument(alice, "alice", "u1", "config.desired", doc, t0, time.Hour)
	_, err = f.v.CheckDocument("config.desired", doc, short)
	wantReason(t, err, ReasonExpired, "expired")

	// A command signature is not a document signature, nor the reverse,
	// even over the same bytes.
	req := wire.Request{ID: "x1", Args: doc}
	if err := Sign(alice, "alice", "u1", "config.desired", &req, f.clk.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err = f.v.CheckDocument("config.desired", req.Args, req.Auth)
	wantReason(t, err, ReasonBadSignature, "does not match")

	opt := newFixture(t, false)
	if who, err := opt.v.CheckDocument("config.desired", doc, nil); err != nil || who != "unverified" {
		t.Errorf("optional, unsigned: %q, %v", who, err)
	}
}

func TestKeyText(t *testing.T) {
	pub := alice.Public().(ed25519.PublicKey)
	line := FormatPublicKey(pub)
	if !strings.HasPrefix(line, "outpost-operator-ed25519 ") {
		t.Errorf("line %q", line)
	}
	for _, in := range []string{line, "  " + line + " alice@ctl-1\n", strings.TrimPrefix(line, PublicKeyPrefix+" ")} {
		got, err := ParsePublicKey(in)
		if err != nil || !got.Equal(pub) {
			t.Errorf("%q: %v", in, err)
		}
	}
	for in, want := range map[string]string{
		"":                                  "empty operator key",
		PublicKeyPrefix + " %%%":            "not base64",
		PublicKeyPrefix + " c2hvcnQ=":       "is 5 bytes",
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5A": "not base64",
	} {
		if _, err := ParsePublicKey(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}

	pemKey, err := MarshalPrivateKey(alice)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "ops.night-2.key")
	if err := os.WriteFile(p, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	priv, name, err := LoadPrivateKey(p)
	if err != nil || !priv.Equal(alice) || name != "ops.night-2" {
		t.Errorf("loaded %q, %v", name, err)
	}
	for body, want := range map[string]string{
		"not pem": "holds no PEM block",
		"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n": `"EC PRIVATE KEY" PEM block`,
	} {
		if _, err := ParsePrivateKey("k.pem", []byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
	bad := filepath.Join(dir, "a b.key")
	if err := os.WriteFile(bad, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadPrivateKey(bad); err == nil || !strings.Contains(err.Error(), "rename the file") {
		t.Errorf("bad name: %v", err)
	}
}

// A key as openssl writes it ("openssl genpkey -algorithm ed25519") loads.
func TestOpenSSLKey(t *testing.T) {
	const opensslPEM = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB
-----END PRIVATE KEY-----
`
	priv, err := ParsePrivateKey("alice.pem", []byte(opensslPEM))
	if err != nil {
		t.Fatal(err)
	}
	if !priv.Equal(alice) {
		t.Error("the key differs from the one of seed 0x01")
	}
}

// The signed message is length-prefixed: moving bytes from one field to
// its neighbour changes it.
func TestMessageUnambiguous(t *testing.T) {
	a := message(cmdDomain, []byte("ab"), []byte("c"))
	b := message(cmdDomain, []byte("a"), []byte("bc"))
	if string(a) == string(b) {
		t.Fatal("fields can borrow from each other")
	}
	if string(message(cmdDomain, nil)) == string(message(docDomain, nil)) {
		t.Fatal("no domain separation")
	}
}

func TestSignChecks(t *testing.T) {
	req := wire.Request{ID: "r1"}
	if err := Sign(alice[:10], "alice", "u1", "ping", &req, t0, 0); err == nil {
		t.Error("short key accepted")
	}
	if err := Sign(alice, "a/b", "u1", "ping", &req, t0, 0); err == nil || !strings.Contains(err.Error(), "rename the key file") {
		t.Errorf("bad name: %v", err)
	}
	req.Args = json.RawMessage(`{"a":`)
	if err := Sign(alice, "alice", "u1", "ping", &req, t0, 0); err == nil {
		t.Error("malformed args signed")
	}
	req.Args = json.RawMessage(` null `)
	if err := Sign(alice, "alice", "u1", "ping", &req, t0, 0); err != nil || req.Args != nil {
		t.Errorf("null args: %q, %v", req.Args, err)
	}
	if got := req.Auth.Expires.Sub(req.Auth.Issued); got != DefaultTTL {
		t.Errorf("default validity %s", got)
	}
}
