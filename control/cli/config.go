package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/control"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

const configUsage = `usage:
  outpostctl config get UNIT [-o FILE]         the configuration the unit runs (secrets redacted)
  outpostctl config diff UNIT FILE             what pushing FILE would change, in words
  outpostctl config push UNIT FILE [--yes]     check FILE, show the changes, send them, wait for the result
  outpostctl config history UNIT               the configurations the unit applied, newest first
  outpostctl config rollback UNIT VERSION      go back to a configuration of the history
FILE is a whole configuration file, as on the unit (start from 'config get'); a
secret written as [redacted] keeps the unit's own.`

func configCmd(ctx context.Context, g *globals, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(g.env.Stderr, configUsage)
		return ExitUsage
	}
	switch args[0] {
	case "get":
		return configGetCmd(ctx, g, args[1:])
	case "diff":
		return configPushCmd(ctx, g, args[1:], true)
	case "push":
		return configPushCmd(ctx, g, args[1:], false)
	case "history":
		return configHistoryCmd(ctx, g, args[1:])
	case "rollback":
		return configRollbackCmd(ctx, g, args[1:])
	}
	fmt.Fprintf(g.env.Stderr, "outpostctl config: unknown subcommand %q\n%s\n", args[0], configUsage)
	return ExitUsage
}

func configGetCmd(ctx context.Context, g *globals, args []string) int {
	fs := g.flagSet("config get")
	out := fs.String("o", "", "write the configuration to this file instead of standard output")
	pos, ok := parse(fs, args)
	if !ok || len(pos) != 1 {
		fmt.Fprintln(g.env.Stderr, configUsage)
		return ExitUsage
	}
	return g.withClient(ctx, func(ctx context.Context, c *control.Client) int {
		r, err := c.Reported(ctx, pos[0])
		if err != nil {
			return g.fail(err)
		}
		if g.json {
			return g.printJSON(r)
		}
		y, err := reportedYAML(pos[0], r)
		if err != nil {
			return g.fail(err)
		}
		if *out != "" {
			if err := os.WriteFile(*out, y, 0o600); err != nil {
				return g.fail(err)
			}
			fmt.Fprintf(g.env.Stdout, "%s: version %d written to %s\n", pos[0], r.Version, *out)
			return ExitOK
		}
		g.env.Stdout.Write(y)
		return ExitOK
	})
}

// reportedYAML turns a reported configuration into a file an operator can
// edit and push back.
func reportedYAML(unit string, r wire.ConfigReported) ([]byte, error) {
	// JSON is YAML: the reported configuration reads as a file.
	cfg, err := config.Parse("config/reported of "+unit, r.Config)
	if err != nil {
		return nil, err
	}
	head := fmt.Sprintf("Configuration of unit %s, version %d (%s), applied %s", unit, r.Version, r.Hash, r.AppliedAt.Local().Format(time.RFC3339))
	if r.RequestedBy != "" {
		head += " by " + r.RequestedBy
	}
	head += "\nSecrets read [redacted]: pushed back as they are, the unit keeps its own."
	return cfg.Marshal(head)
}

// requester names who asks, for the unit's history.
func requester(g *globals, as string) string {
	if as != "" {
		return as
	}
	name := g.env.Getenv("USER")
	if u, err := user.Current(); err == nil && name == "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		name += "@" + h
	}
	return name
}

func configPushCmd(ctx context.Context, g *globals, args []string, dryRun bool) int {
	name := "config push"
	if dryRun {
		name = "config diff"
	}
	fs := g.flagSet(name)
	yes := fs.Bool("yes", false, "send without asking for confirmation")
	as := fs.String("as", "", "who asks, for the unit's history (default USER@HOST)")
	wait := fs.Duration("wait", 0, "how long to wait for the unit's result (default: the unit's confirm window and a minute)")
	pos, ok := parse(fs, args)
	if !ok || len(pos) != 2 {
		fmt.Fprintln(g.env.Stderr, configUsage)
		return ExitUsage
	}
	unit, file := pos[0], pos[1]
	local, err := config.Load(file)
	if err != nil {
		fmt.Fprintf(g.env.Stderr, "outpostctl: %s is not a valid configuration, nothing was sent:\n%v\n", file, err)
		return ExitUsage
	}
	if local.Unit.ID != unit {
		fmt.Fprintf(g.env.Stderr, "outpostctl: %s is for unit %q (unit.id), not %q: nothing was sent\n", file, local.Unit.ID, unit)
		return ExitUsage
	}
	tree, err := local.Tree()
	if err != nil {
		return g.fail(err)
	}
	c, code := g.dial(ctx)
	if c == nil {
		return code
	}
	defer c.Close()
	rctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	rep, err := c.Reported(rctx, unit)
	if err != nil {
		var off *control.OfflineError
		if errors.As(err, &off) {
			err = fmt.Errorf("unit %s has never reported a configuration to this broker: check the unit id and --broker", unit)
			fmt.Fprintf(g.env.Stderr, "outpostctl: %v\n", err)
			return ExitOffline
		}
		return g.fail(err)
	}
	var cur map[string]any
	if err := json.Unmarshal(rep.Config, &cur); err != nil {
		return g.fail(fmt.Errorf("unit %s: unreadable reported configuration: %w", unit, err))
	}
	changes := config.TreeChanges(cur, tree)
	fmt.Fprintf(g.env.Stdout, "%s runs version %d (%s, applied %s%s).\n", unit, rep.Version, rep.Hash, rep.AppliedAt.Local().Format("2006-01-02 15:04:05"), by(rep.RequestedBy))
	if len(changes) == 0 {
		fmt.Fprintf(g.env.Stdout, "%s changes nothing.\n", file)
		return ExitOK
	}
	fmt.Fprintf(g.env.Stdout, "%s would change %d setting(s):\n", file, len(changes))
	for _, ch := range changes {
		fmt.Fprintf(g.env.Stdout, "  %s\n", ch)
	}
	link := config.TouchesLink(changes)
	if link {
		fmt.Fprintf(g.env.Stdout, "This touches the link: the unit keeps it only if it reaches the control room with it within %s.\n", local.Uplink.ConfirmWindow.D())
	}
	if dryRun {
		return ExitOK
	}
	if waiting, ok, err := c.Desired(rctx, unit); err == nil && ok && waiting.Version > rep.DesiredVersion {
		fmt.Fprintf(g.env.Stderr, "outpostctl: another change (version %d%s) is waiting for %s to take it; nothing was sent: wait for the unit, then push again\n", waiting.Version, by(waiting.RequestedBy), unit)
		return ExitRefused
	}
	if !*yes {
		if !g.env.StdinIsTerminal {
			fmt.Fprintln(g.env.Stderr, "outpostctl: not asking for confirmation, as standard input is not a terminal: add --yes to send; nothing was sent")
			return ExitUsage
		}
		fmt.Fprintf(g.env.Stdout, "Send these changes to %s? [y/N] ", unit)
		line, _ := bufio.NewReader(g.env.Stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(g.env.Stdout, "Nothing was sent.")
			return ExitOK
		}
	}
	body, err := json.Marshal(tree)
	if err != nil {
		return g.fail(err)
	}
	v := max(rep.Version, rep.DesiredVersion) + 1
	d := wire.ConfigDesired{Version: v, BaseVersion: rep.Version, RequestedBy: requester(g, *as), Full: true, Config: body}
	// Watch before sending, so that a quick answer is not missed.
	limit := *wait
	if limit == 0 {
		limit = local.Uplink.ConfirmWindow.D() + time.Minute
	}
	wctx, wcancel := context.WithTimeout(ctx, limit)
	defer wcancel()
	results := make(chan wire.ConfigReported, 8)
	watchErr := make(chan error, 1)
	go func() {
		watchErr <- c.WatchReported(wctx, unit, func(r wire.ConfigReported) bool {
			if r.DesiredVersion < v {
				return false
			}
			results <- r
			return r.DesiredVersion > v || r.ConfirmBy == nil
		})
	}()
	if err := c.PushConfig(rctx, unit, d); err != nil {
		return g.fail(err)
	}
	fmt.Fprintf(g.env.Stdout, "Sent as version %d; waiting for %s (at most %s)...\n", v, unit, limit.Round(time.Second))
	for {
		select {
		case r := <-results:
			if r.DesiredVersion > v {
				fmt.Fprintf(g.env.Stdout, "%s has since taken a later change, version %d%s.\n", unit, r.DesiredVersion, by(r.RequestedBy))
				return ExitFailure
			}
			switch {
			case r.Result == wire.ConfigApplied && r.ConfirmBy != nil:
				fmt.Fprintf(g.env.Stdout, "%s applied version %d and is confirming the link (it reverts unless confirmed by %s)...\n", unit, v, r.ConfirmBy.Local().Format("15:04:05"))
				continue
			case r.Result == wire.ConfigApplied:
				fmt.Fprintf(g.env.Stdout, "%s applied version %d (%s) at %s.\n", unit, v, r.Hash, r.AppliedAt.Local().Format("15:04:05"))
				return ExitOK
			}
			fmt.Fprintf(g.env.Stdout, "%s %s version %d; it runs version %d:\n", unit, r.Result, v, r.Version)
			for _, e := range r.Errors {
				fmt.Fprintf(g.env.Stdout, "  %s\n", e)
			}
			return ExitRefused
		case err := <-watchErr:
			if errors.Is(err, context.DeadlineExceeded) {
				fmt.Fprintf(g.env.Stderr, "outpostctl: no result from %s within %s: the change stays on config/desired and the unit takes it when it next connects; see 'outpostctl config get %s'\n", unit, limit.Round(time.Second), unit)
				return ExitOffline
			}
			return g.fail(err)
		}
	}
}

func by(who string) string {
	if who == "" {
		return ""
	}
	return " by " + who
}

func configHistoryCmd(ctx context.Context, g *globals, args []string) int {
	fs := g.flagSet("config history")
	pos, ok := parse(fs, args)
	if !ok || len(pos) != 1 {
		fmt.Fprintln(g.env.Stderr, configUsage)
		return ExitUsage
	}
	return g.withClient(ctx, func(ctx context.Context, c *control.Client) int {
		var h []wire.ConfigHistoryEntry
		if err := c.Call(ctx, pos[0], "config.history", nil, &h); err != nil {
			return g.fail(err)
		}
		if g.json {
			return g.printJSON(h)
		}
		for _, e := range h {
			mark := " "
			if e.Current {
				mark = "*"
			}
			fmt.Fprintf(g.env.Stdout, "%s %4d  %s  %-8s %s%s\n", mark, e.Version, e.AppliedAt.Local().Format("2006-01-02 15:04:05"), e.Result, e.Hash, by(e.RequestedBy))
			for _, ch := range e.Changes {
				fmt.Fprintf(g.env.Stdout, "          %s\n", ch)
			}
		}
		return ExitOK
	})
}

func configRollbackCmd(ctx context.Context, g *globals, args []string) int {
	fs := g.flagSet("config rollback")
	as := fs.String("as", "", "who asks, for the unit's history (default USER@HOST)")
	pos, ok := parse(fs, args)
	if !ok || len(pos) != 2 {
		fmt.Fprintln(g.env.Stderr, configUsage)
		return ExitUsage
	}
	v, err := strconv.ParseInt(pos[1], 10, 64)
	if err != nil || v < 0 {
		fmt.Fprintf(g.env.Stderr, "outpostctl: VERSION %q is not a version number ('outpostctl config history %s' lists them)\n", pos[1], pos[0])
		return ExitUsage
	}
	return g.withClient(ctx, func(ctx context.Context, c *control.Client) int {
		var res wire.ConfigRollbackResult
		if err := c.Call(ctx, pos[0], "config.rollback", wire.ConfigRollbackArgs{Version: v, RequestedBy: requester(g, *as)}, &res); err != nil {
			return g.fail(err)
		}
		fmt.Fprintf(g.env.Stdout, "%s is going back to the configuration of version %d, as version %d:\n", pos[0], v, res.Version)
		for _, ch := range res.Changes {
			fmt.Fprintf(g.env.Stdout, "  %s\n", ch)
		}
		err := c.WatchReported(ctx, pos[0], func(r wire.ConfigReported) bool {
			if r.DesiredVersion < res.Version || r.ConfirmBy != nil {
				return false
			}
			fmt.Fprintf(g.env.Stdout, "%s %s version %d.\n", pos[0], r.Result, res.Version)
			return true
		})
		if err != nil {
			return g.fail(fmt.Errorf("waiting for %s to report version %d: %w", pos[0], res.Version, err))
		}
		return ExitOK
	})
}
