package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/ptytest"
)

// runCLI runs the outpost command line in this process.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := Main(ctx, Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, args)
	return out.String(), errb.String(), code
}

// playVEDirect plays a Victron charge controller on the master of a
// pseudo-terminal: the recorded block, once a second as the device sends
// it, until the test ends.
func playVEDirect(t *testing.T, master *os.File, transcript string) {
	t.Helper()
	block, err := os.ReadFile(transcript)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Millisecond) // faster than the device: the test need not wait a second
		defer tick.Stop()
		for {
			if _, err := master.Write(block); err != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); master.Close(); wg.Wait() })
}

func TestProbePowerVEDirect(t *testing.T) {
	master, port := ptytest.Open(t)
	playVEDirect(t, master, "../../hal/power/vedirect/testdata/mppt.txt")
	out, stderr, code := runCLI(t, "probe", "power", "--driver", "vedirect", "--port", port)
	t.Logf("outpost probe power:\n%s%s", out, stderr)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"power: vedirect on " + port,
		"battery        12.85 V   +3.20 A",
		"solar panel    18.42 V   45 W",
		"charge state   bulk",
		"yield today    210 Wh",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	out, _, code = runCLI(t, "probe", "power", "--driver", "vedirect", "--port", port, "--json")
	if code != 0 || !strings.Contains(out, `"battery_v": 12.85`) || !strings.Contains(out, `"panel_w": 45`) || !strings.Contains(out, `"charge_state": "bulk"`) {
		t.Errorf("--json: exit %d\n%s", code, out)
	}
}

// TestProbePowerBatteryMonitor feeds a BMV battery monitor's block: its
// state of charge.
func TestProbePowerBatteryMonitor(t *testing.T) {
	master, port := ptytest.Open(t)
	playVEDirect(t, master, "../../hal/power/vedirect/testdata/bmv.txt")
	out, stderr, code := runCLI(t, "probe", "power", "--driver", "vedirect", "--port", port)
	t.Logf("outpost probe power:\n%s%s", out, stderr)
	if code != 0 || !strings.Contains(out, "state of charge ") || strings.Contains(out, "state of charge -") {
		t.Fatalf("exit %d: no state of charge", code)
	}
}

func TestProbePowerFailures(t *testing.T) {
	_, stderr, code := runCLI(t, "probe", "power", "--driver", "vedirect", "--port", "/dev/outpost-no-such-port", "--timeout", "2s")
	if code != 1 || !strings.Contains(stderr, "/dev/outpost-no-such-port") || !strings.Contains(stderr, "check the VE.Direct cable") {
		t.Errorf("missing port: exit %d: %s", code, stderr)
	}
	_, stderr, code = runCLI(t, "probe", "power", "--driver", "ina3221")
	if code != 2 || !strings.Contains(stderr, "power.source") {
		t.Errorf("unknown driver: exit %d: %s", code, stderr)
	}
	// Garbage on the line: no valid block, a clear error, no reading.
	master, port := ptytest.Open(t)
	garbage := t.TempDir() + "/garbage"
	os.WriteFile(garbage, bytes.Repeat([]byte("V\t12x\r\nChecksum\t?\r\n\x00\xff"), 20), 0o600)
	playVEDirect(t, master, garbage)
	out, stderr, code := runCLI(t, "probe", "power", "--driver", "vedirect", "--port", port, "--timeout", "3s")
	if code != 1 || out != "" || !strings.Contains(stderr, "outpost probe power:") {
		t.Errorf("garbage: exit %d\n%s%s", code, out, stderr)
	}
}

// playModem answers AT commands on the master of a pseudo-terminal from a
// recorded transcript: "> CMD" lines, each followed by the modem's answer.
func playModem(t *testing.T, master *os.File, transcript string) {
	t.Helper()
	b, err := os.ReadFile(transcript)
	if err != nil {
		t.Fatal(err)
	}
	answers := map[string][]string{}
	var cmd string
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "#") || l == "":
		case strings.HasPrefix(l, "> "):
			cmd = strings.TrimPrefix(l, "> ")
		default:
			answers[cmd] = append(answers[cmd], l)
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var line []byte
		buf := make([]byte, 256)
		for {
			n, err := master.Read(buf)
			if err != nil {
				// No slave open (the driver closed the port between two
				// readings): the master reads EIO until it is reopened.
				select {
				case <-done:
					return
				case <-time.After(5 * time.Millisecond):
				}
				continue
			}
			for _, c := range buf[:n] {
				if c != '\r' && c != '\n' {
					line = append(line, c)
					continue
				}
				cmd := strings.TrimSpace(string(line))
				line = line[:0]
				if cmd == "" {
					continue
				}
				ans, ok := answers[cmd]
				if !ok {
					ans = []string{"ERROR"}
				}
				master.Write([]byte("\r\n" + strings.Join(ans, "\r\n") + "\r\n"))
			}
		}
	}()
	t.Cleanup(func() { close(done); master.Close(); wg.Wait() })
}

func TestProbeModemAT(t *testing.T) {
	master, port := ptytest.Open(t)
	playModem(t, master, "../../hal/modem/at/testdata/quectel.txt")
	out, stderr, code := runCLI(t, "probe", "modem", "--driver", "at", "--port", port, "--flavor", "quectel")
	t.Logf("outpost probe modem:\n%s%s", out, stderr)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"modem: at (quectel) on " + port,
		"registered     yes   operator EE",
		"RSRP -95 dBm   RSRQ -11.0 dB   SINR ",
		"quality: fair",
		"band 3",
		"modem clock    2026-11-25 20:55:01 UTC",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
