package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/outpost-cctv/outpost/clip"
	"github.com/outpost-cctv/outpost/control"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

func unitsCmd(ctx context.Context, g *globals, args []string) int {
	fs := g.flagSet("units")
	if pos, ok := parse(fs, args); !ok || len(pos) > 0 {
		return ExitUsage
	}
	c, code := g.dial(ctx)
	if c == nil {
		return code
	}
	defer c.Close()
	units, err := c.Fleet(ctx)
	if err != nil {
		return g.fail(err)
	}
	if g.json {
		return g.printJSON(units)
	}
	if len(units) == 0 {
		fmt.Fprintf(g.env.Stderr, "no units have reported to %s under %q\n", g.opts.Broker, g.opts.Prefix)
		return ExitOK
	}
	color := g.colour()
	tw := tabwriter.NewWriter(g.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "UNIT\tSITE\tSTATE\tSINCE\tBATTERY\tSOLAR\tSIGNAL\tSTORAGE\tRETENTION\tMODE\tFAULTS\tVERSION")
	now := time.Now()
	for _, u := range units {
		state, since, site, ver := "unknown", "-", "-", "-"
		if s := u.Status; s != nil {
			state, since = s.State, ago(now, s.TS)
			if s.State == "online" && !s.Boot.IsZero() {
				since = ago(now, s.Boot)
			}
			if s.Site != "" {
				site = s.Site
			}
			if s.Version != "" {
				ver = s.Version
			}
		}
		switch {
		case color && state == "online":
			state = "\x1b[32m" + state + "\x1b[0m"
		case color:
			state = "\x1b[31m" + state + "\x1b[0m"
		}
		battery, solar, signal := "-", "-", "-"
		if p := u.Power; p != nil {
			battery = num(p.SOCPct, "%.0f%%") + " " + num(p.BatteryV, "%.1fV")
			solar = num(p.PanelW, "%.0fW")
		}
		if s := u.Signal; s != nil {
			signal = s.Quality
			if s.RSRPdBm != nil {
				signal = fmt.Sprintf("%s (%.0f dBm)", s.Quality, *s.RSRPdBm)
			}
		}
		mode, faults := "-", fmt.Sprint(u.Faults)
		if h := u.Health; h != nil {
			if h.PowerMode != "" {
				mode = h.PowerMode
			}
			if len(h.Faults) > 0 {
				// The worst first: the unit sends them critical first.
				faults = fmt.Sprintf("%d %s", len(h.Faults), h.Faults[0].Kind)
				if color && h.Faults[0].Severity == wire.FaultCritical {
					faults = "\x1b[31m" + faults + "\x1b[0m"
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, site, state, since, battery, solar, signal, storage(u.Storage), retention(u.Storage), mode, faults, ver)
	}
	tw.Flush()
	return ExitOK
}

// retention is the retention in force and the age of the oldest footage
// held, so that an auditor sees the rule kept: "28d, oldest 27.9d"; a
// "!" marks footage older than the retention (under evidence holds, or a
// unit failing to delete).
func retention(s map[string]any) string {
	r, ok := s["retention_days"].(float64)
	if !ok {
		return "-"
	}
	out := fmt.Sprintf("%gd", math.Round(r*10)/10)
	if days, ok := s["footage_days"].(float64); ok {
		out += fmt.Sprintf(", oldest %.1fd", days)
		if days > r+1.0/24 {
			out += " !"
		}
	}
	return out
}

// storage says how far back the unit's footage goes, and how far the disk
// will hold at the current rate: "3.2 days (of 28)".
func storage(s map[string]any) string {
	if s == nil {
		return "-"
	}
	days, ok := s["footage_days"].(float64)
	if !ok {
		return "-"
	}
	var kept string
	switch {
	case days >= 1:
		kept = fmt.Sprintf("%.1f days", days)
	case days*24 >= 1:
		kept = fmt.Sprintf("%.0f h", days*24)
	default:
		kept = "<1 h"
	}
	if p, ok := s["projected_retention_days"].(float64); ok && p > 0 {
		kept += fmt.Sprintf(" (of %.0f)", p)
	}
	return kept
}

func num(v *float64, format string) string {
	if v == nil {
		return "?"
	}
	return fmt.Sprintf(format, *v)
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return t.Local().Format("15:04:05")
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func (g *globals) colour() bool {
	f, ok := g.env.Stdout.(*os.File)
	return ok && !g.noColor && term.IsTerminal(int(f.Fd()))
}

func (g *globals) printJSON(v any) int {
	enc := json.NewEncoder(g.env.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return g.fail(err)
	}
	return ExitOK
}

func watchCmd(ctx context.Context, g *globals, args []string) int {
	fs := g.flagSet("watch")
	pos, ok := parse(fs, args)
	if !ok || len(pos) != 1 {
		fmt.Fprintln(g.env.Stderr, "usage: outpostctl watch UNIT   (UNIT may be + for every unit)")
		return ExitUsage
	}
	c, code := g.dial(ctx)
	if c == nil {
		return code
	}
	defer c.Close()
	err := c.Watch(ctx, pos[0], func(e control.Event) {
		if g.json {
			fmt.Fprintf(g.env.Stdout, "{\"unit\":%q,\"topic\":%q,\"payload\":%s}\n", e.Unit, e.Topic, e.Payload)
			return
		}
		fmt.Fprintf(g.env.Stdout, "%s %-10s %-18s %s\n", time.Now().Format("15:04:05"), e.Unit, e.Topic, e.Payload)
	})
	if err != nil {
		return g.fail(err)
	}
	return ExitOK
}

func triggerCmd(ctx context.Context, g *globals, args []string) int {
	fs := g.flagSet("trigger")
	kind := fs.String("kind", "manual", "what the event is")
	pos, ok := parse(fs, args)
	if !ok || len(pos) != 1 {
		fmt.Fprintln(g.env.Stderr, "usage: outpostctl trigger UNIT [--kind manual]")
		return ExitUsage
	}
	return g.withClient(ctx, func(ctx context.Context, c *control.Client) int {
		var res struct {
			Kind string    `json:"kind"`
			At   time.Time `json:"at"`
		}
		if err := c.Call(ctx, pos[0], "trigger", map[string]string{"kind": *kind}, &res); err != nil {
			return g.fail(err)
		}
		fmt.Fprintf(g.env.Stdout, "%s: %s event at %s\n", pos[0], res.Kind, res.At.Local().Format("2006-01-02 15:04:05"))
		return ExitOK
	})
}

// withClient connects, runs fn with a context bounded by --timeout, and
// disconnects.
func (g *globals) withClient(ctx context.Context, fn func(context.Context, *control.Client) int) int {
	c, code := g.dial(ctx)
	if c == nil {
		return code
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	return fn(cctx, c)
}

func eventsCmd(ctx context.Context, g *globals, args []string) int {
	fs := g.flagSet("events")
	since := fs.Duration("since", 24*time.Hour, "how far back")
	pos, ok := parse(fs, args)
	if !ok || len(pos) != 1 {
		fmt.Fprintln(g.env.Stderr, "usage: outpostctl events UNIT [--since 24h] [--json]")
		return ExitUsage
	}
	var evs []control.RecordedEvent
	if code := g.withClient(ctx, func(ctx context.Context, c *control.Client) int {
		now := time.Now()
		var err error
		if evs, err = c.Events(ctx, pos[0], now.Add(-*since), now); err != nil {
			return g.fail(err)
		}
		return ExitOK
	}); code != ExitOK {
		return code
	}
	if g.json {
		return g.printJSON(evs)
	}
	if len(evs) == 0 {
		fmt.Fprintf(g.env.Stderr, "%s recorded no events in the last %s\n", pos[0], *since)
		return ExitOK
	}
	tw := tabwriter.NewWriter(g.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tTIME\tKIND\tPULL ITS CLIP WITH")
	for _, e := range evs {
		fmt.Fprintf(tw, "%d\t%s\t%s\toutpostctl clip pull %s --event %d -o event-%d.mp4\n", e.Seq, e.Time.Local().Format("2006-01-02 15:04:05"), e.Kind, pos[0], e.Seq, e.Seq)
	}
	tw.Flush()
	return ExitOK
}

// parseTime reads RFC 3339, or a local "2006-01-02 15:04[:05]".
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-11-25T03:12:00Z) or local \"2026-11-25 03:12:00\"", s)
}

func snapshotCmd(ctx context.Context, g *globals, args []string) int {
	fs := g.flagSet("snapshot")
	out := fs.String("o", "", "output JPEG file")
	at := fs.String("at", "", "time of the frame (default: the latest)")
	full := fs.Bool("full", false, "full size instead of the reduced, cheaper picture")
	recipient, reason := disclosureFlags(fs)
	pos, ok := parse(fs, args)
	if !ok || len(pos) != 1 || *out == "" {
		fmt.Fprintln(g.env.Stderr, "usage: outpostctl snapshot UNIT -o FILE.jpg [--at T] [--full]")
		return ExitUsage
	}
	a := clip.StartArgs{Kind: clip.KindSnapshot, Full: *full, ID: "snapshot-" + fmt.Sprint(time.Now().UnixNano()), Recipient: *recipient, Reason: *reason}
	if *at != "" {
		t, err := parseTime(*at)
		if err != nil {
			fmt.Fprintln(g.env.Stderr, "outpostctl:", err)
			return ExitUsage
		}
		a.At, a.ID = t, ""
	}
	return g.pull(ctx, pos[0], a, *out, false)
}

func clipCmd(ctx context.Context, g *globals, args []string) int {
	if len(args) == 0 || args[0] != "pull" {
		fmt.Fprintln(g.env.Stderr, "usage: outpostctl clip pull UNIT (--from T --to T | --last 2m) -o FILE.mp4")
		return ExitUsage
	}
	fs := g.flagSet("clip pull")
	out := fs.String("o", "", "output MP4 file")
	from := fs.String("from", "", "start of the clip")
	to := fs.String("to", "", "end of the clip")
	last := fs.Duration("last", 0, "the last D of footage, e.g. 2m")
	event := fs.Uint64("event", 0, "the clip of a recorded event (its number in 'outpostctl events --json': seq), pre-roll to post-roll")
	chunk := fs.Int("chunk-size", clip.DefaultChunkSize, "bytes per chunk")
	window := fs.Int("window", clip.DefaultWindow, "chunks in flight")
	quiet := fs.Bool("quiet", false, "no progress bar")
	uploadURL := fs.String("upload-url", "", "have the unit PUT the clip to this HTTPS URL (e.g. presigned object storage) instead of sending it through the broker")
	recipient, reason := disclosureFlags(fs)
	pos, ok := parse(fs, args[1:])
	if ok && *out == "" && *uploadURL != "" {
		*out = "-"
	}
	ranges := 0
	if *last != 0 {
		ranges++
	}
	if *from != "" || *to != "" {
		ranges++
	}
	if *event != 0 {
		ranges++
	}
	if !ok || len(pos) != 1 || *out == "" || ranges != 1 {
		fmt.Fprintln(g.env.Stderr, "usage: outpostctl clip pull UNIT (--from T --to T | --last 2m | --event N) (-o FILE.mp4 | --upload-url URL)")
		return ExitUsage
	}
	a := clip.StartArgs{Kind: clip.KindClip, ChunkSize: *chunk, Window: *window, UploadURL: *uploadURL, Recipient: *recipient, Reason: *reason}
	if *event != 0 {
		a.Event = *event
	} else if *last > 0 {
		// Whole seconds, so that running the same command again a moment
		// later is a different range only when it should be.
		now := time.Now().Truncate(time.Second)
		a.From, a.To = now.Add(-*last), now
	} else {
		var err error
		if a.From, err = parseTime(*from); err == nil {
			a.To, err = parseTime(*to)
		}
		if err != nil {
			fmt.Fprintln(g.env.Stderr, "outpostctl:", err)
			return ExitUsage
		}
	}
	return g.pull(ctx, pos[0], a, *out, !*quiet)
}

func (g *globals) pull(ctx context.Context, unit string, a clip.StartArgs, out string, progress bool) int {
	c, code := g.dial(ctx)
	if c == nil {
		return code
	}
	defer c.Close()
	if _, err := c.Status(ctx, unit); err != nil {
		return g.fail(err)
	}
	var bar *progressbar.ProgressBar
	showBar := progress && g.isTerminal(g.env.Stderr)
	req := control.PullRequest{Unit: unit, Args: a, Out: out, Timeout: g.timeout * 2}
	req.Started = func(m clip.Manifest, resumed int64) {
		what := fmt.Sprintf("%s %s: %s", unit, m.Kind, human(m.Size))
		if m.Frames > 1 {
			what += fmt.Sprintf(", %d frames", m.Frames)
		}
		if resumed > 0 {
			what += fmt.Sprintf(", resuming with %s already here", human(resumed))
		}
		fmt.Fprintln(g.env.Stderr, what)
		if showBar {
			bar = progressbar.NewOptions64(m.Size, progressbar.OptionSetWriter(g.env.Stderr),
				progressbar.OptionShowBytes(true), progressbar.OptionSetWidth(30),
				progressbar.OptionShowElapsedTimeOnFinish(), progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionEnableColorCodes(!g.noColor), progressbar.OptionClearOnFinish())
			bar.Set64(resumed)
		}
	}
	req.Progress = func(got, total int64) {
		if bar != nil {
			bar.Set64(got)
		}
	}
	start := time.Now()
	res, err := c.Pull(ctx, req)
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(g.env.Stderr, "outpostctl: interrupted; the unit was told to stop. Run the same command again to resume.\n")
			return ExitFailure
		}
		return g.fail(err)
	}
	el := time.Since(start)
	rate := float64(res.Manifest.Size-int64(res.Resumed)*int64(res.Manifest.ChunkSize)) / math.Max(el.Seconds(), 0.001)
	if g.json {
		return g.printJSON(map[string]any{"file": out, "manifest": res.Manifest, "resumed_chunks": res.Resumed,
			"chunks_received": res.Stats.Chunks, "duplicates": res.Stats.Duplicates, "corrupt": res.Stats.Corrupt, "seconds": el.Seconds()})
	}
	if a.UploadURL != "" {
		fmt.Fprintf(g.env.Stdout, "uploaded by the unit: %s, SHA-256 %s (sent as X-Outpost-SHA256), %s\n", human(res.Manifest.Size), res.Manifest.SHA256, el.Round(time.Millisecond))
		return ExitOK
	}
	fmt.Fprintf(g.env.Stdout, "%s: %s, SHA-256 %s verified against the unit's manifest (%s, %s/s)\n",
		out, human(res.Manifest.Size), res.Manifest.SHA256, el.Round(time.Millisecond), human(int64(math.Max(rate, 0))))
	if res.EvidenceFile != "" {
		fmt.Fprintf(g.env.Stdout, "evidence manifest signed by %s: %s (check: outpostctl evidence verify %s)\n", unit, res.EvidenceFile, out)
	} else {
		fmt.Fprintf(g.env.Stdout, "no evidence manifest: unit %s has no evidence key (run `outpost provision` on it)\n", unit)
	}
	return ExitOK
}

// disclosureFlags are who footage is handed to and why, recorded in the
// unit's audit trail and in the evidence manifest.
func disclosureFlags(fs *flag.FlagSet) (recipient, reason *string) {
	recipient = fs.String("recipient", "", "who the footage is disclosed to, e.g. \"PC 1234, Met Police\" (the disclosure log)")
	reason = fs.String("reason", "", "why, e.g. a crime or case reference (the disclosure log)")
	return recipient, reason
}

func (g *globals) isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
