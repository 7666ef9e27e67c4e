//go:build !unix

package mmcli

import "os/exec"

// killGroup leaves cmd as it is: only the process is killed when its
// context ends.
func killGroup(*exec.Cmd) {}
