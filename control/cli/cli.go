// Package cli is the command line of outpostctl, the control room's tool.
// cmd/outpostctl only calls Main.
package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/outpost-cctv/outpost/internal/version"
)

// Exit codes of outpostctl.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Env is what a subcommand may touch of the outside world.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// Main runs the outpostctl command line and returns the exit code.
func Main(ctx context.Context, env Env, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.Stderr, "outpostctl: the control room's tool for a fleet of Outpost units")
		fmt.Fprintln(env.Stderr, "\nUsage: outpostctl COMMAND [flags]\n\nCommands:\n  version    print the version")
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	switch args[0] {
	case "version":
		fmt.Fprintln(env.Stdout, version.String("outpostctl"))
		return ExitOK
	}
	fmt.Fprintf(env.Stderr, "outpostctl: unknown command %q (try 'outpostctl help')\n", args[0])
	return ExitUsage
}
