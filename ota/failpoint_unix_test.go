//go:build unix

package ota

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFailpointHelper is the process the failpoint test kills; it does
// nothing unless run by TestFailpointKillsTheProcess.
func TestFailpointHelper(t *testing.T) {
	if os.Getenv("OTA_FAILPOINT_HELPER") != "1" {
		t.Skip("run by TestFailpointKillsTheProcess")
	}
	Failpoint(FailAfterVerified)
	os.Stdout.WriteString("survived\n")
}

// TestFailpointKillsTheProcess runs a real process through a failpoint:
// SIGKILL the first time, nothing once its marker exists.
func TestFailpointKillsTheProcess(t *testing.T) {
	if testing.Short() {
		// Under emulation (make test-emulated runs -short) the test
		// binary is for another architecture and cannot run itself
		// without binfmt; make test runs this.
		t.Skip("re-executes its own test binary as a child")
	}
	t.Parallel()
	once := filepath.Join(t.TempDir(), "fired")
	run := func(env ...string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFailpointHelper$", "-test.v")
		cmd.Env = append(os.Environ(), append([]string{"OTA_FAILPOINT_HELPER=1"}, env...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(EnvFailpoint+"="+FailAfterVerified, EnvFailpointOnce+"="+once)
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("the process was not killed: %v\n%s", err, out)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the process ended with %v, want SIGKILL\n%s", ee, out)
	}
	if strings.Contains(out, "survived") {
		t.Fatalf("the process went past the failpoint:\n%s", out)
	}
	if _, err := os.Stat(once); err != nil {
		t.Fatalf("no once marker: %v", err)
	}
	for _, env := range [][]string{
		{EnvFailpoint + "=" + FailAfterVerified, EnvFailpointOnce + "=" + once}, // fired already
		{EnvFailpoint + "=" + FailMidInstall},                                   // another point
		nil,                                                                     // inert
	} {
		if out, err := run(env...); err != nil || !strings.Contains(out, "survived") {
			t.Fatalf("env %v: %v\n%s", env, err, out)
		}
	}
}
