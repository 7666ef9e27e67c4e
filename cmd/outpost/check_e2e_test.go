package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/testbroker"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// maskCheck keeps what outpost check's report says the same from one run
// and machine to another: numbers, times and paths become placeholders,
// and the verdicts of lines that depend on the machine (its clock, its
// disk, the camera's pace under load) are masked.
func maskCheck(out, data, snap string) string {
	out = strings.ReplaceAll(out, data, "DATA")
	out = strings.ReplaceAll(out, snap, "SNAPSHOT")
	out = regexp.MustCompile(`tcp://127\.0\.0\.1:\d+`).ReplaceAllString(out, "BROKER")
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		for _, c := range []string{"camera", "clock", "storage", "retention"} {
			if strings.HasPrefix(l, "PASS  "+c) || strings.HasPrefix(l, "WARN  "+c) {
				l = "....  " + strings.SplitN(l, " ", 3)[2]
				if c != "camera" {
					l = strings.SplitN(l, c, 2)[0] + c + " (depends on the machine)"
				}
			}
		}
		if strings.HasSuffix(l, "failed") {
			l = regexp.MustCompile(`^(PASS|WARN|FAIL):`).ReplaceAllString(l, "....:")
		}
		lines = append(lines, l)
	}
	out = strings.Join(lines, "\n")
	out = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`).ReplaceAllString(out, "TIME")
	out = regexp.MustCompile(`\d+(\.\d+)?(ns|µs|ms|s)\b`).ReplaceAllString(out, "DURATION")
	out = regexp.MustCompile(`\d+(\.\d+)?`).ReplaceAllString(out, "N")
	return out
}

// TestCheckAgainstTheDemo runs outpost check beside a running demo unit:
// the report against a golden file (times and figures masked), the
// picture saved, the scene reference kept, and a dead broker a FAIL line.
func TestCheckAgainstTheDemo(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	data := t.TempDir()
	startOutpost(t, "demo", "--data", data, "--broker", b.URL(), "--unit-id", "check-1")
	cfg := filepath.Join(data, "outpost.yaml")
	waitFor(t, 20*time.Second, "the demo's config file", func() bool { _, err := os.Stat(cfg); return err == nil })
	snap := filepath.Join(t.TempDir(), "check.jpg")
	cmd := exec.Command(outpostBin, "check", "--config", cfg, "--snapshot", snap, "--write-test", "4")
	out, err := cmd.CombinedOutput()
	t.Logf("outpost check:\n%s", out)
	if err != nil {
		t.Fatalf("outpost check: %v", err)
	}
	got := maskCheck(string(out), data, snap)
	golden := filepath.Join("testdata", "check.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/outpost -run TestCheckAgainstTheDemo -update)", err)
	}
	if got != string(want) {
		t.Errorf("report differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
	if st, err := os.Stat(snap); err != nil || st.Size() < 1000 {
		t.Errorf("snapshot: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "scene", "reference")); err != nil {
		t.Errorf("no scene reference kept: %v", err)
	}
	// The link down: a FAIL line, exit code 1, the rest still checked.
	b.Stop()
	out, err = exec.Command(outpostBin, "check", "--config", cfg, "--snapshot", snap, "--write-test", "0").CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "FAIL  broker") || !strings.Contains(string(out), "PASS  battery") {
		t.Errorf("with the broker down: exit %d\n%s", code, out)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
