package cli

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/control"
	"github.com/outpost-cctv/outpost/ota"
)

const otaUsage = `usage:
  outpostctl ota push UNIT BUNDLE [--full FULL_BUNDLE] [--wait 30m] [--chunk-size N] [--window N]
      send a signed release bundle to a unit and wait for the outcome: committed
      (the new release runs and is healthy), rolled_back or rejected; with --full,
      BUNDLE is a delta and FULL_BUNDLE the full bundle of the same release, sent
      instead to a unit that does not run the binary the delta was made from
  outpostctl ota status [UNIT]
      the units' update state: the version running, the last update and its outcome
  outpostctl ota rollout (--units a,b,c | --all) [--canary 10%] [--max-failures 0] [--full FULL_BUNDLE] BUNDLE
      push to the canaries first, then, unless more of them failed than
      --max-failures (a count, or a share such as 20%), to the rest
Exit status: 0 committed; 1 rolled back, rejected or failed; 6 refused or deferred by the unit.`

func otaCmd(ctx context.Context, g *globals, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(g.env.Stderr, otaUsage)
		return ExitUsage
	}
	switch args[0] {
	case "push":
		return otaPushCmd(ctx, g, args[1:])
	case "status":
		return otaStatusCmd(ctx, g, args[1:])
	case "rollout":
		return otaRolloutCmd(ctx, g, args[1:])
	case "help", "-h", "--help":
		fmt.Fprintln(g.env.Stdout, otaUsage)
		return ExitOK
	}
	fmt.Fprintf(g.env.Stderr, "outpostctl ota: unknown subcommand %q\n%s\n", args[0], otaUsage)
	return ExitUsage
}

type pushFlags struct {
	wait         time.Duration
	chunk, win   int
	canary, maxF string
	units        string
	all          bool
	full         string
}

func (p *pushFlags) register(g *globals, name string) func([]string) ([]string, bool) {
	fs := g.flagSet("ota " + name)
	fs.DurationVar(&p.wait, "wait", 30*time.Minute, "how long to wait for the outcome once the bundle has arrived")
	fs.IntVar(&p.chunk, "chunk-size", 64<<10, "bytes per chunk")
	fs.IntVar(&p.win, "window", 8, "chunks unacknowledged at once")
	fs.StringVar(&p.full, "full", "", "with a delta BUNDLE: the full bundle of the same release, sent instead to units that do not run the delta's base binary")
	if name == "rollout" {
		fs.StringVar(&p.units, "units", "", "the units, comma-separated")
		fs.BoolVar(&p.all, "all", false, "every unit the broker knows")
		fs.StringVar(&p.canary, "canary", "10%", "the canaries: a share of the units (rounded up) or a count")
		fs.StringVar(&p.maxF, "max-failures", "0", "canary failures tolerated: a count, or a share such as 20%")
	}
	return func(args []string) ([]string, bool) { return parse(fs, args) }
}

func otaPushCmd(ctx context.Context, g *globals, args []string) int {
	var p pushFlags
	pos, ok := p.register(g, "push")(args)
	if !ok || len(pos) != 2 {
		fmt.Fprintln(g.env.Stderr, otaUsage)
		return ExitUsage
	}
	c, code := g.dial(ctx)
	if c == nil {
		return code
	}
	defer c.Close()
	res, err := g.push(ctx, c, pos[0], pos[1], p, true)
	if err != nil {
		return g.fail(err)
	}
	if g.json {
		g.printJSON(map[string]any{"unit": pos[0], "id": res.ID, "version": res.Version, "outcome": res.Status.Outcome(), "status": res.Status})
	}
	if res.Status.Outcome() == "committed" {
		return ExitOK
	}
	return ExitFailure
}

// push sends one bundle to one unit and prints its progress and outcome.
func (g *globals) push(ctx context.Context, c *control.Client, unit, bundle string, p pushFlags, verbose bool) (control.PushResult, error) {
	w := g.env.Stdout
	say := func(format string, a ...any) {
		if verbose && !g.json {
			fmt.Fprintf(w, "%s: "+format+"\n", append([]any{unit}, a...)...)
		}
	}
	if _, err := c.Status(ctx, unit); err != nil {
		return control.PushResult{}, err
	}
	lastPct := -1
	var mu sync.Mutex
	req := control.PushRequest{Unit: unit, Bundle: bundle, ChunkSize: p.chunk, Window: p.win, Wait: p.wait, Full: p.full}
	req.FellBack = func(why string) {
		mu.Lock()
		lastPct = -1
		mu.Unlock()
		say("sending the full bundle %s instead of the delta: %s", p.full, why)
	}
	req.Progress = func(have, total int64) {
		mu.Lock()
		defer mu.Unlock()
		pct := int(100 * have / max(total, 1))
		if pct/10 > lastPct/10 || lastPct < 0 {
			lastPct = pct
			if verbose && !g.json {
				fmt.Fprintf(g.env.Stderr, "%s: sent %d%% (%s of %s on the unit)\n", unit, pct, human(have), human(total))
			}
		}
	}
	req.Started = func(version string, size int64, resumed, chunks int) {
		if resumed > 0 {
			say("sending %s (%s), resuming with %d of %d chunks already on the unit", version, human(size), resumed, chunks)
		} else {
			say("sending %s (%s)", version, human(size))
		}
	}
	var lastState ota.State
	req.State = func(st ota.Status) {
		if st.State == lastState {
			return
		}
		lastState = st.State
		switch st.State {
		case ota.StateTrial:
			say("%s installed; on trial until %s (running it now)", targetOf(st), st.TrialDeadline.Local().Format("15:04:05"))
		case ota.StateInstalled:
			say("%s installed", targetOf(st))
		}
	}
	start := time.Now()
	res, err := c.PushRelease(ctx, req)
	if err != nil {
		return res, err
	}
	st := res.Status
	switch st.Outcome() {
	case "committed":
		say("committed %s (was %s), in %s", st.Running.Version, prevOf(st), time.Since(start).Round(time.Second))
	case "rolled_back":
		say("rolled back %s, running %s: %s", targetOf(st), st.Running.Version, st.Reason)
	case "rejected":
		say("rejected %s, nothing installed, running %s: %s", targetOf(st), st.Running.Version, st.Reason)
	}
	return res, nil
}

func targetOf(st ota.Status) string {
	if st.Target == nil || st.Target.Version == "" {
		return "the release"
	}
	return st.Target.Version
}

func prevOf(st ota.Status) string {
	if st.Previous == nil {
		return "-"
	}
	return st.Previous.Version
}

func otaStatusCmd(ctx context.Context, g *globals, args []string) int {
	fs := g.flagSet("ota status")
	pos, ok := parse(fs, args)
	if !ok || len(pos) > 1 {
		fmt.Fprintln(g.env.Stderr, otaUsage)
		return ExitUsage
	}
	return g.withClient(ctx, func(ctx context.Context, c *control.Client) int {
		all := map[string]ota.Status{}
		if len(pos) == 1 {
			st, ok, err := c.OTAStatus(ctx, pos[0])
			if err != nil {
				return g.fail(err)
			}
			if !ok {
				fmt.Fprintf(g.env.Stderr, "outpostctl: unit %s has published no update status (an agent without updates, or an unknown unit)\n", pos[0])
				return ExitOffline
			}
			all[pos[0]] = st
		} else {
			var err error
			if all, err = c.FleetOTA(ctx); err != nil {
				return g.fail(err)
			}
		}
		if g.json {
			return g.printJSON(all)
		}
		names := make([]string, 0, len(all))
		for n := range all {
			names = append(names, n)
		}
		sort.Strings(names)
		w := g.env.Stdout
		fmt.Fprintf(w, "%-20s %-12s %-12s %-12s %s\n", "UNIT", "RUNNING", "STATE", "TARGET", "LAST OUTCOME")
		now := time.Now()
		for _, n := range names {
			st := all[n]
			state := string(st.State)
			if state == "" {
				state = "off"
			}
			tgt := "-"
			if st.Target != nil && st.Target.Version != "" {
				tgt = st.Target.Version
			}
			last := "-"
			if o := st.Outcome(); o != "" {
				last = o + " " + ago(now, st.Updated)
			}
			if st.Reason != "" {
				last += ": " + st.Reason
			}
			fmt.Fprintf(w, "%-20s %-12s %-12s %-12s %s\n", n, st.Running.Version, state, tgt, last)
		}
		return ExitOK
	})
}

// share reads "10%" (of n, rounded up) or a count.
func share(s string, n int) (int, error) {
	if p, ok := strings.CutSuffix(strings.TrimSpace(s), "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f < 0 || f > 100 {
			return 0, fmt.Errorf("%q is not a share: use e.g. 10%%", s)
		}
		return int(math.Ceil(f * float64(n) / 100)), nil
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is neither a count nor a share such as 10%%", s)
	}
	return v, nil
}

func otaRolloutCmd(ctx context.Context, g *globals, args []string) int {
	var p pushFlags
	pos, ok := p.register(g, "rollout")(args)
	if !ok || len(pos) != 1 || (p.units == "") == !p.all {
		fmt.Fprintln(g.env.Stderr, otaUsage)
		return ExitUsage
	}
	bundle := pos[0]
	c, code := g.dial(ctx)
	if c == nil {
		return code
	}
	defer c.Close()
	var units []string
	if p.all {
		fl, err := c.Fleet(ctx)
		if err != nil {
			return g.fail(err)
		}
		for _, u := range fl {
			units = append(units, u.ID)
		}
	} else {
		for _, u := range strings.Split(p.units, ",") {
			if u = strings.TrimSpace(u); u != "" {
				units = append(units, u)
			}
		}
	}
	if len(units) == 0 {
		fmt.Fprintln(g.env.Stderr, "outpostctl: no units to update")
		return ExitUsage
	}
	nCanary, err := share(p.canary, len(units))
	if err != nil {
		fmt.Fprintln(g.env.Stderr, "outpostctl: --canary:", err)
		return ExitUsage
	}
	nCanary = min(max(nCanary, 1), len(units))
	w := g.env.Stdout
	var mu sync.Mutex
	wave := func(name string, us []string) (failed int) {
		fmt.Fprintf(w, "%s: %s\n", name, strings.Join(us, ", "))
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4)
		for _, u := range us {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				res, err := g.push(ctx, c, u, bundle, p, false)
				o := res.Status.Outcome()
				line := fmt.Sprintf("%s: %s", u, o)
				switch {
				case err != nil:
					o, line = "failed", fmt.Sprintf("%s: failed: %v", u, err)
				case o == "committed" && res.FellBack != "":
					line = fmt.Sprintf("%s: committed %s (the full bundle: %s)", u, res.Status.Running.Version, res.FellBack)
				case o == "committed":
					line = fmt.Sprintf("%s: committed %s", u, res.Status.Running.Version)
				default:
					line = fmt.Sprintf("%s: %s %s: %s", u, o, targetOf(res.Status), res.Status.Reason)
				}
				mu.Lock()
				fmt.Fprintln(w, "  "+line)
				if o != "committed" {
					failed++
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		return failed
	}
	canaries, rest := units[:nCanary], units[nCanary:]
	failed := wave("canaries", canaries)
	allowed, err := share(p.maxF, len(canaries))
	if err != nil {
		fmt.Fprintln(g.env.Stderr, "outpostctl: --max-failures:", err)
		return ExitUsage
	}
	if failed > allowed {
		fmt.Fprintf(w, "halted: %d of %d canaries failed (at most %s allowed); %d unit(s) not updated: %s\n", failed, len(canaries), p.maxF, len(rest), strings.Join(rest, ", "))
		return ExitFailure
	}
	if len(rest) > 0 {
		failed += wave("rest", rest)
	}
	ok = failed == 0
	fmt.Fprintf(w, "rollout: %d of %d committed\n", len(units)-failed, len(units))
	if !ok {
		return ExitFailure
	}
	return ExitOK
}
