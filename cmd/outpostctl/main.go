// Command outpostctl is the control room's tool for a fleet of Outpost
// units. It only wires the process to control/cli; see `outpostctl help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/outpost-cctv/outpost/control/cli"
	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := cli.Main(ctx, cli.Env{
		Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv,
		Stdin: os.Stdin, StdinIsTerminal: term.IsTerminal(int(os.Stdin.Fd())),
	}, os.Args[1:])
	stop()
	os.Exit(code)
}
