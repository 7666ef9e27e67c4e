// Package cli is the command line of the outpost binary: it parses
// subcommands and flags and calls into the agent's packages. cmd/outpost
// only calls Main.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"

	"github.com/outpost-cctv/outpost/agent"
	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/internal/version"
)

// Env is what a subcommand may touch of the outside world.
type Env struct {
	Stdout, Stderr io.Writer
	// Getenv reads the environment (os.Getenv in the binary).
	Getenv func(string) string
}

type command struct {
	summary string
	run     func(ctx context.Context, env Env, args []string) int
}

func commands() map[string]command {
	return map[string]command{
		"run":       {"run the agent from a config file", runCmd},
		"demo":      {"run a simulated unit with an embedded MQTT broker", demoCmd},
		"config":    {"check a config file: outpost config check FILE", configCmd},
		"version":   {"print the version", versionCmd},
		"probe":     {"check hardware on site: outpost probe camera|power|modem|gpio ...", probeCmd},
		"provision": {"make the unit's evidence key and check its certificate", provisionCmd},
		"fleet-sim": {"many light simulated units in one process, for measuring a control room's scale", fleetSimCmd},
		"check":     {"the commissioning report: camera, picture, battery, signal, broker, clock, storage", checkCmd},
		"footage":   {"inspect, export and verify recorded footage (works with no link)", footageCmd},
		"launch":    {"run the agent under the update launcher (the service's ExecStart)", launchCmd},
	}
}

// Main runs the outpost command line and returns the exit code.
func Main(ctx context.Context, env Env, args []string) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stderr, cmds)
		if len(args) == 0 {
			return agent.ExitUsage
		}
		return agent.ExitOK
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "outpost: unknown command %q\n\n", args[0])
		usage(env.Stderr, cmds)
		return agent.ExitUsage
	}
	return c.run(ctx, env, args[1:])
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "outpost: the agent of an Outpost rapid-deployment CCTV unit")
	fmt.Fprintln(w, "\nUsage: outpost COMMAND [flags]\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'outpost COMMAND -h' for a command's flags.")
}

func versionCmd(_ context.Context, env Env, _ []string) int {
	fmt.Fprintln(env.Stdout, version.String("outpost"))
	return agent.ExitOK
}

func configCmd(_ context.Context, env Env, args []string) int {
	if len(args) != 2 || args[0] != "check" {
		fmt.Fprintln(env.Stderr, "usage: outpost config check FILE")
		return agent.ExitUsage
	}
	if _, err := config.Load(args[1]); err != nil {
		fmt.Fprintln(env.Stderr, err)
		return agent.ExitFailure
	}
	fmt.Fprintf(env.Stdout, "%s: OK\n", args[1])
	return agent.ExitOK
}

// newLogger builds the agent's logger from the config's log section.
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var lv slog.LevelVar
	switch c.Level {
	case "debug":
		lv.Set(slog.LevelDebug)
	case "warn":
		lv.Set(slog.LevelWarn)
	case "error":
		lv.Set(slog.LevelError)
	}
	o := &slog.HandlerOptions{Level: &lv}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// runUnit runs a unit until ctx is done, and maps the result to an exit
// code. The configuration was read from the file at path, which the
// control room may change through config/desired.
func runUnit(ctx context.Context, env Env, cfg config.Config, path string, log *slog.Logger) int {
	r := agent.NewRunner(path, cfg, log, nil)
	// Under systemd (Type=notify): readiness, status, watchdog, stopping.
	stopNotify := agent.NotifySystemd(ctx, env.Getenv, r.Statuses, log)
	defer stopNotify()
	if err := r.Run(ctx); err != nil {
		fmt.Fprintln(env.Stderr, "outpost:", err)
		return agent.ExitCode(err)
	}
	return agent.ExitOK
}

func runCmd(ctx context.Context, env Env, args []string) int {
	fs := newFlagSet("run", env)
	path := fs.String("config", "/etc/outpost/outpost.yaml", "config file")
	if fs.Parse(args) != nil {
		return agent.ExitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return agent.ExitUsage
	}
	return runUnit(ctx, env, cfg, *path, newLogger(env.Stderr, cfg.Log))
}
