package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/outpost-cctv/outpost/agent"
)

// fleetSimCmd is `outpost fleet-sim`: many light simulated units in one
// process, for measuring a control room's scale.
func fleetSimCmd(ctx context.Context, env Env, args []string) int {
	fs := newFlagSet("fleet-sim", env)
	units := fs.Int("units", 100, "how many units")
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "the broker (tcp://HOST:PORT)")
	prefix := fs.String("prefix", "outpost", "topic prefix")
	idPrefix := fs.String("id-prefix", "sim-", "unit ids are this and a number: sim-0001 ...")
	telemetry := fs.Duration("telemetry", time.Minute, "each telemetry stream's interval (as units in the field: 1m)")
	rate := fs.Int("rate", 100, "units connecting a second")
	dur := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	data := fs.String("data", "", "where each unit keeps its outbox (default: a temporary directory)")
	if fs.Parse(args) != nil {
		return agent.ExitUsage
	}
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	start := time.Now()
	step := max(*units/10, 1)
	err := agent.RunFleetSim(ctx, agent.FleetSimOptions{
		Units: *units, Broker: *broker, Prefix: *prefix, IDPrefix: *idPrefix, Telemetry: *telemetry,
		ConnectRate: *rate, Dir: *data,
		Ready: func(n int) {
			if n%step == 0 || n == *units {
				fmt.Fprintf(env.Stdout, "%d of %d units connected (%.1f s)\n", n, *units, time.Since(start).Seconds())
			}
		},
	}, slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		fmt.Fprintln(env.Stderr, "outpost fleet-sim:", err)
		return agent.ExitUsage
	}
	return agent.ExitOK
}
