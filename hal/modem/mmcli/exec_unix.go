//go:build unix

package mmcli

import (
	"os/exec"
	"syscall"
)

// killGroup runs cmd in its own process group and, when its context ends,
// kills the whole group, so a child it started does not outlive it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
