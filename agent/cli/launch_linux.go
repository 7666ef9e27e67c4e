package cli

import "syscall"

// childAttr makes the kernel send SIGTERM to the agent when the launcher
// dies, so that a launcher killed outright never leaves an agent running
// beside the next one.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
