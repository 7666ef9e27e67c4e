package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent"
)

// TestOTADemoUpgrade is the demo a newcomer runs: 'outpost demo' with its
// embedded broker, then, as its banner says, a release signed with the
// demo's own key pushed with 'outpostctl ota push', and 'outpostctl ota
// status' reporting it committed.
func TestOTADemoUpgrade(t *testing.T) {
	t.Parallel()
	_, v2 := otaAgents(t)
	data := t.TempDir()
	cmd := exec.Command(bins.outpost, "demo", "--listen", "127.0.0.1:0", "--unit-id", "ota-demo", "--data", data, "--trial-window", "30s")
	var log syncBuffer
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() || os.Getenv("OUTPOST_TEST_UNIT_LOG") != "" {
			t.Logf("demo log:\n%s", log.String())
		}
	})

	// The banner: the broker, and how to upgrade the unit.
	var banner strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		banner.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "Stop with Ctrl-C") {
			break
		}
	}
	go io.Copy(&log, stdout)
	t.Logf("demo banner:\n%s", banner.String())
	broker := regexp.MustCompile(`MQTT broker +(tcp://\S+)`).FindStringSubmatch(banner.String())
	if broker == nil {
		t.Fatalf("no broker in the demo's banner:\n%s", banner.String())
	}
	key := filepath.Join(data, "release.key")
	mustHave(t, "demo banner", banner.String(), "Upgrade it over the air", "release build --key "+key, "ota push ota-demo", "ota status ota-demo")
	run := func(args ...string) (string, int) {
		c := exec.Command(bins.outpostctl, args...)
		c.Env = append(os.Environ(), "HOME="+t.TempDir())
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		c.Run()
		return out.String(), c.ProcessState.ExitCode()
	}
	ctlDemo := func(args ...string) (string, int) { return run(append([]string{"--broker", broker[1]}, args...)...) }

	// The unit is up and takes updates: its status is published.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, code := ctlDemo("ota", "status", "ota-demo")
		if code == 0 && strings.Contains(out, "idle") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo unit published no update status set up for updates:\n%s", out)
		}
	}

	// The demo runs an untagged build: its release allows any order, as
	// the banner's command does.
	bundle := filepath.Join(t.TempDir(), "v2.bundle")
	out, code := run("release", "build", "--key", key, "--arch", agent.BuildArch(), "--version", "v2.0.0", "--allow-downgrade", v2, "-o", bundle)
	if code != 0 {
		t.Fatalf("release build: exit %d\n%s", code, out)
	}
	out, code = ctlDemo("ota", "push", "ota-demo", bundle)
	t.Logf("ota push:\n%s", out)
	if code != 0 {
		t.Fatalf("ota push: exit %d", code)
	}
	mustHave(t, "ota push", out, "v2.0.0 installed; on trial", "committed v2.0.0")
	out, code = ctlDemo("ota", "status", "ota-demo")
	t.Logf("ota status:\n%s", out)
	if code != 0 {
		t.Fatalf("ota status: exit %d", code)
	}
	mustHave(t, "ota status", out, "v2.0.0", "committed")
	if cur, err := os.Readlink(filepath.Join(data, "ota", "current")); err != nil || cur != "b" {
		t.Fatalf("current -> %q (%v), want b", cur, err)
	}
}
