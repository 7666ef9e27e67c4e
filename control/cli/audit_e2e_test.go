package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/audit"
	"github.com/outpost-cctv/outpost/control"
	"github.com/outpost-cctv/outpost/internal/testbroker"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// TestAuditEndToEnd runs `outpostctl audit` against a unit's session on a
// real broker: the unit records the commands it gets in its audit log
// (as the session's observer) and serves audit.list from it.
func TestAuditEndToEnd(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	quiet := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	log, err := audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	s := uplink.NewSession(quiet, uplink.Options{
		Broker: b.URL(), Topics: wire.Topics{Prefix: "outpost", Unit: "u1"},
		Online:   func() wire.Status { return wire.Status{Header: wire.NewHeader(time.Now()), State: wire.Online} },
		Commands: uplink.CommandOptions{Observer: log},
	})
	s.Handle(audit.ListCommand, log.ListHandler())
	s.Handle("snapshot", func(ctx context.Context, req uplink.Request) (any, error) { return map[string]int{"bytes": 1}, nil })

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
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
	for {
		if _, err := c.Status(ctx, "u1"); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("the unit never came online: %v", err)
		}
	}
	args := map[string]any{"at": "2026-11-25T03:12:00Z", "recipient": "Met Police PC 1234", "reason": "crime ref 55/25"}
	if err := c.Call(ctx, "u1", "snapshot", args, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Call(ctx, "u1", "no.such", nil, nil); err == nil {
		t.Fatal("an unknown command succeeded")
	}

	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		g := &globals{env: Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, log: quiet}
		code := auditCmd(ctx, g, append([]string{"--broker", b.URL(), "--timeout", "20s"}, args...))
		return code, out.String(), errb.String()
	}
	code, out, errs := run("u1", "--since", "1h")
	if code != ExitOK {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	for _, want := range []string{"snapshot", "Met Police PC 1234 / crime ref 55/25", "unknown_command", "chain intact"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// --json, paged one entry at a time: the reading itself is recorded
	// too, so the unit holds at least three entries by now.
	code, out, errs = run("u1", "--since", "all", "--json", "--limit", "2")
	if code != ExitOK {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	var l control.AuditList
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(l.Entries) != 2 || !l.More || !l.ChainOK || l.Entries[0].Seq != 1 || l.Entries[0].Action != "snapshot" {
		t.Fatalf("json: %+v", l)
	}

	// Tamper with the unit's file: the command says so and fails.
	files, _ := filepath.Glob(filepath.Join(dir, "*.audit"))
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(raw, []byte("Met Police"))
	raw[i] = 'N' // the CRC now fails too: damage in the middle, reported
	if err := os.WriteFile(files[0], raw, 0o640); err != nil {
		t.Fatal(err)
	}
	code, out, _ = run("u1", "--since", "all")
	if code != ExitFailure || !strings.Contains(out, "CHAIN BROKEN") || !strings.Contains(out, "entry 1 (0000000000000001.audit at offset 64): ") || !strings.Contains(out, "damaged bytes") {
		t.Fatalf("tampered log: exit %d:\n%s", code, out)
	}
}
