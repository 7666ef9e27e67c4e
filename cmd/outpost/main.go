// Command outpost is the agent that runs on an Outpost CCTV unit. It only
// wires the process to agent/cli; see `outpost help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/outpost-cctv/outpost/agent/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := cli.Main(ctx, cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}
