package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/outpost-cctv/outpost/control"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// healthCmd is `outpostctl health UNIT`: each fault of the unit, since
// when, and what to do; its power mode; components not running.
func healthCmd(ctx context.Context, g *globals, args []string) int {
	fs := g.flagSet("health")
	pos, ok := parse(fs, args)
	if !ok || len(pos) != 1 {
		fmt.Fprintln(g.env.Stderr, "usage: outpostctl health UNIT [--json]")
		return ExitUsage
	}
	unit := pos[0]
	return g.withClient(ctx, func(ctx context.Context, c *control.Client) int {
		h, err := c.Health(ctx, unit)
		if err != nil {
			return g.fail(err)
		}
		if g.json {
			return g.printJSON(h)
		}
		now := time.Now()
		w := g.env.Stdout
		mode := h.PowerMode
		if mode == "" {
			mode = "-"
		}
		fmt.Fprintf(w, "%s: reported %s; power mode %s\n", unit, ago(now, h.TS), mode)
		if len(h.Faults) == 0 {
			fmt.Fprintln(w, "no faults")
		}
		for _, f := range h.Faults {
			sev := f.Severity
			if g.colour() && f.Severity == wire.FaultCritical {
				sev = "\x1b[31m" + sev + "\x1b[0m"
			}
			fmt.Fprintf(w, "%-8s %s, since %s (%s)\n  %s\n  what to do: %s\n", sev, f.Kind, f.Since.Local().Format("2006-01-02 15:04:05"), ago(now, f.Since), f.Message, f.Action)
		}
		for _, c := range h.Components {
			if c.State != "running" {
				fmt.Fprintf(w, "component %s is %s (restarts %d): %s\n", c.Name, c.State, c.Restarts, c.LastError)
			}
		}
		if len(h.Faults) > 0 {
			return ExitFailure
		}
		return ExitOK
	})
}
