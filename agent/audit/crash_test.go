package audit

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const crashDirEnv = "OUTPOST_AUDIT_CRASH_DIR"

// TestHelperProcess is the child of TestCrashDurability: it appends
// entries until killed, printing each one's sequence and hash once Append
// has returned, that is once the entry is acknowledged as durable.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrashDurability")
	}
	l, err := Open(dir, Options{FileMaxBytes: 8 << 10, MaxAge: -1, MaxTotalBytes: -1})
	if err != nil {
		fmt.Printf("ERR %v\n", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		e, err := l.Append(Entry{Action: "clip.start", Requester: "alice (signed)", RequestID: fmt.Sprintf("r%d", i),
			From: time.Unix(1764040320, 0), To: time.Unix(1764040380, 0), Result: "ok", Detail: strings.Repeat("x", i%300)})
		if err != nil {
			fmt.Printf("ERR %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("ACK %d %s\n", e.Seq, e.Hash)
	}
}

// TestCrashDurability kills a real process appending to the log with
// SIGKILL at a random moment, several times over the same log, and checks
// that every acknowledged entry survived and the chain verifies.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	acked := map[uint64]string{}
	for round := range 4 {
		kill := 20 + rand.IntN(200)
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		n := 0
		for sc.Scan() {
			line := sc.Text()
			var seq uint64
			var hash string
			if _, err := fmt.Sscanf(line, "ACK %d %s", &seq, &hash); err != nil {
				if strings.HasPrefix(line, "ERR") {
					t.Fatalf("round %d: child: %s", round, line)
				}
				continue
			}
			if old, ok := acked[seq]; ok && old != hash {
				t.Fatalf("round %d: seq %d acknowledged twice, with different hashes", round, seq)
			}
			acked[seq] = hash
			if n++; n == kill {
				if err := cmd.Process.Kill(); err != nil { // SIGKILL
					t.Fatal(err)
				}
			}
		}
		cmd.Wait()
		if n < kill {
			t.Fatalf("round %d: child stopped after %d entries, before it was killed", round, n)
		}
		t.Logf("round %d: killed after %d acknowledged entries", round, n)

		l, err := Open(dir, Options{FileMaxBytes: 8 << 10, MaxAge: -1, MaxTotalBytes: -1})
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.Since(time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		have := map[uint64]string{}
		for _, e := range got {
			have[e.Seq] = e.Hash
		}
		for seq, h := range acked {
			if have[seq] != h {
				t.Fatalf("round %d: acknowledged entry %d lost or changed (have %q)", round, seq, have[seq])
			}
		}
		rep, err := l.Verify()
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK {
			t.Fatalf("round %d: chain broken after SIGKILL: %v", round, rep.Problems)
		}
		l.Close()
		// Entries written after the last acknowledgement may or may not be
		// there; any that are count as acknowledged from now on.
		for seq, h := range have {
			acked[seq] = h
		}
	}
	if len(acked) < 80 {
		t.Fatalf("only %d entries over all rounds", len(acked))
	}
}
