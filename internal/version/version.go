// Package version holds the build's version, commit and date, stamped by the
// Makefile with -ldflags "-X".
package version

import "fmt"

// Set by the linker; the defaults describe a plain `go build`.
var (
	Version = "dev"
	Commit  = "unknown"
	Date    = "unknown"
)

// String is the one-line description printed by `outpost version`.
func String(program string) string {
	return fmt.Sprintf("%s %s (commit %s, built %s)", program, Version, Commit, Date)
}
