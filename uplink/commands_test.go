package uplink

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink/cmdauth"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

func TestCommandReplies(t *testing.T) {
	b := newFakeBroker()
	r := startSession(t, Options{}, b)
	s := r.s
	var calls atomic.Int32
	s.Handle("sleep", func(ctx context.Context, req Request) (any, error) {
		calls.Add(1)
		var a struct {
			Seconds int    `json:"seconds"`
			Note    string `json:"note"`
		}
		if err := req.DecodeArgs(&a); err != nil {
			return nil, err
		}
		return map[string]any{"slept_s": a.Seconds, "id": req.ID, "name": req.Name}, nil
	})
	s.Handle("find", func(ctx context.Context, req Request) (any, error) {
		return nil, CommandError{Code: wire.CodeNotFound, Message: "no footage between 10:00 and 10:02"}
	})
	s.Handle("find-ptr", func(ctx context.Context, req Request) (any, error) {
		return nil, fmt.Errorf("wrapped: %w", &CommandError{Code: wire.CodeNotFound, Message: "no such hold"})
	})
	s.Handle("broken", func(ctx context.Context, req Request) (any, error) {
		return nil, errors.New("disk on fire")
	})
	s.Handle("panics", func(ctx context.Context, req Request) (any, error) {
		panic("nil map")
	})
	s.Handle("wait", func(ctx context.Context, req Request) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	s.Handle("unencodable", func(ctx context.Context, req Request) (any, error) {
		return func() {}, nil
	})
	base := "outpost/u1/"
	past := t0.Add(-time.Second).Format(time.RFC3339)
	soon := t0.Add(150 * time.Millisecond).Format(time.RFC3339Nano)
	big := `{"v":1,"id":"big1","args":{"note":"` + strings.Repeat("x", 20<<10) + `"}}`

	for _, tc := range []struct {
		name     string
		cmd      string
		payload  string
		replyID  string
		wantOK   bool
		wantCode string
		wantMsg  string
	}{
		{"ok", "sleep", `{"v":1,"id":"r1","args":{"seconds":2}}`, "r1", true, "", ""},
		{"ok without args or ts", "sleep", `{"v":1,"id":"r1b"}`, "r1b", true, "", ""},
		{"malformed JSON with a readable id", "sleep", `{"v":1,"id":"r2","args":{"seconds":`, "r2", false, wire.CodeBadRequest, "malformed JSON"},
		{"malformed JSON without id", "sleep", `{"v":1,`, wire.InvalidID, false, wire.CodeBadRequest, "malformed JSON"},
		{"not JSON at all", "sleep", `reboot please`, wire.InvalidID, false, wire.CodeBadRequest, "malformed JSON"},
		{"empty", "sleep", ``, wire.InvalidID, false, wire.CodeBadRequest, "empty payload"},
		{"array", "sleep", `[1,2]`, wire.InvalidID, false, wire.CodeBadRequest, "must be a JSON object"},
		{"id of the wrong type", "sleep", `{"v":1,"id":5}`, wire.InvalidID, false, wire.CodeBadRequest, "id: want a string, got a number"},
		{"id with a slash", "sleep", `{"v":1,"id":"a/b"}`, wire.InvalidID, false, wire.CodeBadRequest, `id: "a/b" is not`},
		{"id missing", "sleep", `{"v":1}`, wire.InvalidID, false, wire.CodeBadRequest, "id: missing"},
		{"v of the wrong type", "sleep", `{"v":"1","id":"r3"}`, "r3", false, wire.CodeBadRequest, "v: want the whole number 1, got a string"},
		{"v from the future", "sleep", `{"v":2,"id":"r4"}`, "r4", false, wire.CodeBadRequest, "version 2 is not supported"},
		{"deadline not a time", "sleep", `{"v":1,"id":"r5","deadline":"tomorrow"}`, "r5", false, wire.CodeBadRequest, "deadline:"},
		{"deadline of the wrong type", "sleep", `{"v":1,"id":"r5b","deadline":17}`, "r5b", false, wire.CodeBadRequest, "deadline: want an RFC 3339 time"},
		{"args of the wrong type", "sleep", `{"v":1,"id":"r6","args":{"seconds":"two"}}`, "r6", false, wire.CodeBadRequest, "args.seconds: want a whole number, got a JSON string"},
		{"args with a typo", "sleep", `{"v":1,"id":"r7","args":{"secnds":2}}`, "r7", false, wire.CodeBadRequest, `unknown field "secnds"`},
		{"args not an object", "sleep", `{"v":1,"id":"r7b","args":[1]}`, "r7b", false, wire.CodeBadRequest, "args: want an object, got a JSON array"},
		{"unknown command", "reboot", `{"v":1,"id":"r8"}`, "r8", false, wire.CodeUnknownCommand, `no command "reboot"`},
		{"too large", "sleep", big, "big1", false, wire.CodeTooLarge, "the unit accepts at most 16384"},
		{"handler chooses the code", "find", `{"v":1,"id":"r9"}`, "r9", false, wire.CodeNotFound, "no footage between"},
		{"handler chooses the code through a pointer", "find-ptr", `{"v":1,"id":"r9b"}`, "r9b", false, wire.CodeNotFound, "no such hold"},
		{"handler error", "broken", `{"v":1,"id":"r10"}`, "r10", false, wire.CodeInternal, "disk on fire"},
		{"handler panic", "panics", `{"v":1,"id":"r11"}`, "r11", false, wire.CodeInternal, "failed unexpectedly: nil map"},
		{"result that cannot be encoded", "unencodable", `{"v":1,"id":"r11b"}`, "r11b", false, wire.CodeInternal, "encoding the result"},
		{"deadline already passed", "sleep", `{"v":1,"id":"r12","deadline":"` + past + `"}`, "r12", false, wire.CodeDeadlineExceeded, "after its deadline"},
		{"deadline reached while running", "wait", `{"v":1,"id":"r13","deadline":"` + soon + `"}`, "r13", false, wire.CodeDeadlineExceeded, "did not finish before its deadline"},
		{"still working after a panic", "sleep", `{"v":1,"id":"r14"}`, "r14", true, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.deliver(t, base+"cmd/"+tc.cmd, []byte(tc.payload))
			m := next(t, b.published, base+"reply/"+tc.replyID, 5*time.Second)
			rep := decodeReply(t, m)
			if m.retained {
				t.Error("reply published retained")
			}
			if rep.OK != tc.wantOK {
				t.Fatalf("ok = %v, want %v: %s", rep.OK, tc.wantOK, m.payload)
			}
			if tc.replyID != wire.InvalidID && rep.ID != tc.replyID {
				t.Errorf("reply id %q, want %q", rep.ID, tc.replyID)
			}
			if !tc.wantOK {
				if rep.Error.Code != tc.wantCode || !strings.Contains(rep.Error.Message, tc.wantMsg) {
					t.Errorf("error %s: %q, want %s containing %q", rep.Error.Code, rep.Error.Message, tc.wantCode, tc.wantMsg)
				}
			}
		})
	}
	// The first reply carries its result.
	if calls.Load() == 0 {
		t.Fatal("the handler never ran")
	}
}

func TestCommandResultIsJSON(t *testing.T) {
	b := newFakeBroker()
	r := startSession(t, Options{}, b)
	r.s.Handle("ping", func(ctx context.Context, req Request) (any, error) {
		return map[string]any{"pong": true, "name": req.Name, "id": req.ID}, nil
	})
	b.deliver(t, "outpost/u1/cmd/ping", request("p1", nil))
	rep := decodeReply(t, next(t, b.published, "outpost/u1/reply/p1", 5*time.Second))
	var res map[string]any
	if err := json.Unmarshal(rep.Result, &res); err != nil || res["pong"] != true || res["name"] != "ping" || res["id"] != "p1" {
		t.Fatalf("result %s (%v)", rep.Result, err)
	}
}

// A request repeated with the same id is executed once, whether the copy
// arrives while the first runs or after it finished.
func TestDuplicateRequestRunsOnce(t *testing.T) {
	b := newFakeBroker()
	r := startSession(t, Options{}, b)
	release := make(chan struct{})
	var calls atomic.Int32
	r.s.Handle("clip", func(ctx context.Context, req Request) (any, error) {
		n := calls.Add(1)
		<-release
		return map[string]any{"run": n}, nil
	})
	topic := "outpost/u1/cmd/clip"
	b.deliver(t, topic, request("dup1", nil))
	waitUntil(t, 5*time.Second, "the handler to start", func() bool { return calls.Load() == 1 })
	b.deliver(t, topic, request("dup1", nil)) // redelivered while running
	b.deliver(t, topic, request("dup1", nil))
	none(t, b.published, "outpost/u1/reply/dup1", 50*time.Millisecond)
	close(release)
	first := next(t, b.published, "outpost/u1/reply/dup1", 5*time.Second)
	none(t, b.published, "outpost/u1/reply/dup1", 50*time.Millisecond) // one reply for the three copies
	b.deliver(t, topic, request("dup1", nil))                          // a retry after the reply
	again := next(t, b.published, "outpost/u1/reply/dup1", 5*time.Second)
	if !bytes.Equal(first.payload, again.payload) {
		t.Errorf("repeat answered differently:\n first %s\n again %s", first.payload, again.payload)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1", n)
	}
	if n := r.s.Stats().CommandDuplicates; n != 3 {
		t.Errorf("%d duplicates counted, want 3", n)
	}
	// Another id runs.
	b.deliver(t, topic, request("dup2", nil))
	next(t, b.published, "outpost/u1/reply/dup2", 5*time.Second)
	if n := calls.Load(); n != 2 {
		t.Fatalf("handler ran %d times, want 2", n)
	}
}

// With every worker busy and the queue full, a request is answered busy at
// once and not remembered, so its retry runs.
func TestBusyWhenQueueFull(t *testing.T) {
	b := newFakeBroker()
	r := startSession(t, Options{Commands: CommandOptions{Workers: 1, Queue: 1}}, b)
	release := make(chan struct{})
	var started atomic.Int32
	r.s.Handle("slow", func(ctx context.Context, req Request) (any, error) {
		started.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return req.ID, nil
	})
	topic := "outpost/u1/cmd/slow"
	b.deliver(t, topic, request("a", nil))
	waitUntil(t, 5*time.Second, "a to start", func() bool { return started.Load() == 1 })
	b.deliver(t, topic, request("b", nil)) // waits in the queue
	b.deliver(t, topic, request("c", nil)) // no room
	rep := decodeReply(t, next(t, b.published, "outpost/u1/reply/c", 5*time.Second))
	if rep.OK || rep.Error.Code != wire.CodeBusy || !strings.Contains(rep.Error.Message, "retry with the same id") {
		t.Fatalf("c: %+v %+v", rep, rep.Error)
	}
	close(release)
	for _, id := range []string{"a", "b"} {
		if rep := decodeReply(t, next(t, b.published, "outpost/u1/reply/"+id, 5*time.Second)); !rep.OK {
			t.Fatalf("%s: %+v", id, rep.Error)
		}
	}
	b.deliver(t, topic, request("c", nil)) // the retry runs
	if rep := decodeReply(t, next(t, b.published, "outpost/u1/reply/c", 5*time.Second)); !rep.OK {
		t.Fatalf("retry of c: %+v", rep.Error)
	}
	if n := r.s.Stats().CommandsBusy; n != 1 {
		t.Errorf("busy count %d, want 1", n)
	}
}

// A slow handler occupies one worker; other commands keep being answered.
func TestSlowHandlerDoesNotStallOthers(t *testing.T) {
	b := newFakeBroker()
	r := startSession(t, Options{Commands: CommandOptions{Workers: 2, Queue: 4}}, b)
	release := make(chan struct{})
	defer close(release)
	r.s.Handle("slow", func(ctx context.Context, req Request) (any, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	})
	r.s.Handle("fast", func(ctx context.Context, req Request) (any, error) { return "ok", nil })
	b.deliver(t, "outpost/u1/cmd/slow", request("slow1", nil))
	for i := range 20 {
		id := fmt.Sprintf("fast%d", i)
		b.deliver(t, "outpost/u1/cmd/fast", request(id, nil))
		if rep := decodeReply(t, next(t, b.published, "outpost/u1/reply/"+id, 5*time.Second)); !rep.OK {
			t.Fatalf("%s: %+v", id, rep.Error)
		}
	}
}

// Handlers can be registered after Run started; the unit subscribes to
// every command at once.
func TestHandleAfterRun(t *testing.T) {
	b := newFakeBroker()
	r := startSession(t, Options{}, b)
	b.deliver(t, "outpost/u1/cmd/late", request("l1", nil))
	if rep := decodeReply(t, next(t, b.published, "outpost/u1/reply/l1", 5*time.Second)); rep.OK || rep.Error.Code != wire.CodeUnknownCommand {
		t.Fatalf("before Handle: %+v", rep)
	}
	r.s.Handle("late", func(ctx context.Context, req Request) (any, error) { return 1, nil })
	b.deliver(t, "outpost/u1/cmd/late", request("l2", nil))
	if rep := decodeReply(t, next(t, b.published, "outpost/u1/reply/l2", 5*time.Second)); !rep.OK {
		t.Fatalf("after Handle: %+v", rep.Error)
	}
	b.mu.Lock()
	subs := append([]string(nil), b.subs...)
	b.mu.Unlock()
	if len(subs) == 0 || subs[0] != "outpost/u1/cmd/+" {
		t.Errorf("subscriptions %v, want the command filter first", subs)
	}
}

func TestHandleRejectsBadNames(t *testing.T) {
	s := NewSession(quiet(), Options{})
	for _, name := range []string{"", "a/b", "+", "#", "Upper", strings.Repeat("x", 65)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Handle(%q) did not panic", name)
				}
			}()
			s.Handle(name, func(context.Context, Request) (any, error) { return nil, nil })
		}()
	}
}

func TestDedupeBounds(t *testing.T) {
	d := newDedupe(3, time.Minute)
	for i := range 5 {
		id := fmt.Sprint(i)
		if !d.begin(id, t0) {
			t.Fatalf("begin %s refused", id)
		}
		d.finish(id, []byte(id), t0)
	}
	if n := d.len(); n != 3 {
		t.Fatalf("%d entries kept, want 3", n)
	}
	if _, st := d.lookup("0", t0); st != entryNone {
		t.Error("oldest entry kept beyond the bound")
	}
	if r, st := d.lookup("4", t0); st != entryDone || string(r) != "4" {
		t.Errorf("newest entry: %q %d", r, st)
	}
	// Expiry.
	if _, st := d.lookup("4", t0.Add(time.Minute)); st != entryNone {
		t.Error("entry kept beyond its ttl")
	}
	// Running entries are neither evicted nor begun twice; abort forgets.
	if !d.begin("run", t0) || d.begin("run", t0) {
		t.Fatal("begin of a running id")
	}
	if _, st := d.lookup("run", t0.Add(time.Hour)); st != entryRunning {
		t.Error("running entry expired")
	}
	d.abort("run")
	if _, st := d.lookup("run", t0); st != entryNone {
		t.Error("aborted entry kept")
	}
}

func TestDecodeArgsEmpty(t *testing.T) {
	var v struct{ A int }
	v.A = 7
	if err := (Request{}).DecodeArgs(&v); err != nil || v.A != 7 {
		t.Fatalf("%v %v", err, v)
	}
	err := (Request{Args: json.RawMessage(`{"A":1} {"A":2}`)}).DecodeArgs(&v)
	var ce CommandError
	if !errors.As(err, &ce) || ce.Code != wire.CodeBadRequest {
		t.Fatalf("trailing data: %v", err)
	}
}

// signedRequest is a request for command name signed with priv as keyName
// for unit u1, issued at issued.
func signedRequest(t testing.TB, priv ed25519.PrivateKey, keyName, name, id string, args any, issued time.Time) []byte {
	t.Helper()
	req := wire.Request{Header: wire.NewHeader(issued), ID: id}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			t.Fatal(err)
		}
		req.Args = b
	}
	if err := cmdauth.Sign(priv, keyName, "u1", name, &req, issued, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func seededKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// With a cmdauth.Verifier as the gate, only commands signed by a listed
// key for this unit run, once; everything else is answered unauthorized
// and never reaches the handler.
func TestGateSignedCommands(t *testing.T) {
	alice, mallory := seededKey(1), seededKey(2)
	clk := clock.NewFake(t0)
	state := filepath.Join(t.TempDir(), "cmdauth.json")
	newGate := func() *cmdauth.Verifier {
		v, err := cmdauth.NewVerifier(cmdauth.Options{
			Unit: "u1", Require: true, StatePath: state, Clock: clk,
			Keys: map[string]ed25519.PublicKey{"alice": alice.Public().(ed25519.PublicKey)},
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	b := newFakeBroker()
	r := startSession(t, Options{Clock: clk, Commands: CommandOptions{Gate: newGate()}}, b)
	var calls atomic.Int32
	who := make(chan string, 16)
	r.s.Handle("clip", func(ctx context.Context, req Request) (any, error) {
		calls.Add(1)
		who <- req.Requester
		return map[string]string{"id": req.ID}, nil
	})
	topic, reply := "outpost/u1/cmd/clip", "outpost/u1/reply/"
	refused := func(id, msg string) {
		t.Helper()
		rep := decodeReply(t, next(t, b.published, reply+id, 5*time.Second))
		if rep.OK || rep.Error.Code != wire.CodeUnauthorized || !strings.Contains(rep.Error.Message, msg) {
			t.Fatalf("%s: %s, want unauthorized containing %q", id, mustJSON(rep), msg)
		}
	}

	b.deliver(t, topic, request("g1", nil))
	refused("g1", "this unit accepts only signed commands; set sign_key in ctl.yaml")
	b.deliver(t, topic, signedRequest(t, mallory, "mallory", "clip", "g2", nil, t0))
	refused("g2", `key "mallory" is not one this unit lists`)
	b.deliver(t, topic, signedRequest(t, mallory, "alice", "clip", "g3", nil, t0))
	refused("g3", "does not match")
	tampered := bytes.Replace(signedRequest(t, alice, "alice", "clip", "g4", map[string]int{"s": 1}, t0), []byte(`"s":1`), []byte(`"s":2`), 1)
	b.deliver(t, topic, tampered)
	refused("g4", "does not match")

	// A refused id is forgotten: the genuine request of that id runs.
	genuine := signedRequest(t, alice, "alice", "clip", "g1", nil, t0)
	b.deliver(t, topic, genuine)
	rep := decodeReply(t, next(t, b.published, reply+"g1", 5*time.Second))
	if !rep.OK {
		t.Fatalf("signed g1: %+v", rep.Error)
	}
	if got := <-who; got != "alice (signed)" {
		t.Errorf("requester %q", got)
	}
	// A QoS 1 repeat is answered from the first reply, not refused.
	b.deliver(t, topic, genuine)
	if again := decodeReply(t, next(t, b.published, reply+"g1", 5*time.Second)); !again.OK {
		t.Fatalf("repeat: %+v", again.Error)
	}
	// After a restart the dedupe cache is empty, and the gate, from the
	// same state file, refuses the replay.
	r.stop()
	b = newFakeBroker()
	r = startSession(t, Options{Clock: clk, Commands: CommandOptions{Gate: newGate()}}, b)
	r.s.Handle("clip", func(ctx context.Context, req Request) (any, error) {
		calls.Add(1)
		return nil, nil
	})
	b.deliver(t, topic, genuine)
	refused("g1", "replay")
	if n := calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1", n)
	}
}

// gateFunc is a Gate of a function.
type gateFunc func(name string, req wire.Request) (string, error)

func (f gateFunc) Admit(name string, req wire.Request) (string, error) { return f(name, req) }

type codedErr struct{ code, msg string }

func (e codedErr) Error() string     { return e.msg }
func (e codedErr) ReplyCode() string { return e.code }

// recorder is a CommandObserver that hands records to the test.
type recorder chan CommandRecord

func (r recorder) ObserveCommand(c CommandRecord) { r <- c }

func (r recorder) next(t *testing.T) CommandRecord {
	t.Helper()
	select {
	case c := <-r:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no command outcome observed within 5s")
		return CommandRecord{}
	}
}

// The observer sees each request's outcome once, with who asked; a gate's
// error chooses the reply's code when it names one, and a gate's panic
// refuses the request.
func TestObserverSeesEveryOutcome(t *testing.T) {
	b := newFakeBroker()
	rec := make(recorder, 64)
	gate := gateFunc(func(name string, req wire.Request) (string, error) {
		switch {
		case strings.HasPrefix(req.ID, "deny"):
			return "", errors.New("not you, " + req.From)
		case strings.HasPrefix(req.ID, "disk"):
			return "", fmt.Errorf("checking: %w", codedErr{wire.CodeUnavailable, "state not saved"})
		case strings.HasPrefix(req.ID, "boom"):
			panic("gate bug")
		}
		return "checked " + req.From, nil
	})
	r := startSession(t, Options{Commands: CommandOptions{Workers: 1, Queue: 1, Gate: gate, Observer: rec}}, b)
	var ran atomic.Int32
	release := make(chan struct{})
	r.s.Handle("ping", func(ctx context.Context, req Request) (any, error) {
		ran.Add(1)
		return nil, nil
	})
	r.s.Handle("broken", func(ctx context.Context, req Request) (any, error) {
		ran.Add(1)
		return nil, errors.New("disk on fire")
	})
	r.s.Handle("slow", func(ctx context.Context, req Request) (any, error) {
		<-release
		return nil, nil
	})
	base := "outpost/u1/"
	from := func(id, from string, args string) []byte {
		p := `{"v":1,"id":"` + id + `","from":"` + from + `"`
		if args != "" {
			p += `,"args":` + args
		}
		return []byte(p + "}")
	}
	check := func(got CommandRecord, name, id, requester string, ok bool, code, msg string) {
		t.Helper()
		if got.Name != name || got.ID != id || got.Requester != requester || got.OK != ok || got.Code != code || !strings.Contains(got.Message, msg) {
			t.Errorf("observed %+v\nwant name %s id %s requester %q ok %v code %q message containing %q", got, name, id, requester, ok, code, msg)
		}
		if !got.Received.Equal(t0) {
			t.Errorf("%s received at %v, want %v", id, got.Received, t0)
		}
	}

	b.deliver(t, base+"cmd/ping", from("p1", "carol", `{"n":1}`))
	next(t, b.published, base+"reply/p1", 5*time.Second)
	got := rec.next(t)
	check(got, "ping", "p1", "checked carol", true, "", "")
	if string(got.Args) != `{"n":1}` {
		t.Errorf("args %s", got.Args)
	}

	b.deliver(t, base+"cmd/broken", from("p2", "carol", ""))
	next(t, b.published, base+"reply/p2", 5*time.Second)
	check(rec.next(t), "broken", "p2", "checked carol", false, wire.CodeInternal, "disk on fire")

	for _, tc := range []struct{ id, code, msg string }{
		{"deny1", wire.CodeUnauthorized, "not you, mallory"},
		{"disk1", wire.CodeUnavailable, "checking: state not saved"},
		{"boom1", wire.CodeUnauthorized, "could not check the request: gate bug"},
	} {
		b.deliver(t, base+"cmd/ping", from(tc.id, "mallory", ""))
		rep := decodeReply(t, next(t, b.published, base+"reply/"+tc.id, 5*time.Second))
		if rep.OK || rep.Error.Code != tc.code || !strings.Contains(rep.Error.Message, tc.msg) {
			t.Errorf("%s: reply %s", tc.id, mustJSON(rep))
		}
		check(rec.next(t), "ping", tc.id, "unverified: mallory", false, tc.code, tc.msg)
	}
	if n := ran.Load(); n != 2 {
		t.Fatalf("handlers ran %d times, want 2: a refused request ran", n)
	}

	// Decided in dispatch.
	b.deliver(t, base+"cmd/ping", []byte(`{"v":1,"id":"bad1","args":`))
	check(rec.next(t), "ping", "bad1", "unverified: unknown", false, wire.CodeBadRequest, "malformed JSON")
	b.deliver(t, base+"cmd/ping", []byte(`{"v":1,"from":"x","id":"big1","pad":"`+strings.Repeat("x", 17<<10)+`"}`))
	check(rec.next(t), "ping", "big1", "unverified: unknown", false, wire.CodeTooLarge, "at most 16384")
	b.deliver(t, base+"cmd/reboot", from("u1x", "dave", ""))
	check(rec.next(t), "reboot", "u1x", "unverified: dave", false, wire.CodeUnknownCommand, `no command "reboot"`)
	b.deliver(t, base+"cmd/ping", []byte(`{"v":1,"id":"late1","deadline":"`+t0.Add(-time.Second).Format(time.RFC3339)+`"}`))
	check(rec.next(t), "ping", "late1", "unverified: unknown", false, wire.CodeDeadlineExceeded, "after its deadline")

	// Not outcomes: a request without a readable id, and repeats. The
	// next outcome observed is the marker's.
	b.deliver(t, base+"cmd/ping", []byte(`not json`))
	b.deliver(t, base+"cmd/ping", from("p1", "carol", `{"n":1}`))
	next(t, b.published, base+"reply/p1", 5*time.Second)
	b.deliver(t, base+"cmd/marker", from("m1", "", ""))
	check(rec.next(t), "marker", "m1", "unverified: unknown", false, wire.CodeUnknownCommand, "")

	// Busy: one running, one waiting, the third refused.
	b.deliver(t, base+"cmd/slow", from("s1", "erin", ""))
	waitUntil(t, 5*time.Second, "s1 to leave the queue", func() bool { return len(r.s.cmds.jobs) == 0 })
	b.deliver(t, base+"cmd/slow", from("s2", "erin", ""))
	b.deliver(t, base+"cmd/slow", from("s3", "erin", ""))
	check(rec.next(t), "slow", "s3", "unverified: erin", false, wire.CodeBusy, "retry with the same id")
	close(release)
	seen := map[string]bool{}
	for range 2 {
		got := rec.next(t)
		seen[got.ID] = got.OK && got.Requester == "checked erin"
	}
	if !seen["s1"] || !seen["s2"] {
		t.Errorf("slow outcomes: %v", seen)
	}
}
