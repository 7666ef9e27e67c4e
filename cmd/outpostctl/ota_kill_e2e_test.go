package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/testbroker"
	"github.com/outpost-cctv/outpost/ota"
)

// TestOTAKilledAtEachStep kills the real agent with SIGKILL at each step
// of an update (ota's failpoints, once each), under the real launcher: the
// unit ends on the old release or the new one, never neither, and the
// push either completes or reports what happened, and completes when
// pushed again.
func TestOTAKilledAtEachStep(t *testing.T) {
	t.Parallel()
	v1, v2 := otaAgents(t)
	b := testbroker.Start(t, testbroker.Options{})
	k := newKit(t)
	bundle := k.bundle(t, v2, ota.BuildOptions{Version: "v2.0.0"})
	for _, tc := range []struct {
		point string
		// retried: the unit restarted before the new release was
		// installed whole; the push reports it and is pushed again.
		retried bool
		report  string
		// again is said by the push sent again.
		again string
	}{
		{ota.FailMidDownload, true, "the unit restarted while receiving v2.0.0", "chunks already on the unit"},
		{ota.FailMidVerify, false, "", ""},
		{ota.FailAfterVerified, true, "the unit restarted while v2.0.0 was being written", ""},
		{ota.FailMidInstall, true, "the unit restarted while v2.0.0 was being written", ""},
		{ota.FailAfterInstalled, false, "", ""},
		{ota.FailAfterSwitch, false, "", ""},
		{ota.FailMidTrial, false, "", ""},
	} {
		t.Run(tc.point, func(t *testing.T) {
			t.Parallel()
			id := "ota-fp-" + strings.ReplaceAll(tc.point, ":", "-")
			fired := filepath.Join(t.TempDir(), "fired")
			u := newOTAUnit(t, b, id, k)
			u.env = []string{ota.EnvFailpoint + "=" + tc.point, ota.EnvFailpointOnce + "=" + fired}
			u.launch(t, v1)
			waitOnline(t, b, u.id)
			c := dialControl(t, b)
			otaStatus(t, c, u.id, 20*time.Second, "v1 running", runningIs("v1.0.0"))

			out, stderr, code := ctl(t, b, "ota", "push", u.id, bundle, "--wait", "90s", "--chunk-size", "32768")
			t.Logf("ota push, killed at %s: exit %d\n%s", tc.point, code, out)
			if _, err := os.Stat(fired); err != nil {
				t.Fatalf("the failpoint %s never fired: %v", tc.point, err)
			}
			if u.cmd.ProcessState != nil {
				t.Fatalf("the launcher exited: %v", u.cmd.ProcessState)
			}
			runs := checkRunnable(t, u)
			t.Logf("after the kill at %s the unit runs %s", tc.point, runs)
			if tc.retried {
				if code != 1 {
					t.Fatalf("ota push: exit %d, want 1 (reported)\n%s%s", code, out, stderr)
				}
				mustHave(t, "ota push", out, "rejected v2.0.0, nothing installed, running v1.0.0", tc.report)
				if runs != "v1.0.0" {
					t.Fatalf("the unit runs %s, want v1.0.0 until pushed again", runs)
				}
				out, stderr, code = ctl(t, b, "ota", "push", u.id, bundle, "--wait", "90s", "--chunk-size", "32768")
				t.Logf("ota push again:\n%s", out)
				mustHave(t, "ota push again", out, tc.again)
			}
			if code != 0 {
				t.Fatalf("ota push: exit %d\n%s%s", code, out, stderr)
			}
			mustHave(t, "ota push", out, "committed v2.0.0 (was v1.0.0)")
			otaStatus(t, c, u.id, 20*time.Second, "v2 committed", func(s ota.Status) bool {
				return s.State == ota.StateCommitted && runningIs("v2.0.0")(s)
			})
			if runs := checkRunnable(t, u); runs != "v2.0.0" {
				t.Fatalf("current runs %s, want v2.0.0", runs)
			}
			out, _, code = ctl(t, b, "ota", "status", u.id)
			if code != 0 {
				t.Fatalf("ota status: exit %d", code)
			}
			mustHave(t, "ota status", out, "v2.0.0", "committed")
		})
	}
}

// checkRunnable checks the unit is never without a release: the binary
// current names exists and runs; it returns its version.
func checkRunnable(t *testing.T, u *otaUnit) string {
	t.Helper()
	root := filepath.Join(u.data, "ota")
	slot, err := os.Readlink(filepath.Join(root, ota.CurrentLink))
	if err != nil {
		t.Fatalf("no current release: %v", err)
	}
	out, err := exec.Command(filepath.Join(root, ota.CurrentLink, ota.BinaryName), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("current -> %s does not run: %v\n%s", slot, err, out)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || (f[1] != "v1.0.0" && f[1] != "v2.0.0") {
		t.Fatalf("current -> %s is %q, neither v1.0.0 nor v2.0.0", slot, out)
	}
	return f[1]
}
