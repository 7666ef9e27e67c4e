package cmdauth_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/control"
	"github.com/outpost-cctv/outpost/internal/testbroker"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/cmdauth"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

type recorder chan uplink.CommandRecord

func (r recorder) ObserveCommand(c uplink.CommandRecord) { r <- c }

func (r recorder) next(t *testing.T) uplink.CommandRecord {
	t.Helper()
	select {
	case c := <-r:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no command outcome observed within 10s")
		return uplink.CommandRecord{}
	}
}

// The control room's client signs, a real broker carries, the unit's
// session with a Verifier as its gate checks: a signed call runs as its
// key's operator, an unsigned one is refused with what to do.
func TestSignedCallThroughBroker(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	alice := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	v, err := cmdauth.NewVerifier(cmdauth.Options{
		Unit: "u1", Require: true, StatePath: filepath.Join(t.TempDir(), "cmdauth.json"),
		Keys: map[string]ed25519.PublicKey{"alice": alice.Public().(ed25519.PublicKey)},
	})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := make(recorder, 16)
	s := uplink.NewSession(quiet, uplink.Options{
		Broker: b.URL(), Topics: wire.Topics{Prefix: "outpost", Unit: "u1"},
		Online:   func() wire.Status { return wire.Status{Header: wire.NewHeader(time.Now()), State: wire.Online} },
		Commands: uplink.CommandOptions{Gate: v, Observer: rec},
	})
	s.Handle("whoami", func(ctx context.Context, req uplink.Request) (any, error) {
		return map[string]string{"requester": req.Requester}, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.Run(runCtx) }()
	defer func() { stop(); <-done }()

	c, err := control.Dial(ctx, control.Options{Broker: b.URL()}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The unit subscribes once connected; a call before that would go
	// unheard, so wait for its retained online status.
	for {
		if _, err := c.Status(ctx, "u1"); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("the unit never came online: %v", err)
		}
	}

	err = c.Call(ctx, "u1", "whoami", nil, nil)
	var ue *control.UnitError
	if !errors.As(err, &ue) || ue.Code != wire.CodeUnauthorized || !strings.Contains(ue.Message, "set sign_key in ctl.yaml") {
		t.Fatalf("unsigned call: %v", err)
	}
	if got := rec.next(t); got.OK || got.Code != wire.CodeUnauthorized || !strings.HasPrefix(got.Requester, "unverified: ") {
		t.Errorf("observed %+v", got)
	}

	if err := c.SetSigner("alice", alice); err != nil {
		t.Fatal(err)
	}
	var res struct{ Requester string }
	if err := c.Call(ctx, "u1", "whoami", map[string]string{"note": "<&>"}, &res); err != nil {
		t.Fatalf("signed call: %v", err)
	}
	if res.Requester != "alice (signed)" {
		t.Errorf("requester %q", res.Requester)
	}
	if got := rec.next(t); !got.OK || got.Requester != "alice (signed)" || string(got.Args) != `{"note":"\u003c\u0026\u003e"}` {
		t.Errorf("observed %+v (args %s)", got, got.Args)
	}
}
