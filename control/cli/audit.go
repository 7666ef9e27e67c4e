package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/outpost-cctv/outpost/agent/audit"
	"github.com/outpost-cctv/outpost/control"
)

const auditUsage = `usage: outpostctl audit UNIT [--since 24h|RFC3339|all] [--limit N] [--json]
  who asked the unit for footage, snapshots, configuration or updates, when,
  for what range, for whom and why, and the unit's check of its hash chain`

// auditCmd is `outpostctl audit UNIT`: the unit's access audit trail (the
// disclosure log), and whether the unit finds its hash chain intact.
func auditCmd(ctx context.Context, g *globals, args []string) int {
	fs := g.flagSet("audit")
	sinceFlag := fs.String("since", "24h", "how far back: a duration (24h, 720h), a time (RFC 3339 or local \"2026-11-25 03:12\"), or all")
	limit := fs.Int("limit", 0, "at most this many entries, the oldest first (default: all)")
	pos, ok := parse(fs, args)
	if !ok || len(pos) != 1 || *limit < 0 {
		fmt.Fprintln(g.env.Stderr, auditUsage)
		return ExitUsage
	}
	since, err := parseSince(*sinceFlag, time.Now())
	if err != nil {
		fmt.Fprintln(g.env.Stderr, "outpostctl:", err)
		return ExitUsage
	}
	unit := pos[0]
	var list control.AuditList
	if code := g.withClient(ctx, func(ctx context.Context, c *control.Client) int {
		var err error
		if list, err = c.Audit(ctx, unit, since, *limit); err != nil {
			return g.fail(err)
		}
		return ExitOK
	}); code != ExitOK {
		return code
	}
	if g.json {
		if code := g.printJSON(list); code != ExitOK {
			return code
		}
	} else {
		printAudit(g.env.Stdout, unit, since, list, time.Local)
	}
	if !list.ChainOK {
		return ExitFailure
	}
	return ExitOK
}

// parseSince reads --since: a duration back from now, a time, or "all"
// (the zero time).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "all" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("--since %s: give a positive duration such as 24h, or all", s)
		}
		return now.Add(-d), nil
	}
	t, err := parseTime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since: %v, or a duration such as 24h, or all", err)
	}
	return t, nil
}

// printAudit writes the audit table and the chain verdict, times in loc.
func printAudit(w io.Writer, unit string, since time.Time, l control.AuditList, loc *time.Location) {
	if len(l.Entries) == 0 {
		if since.IsZero() {
			fmt.Fprintf(w, "%s has recorded no access\n", unit)
		} else {
			fmt.Fprintf(w, "%s recorded no access since %s\n", unit, since.In(loc).Format("2006-01-02 15:04:05"))
		}
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tREQUESTER\tACTION\tRANGE\tRESULT\tRECIPIENT / REASON")
		for _, e := range l.Entries {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.In(loc).Format("2006-01-02 15:04:05"),
				cell(e.Requester, 40), cell(e.Action, 24), auditRange(e, loc), auditResult(e), disclosure(e))
		}
		tw.Flush()
	}
	if l.More {
		fmt.Fprintf(w, "more entries follow entry %d: raise --limit or use a later --since\n", l.Entries[len(l.Entries)-1].Seq)
	}
	head := l.Head
	if len(head) > 16 {
		head = head[:16]
	}
	if l.ChainOK {
		fmt.Fprintf(w, "chain intact: the unit verified entries %d to %d; head %s (entry %d)\n", l.FirstSeq, l.HeadSeq, head, l.HeadSeq)
		if l.FirstSeq > 1 {
			fmt.Fprintf(w, "entries before %d were removed by the unit's retention\n", l.FirstSeq)
		}
		return
	}
	fmt.Fprintf(w, "CHAIN BROKEN: the unit's audit trail was altered or damaged (head %s, entry %d):\n", head, l.HeadSeq)
	for _, p := range l.Problems {
		fmt.Fprintf(w, "  - %s\n", cell(p, 200))
	}
	fmt.Fprintln(w, "Keep this output and the unit's audit directory as they are, and report it to the data protection officer.")
}

// auditRange is an entry's footage range, the second time shortened when
// it falls on the same day.
func auditRange(e audit.Entry, loc *time.Location) string {
	switch {
	case e.From.IsZero() && e.To.IsZero():
		return "-"
	case e.To.IsZero():
		return e.From.In(loc).Format("2006-01-02 15:04:05")
	case e.From.IsZero():
		return "to " + e.To.In(loc).Format("2006-01-02 15:04:05")
	}
	from, to := e.From.In(loc), e.To.In(loc)
	layout := "2006-01-02 15:04:05"
	if from.Format("2006-01-02") == to.Format("2006-01-02") {
		layout = "15:04:05"
	}
	return from.Format("2006-01-02 15:04:05") + " - " + to.Format(layout)
}

func auditResult(e audit.Entry) string {
	r := e.Result
	if r == "" {
		r = "-"
	}
	if r != "ok" && e.Detail != "" {
		r += ": " + e.Detail
	}
	return cell(r, 48)
}

func disclosure(e audit.Entry) string {
	switch {
	case e.Recipient != "" && e.Reason != "":
		return cell(e.Recipient+" / "+e.Reason, 60)
	case e.Recipient != "":
		return cell(e.Recipient, 60)
	case e.Reason != "":
		return cell("/ "+e.Reason, 60)
	}
	return "-"
}

// cell makes a value from the unit safe and short for a table: control
// characters (which could drive the terminal) become '?', tabs and line
// breaks spaces, and long values are cut with "…".
func cell(s string, n int) string {
	if s == "" {
		return "-"
	}
	var b strings.Builder
	count := 0
	for _, r := range s {
		if count == n {
			b.WriteString("…")
			break
		}
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			r = ' '
		case unicode.IsControl(r) || r == unicode.ReplacementChar || unicode.Is(unicode.Bidi_Control, r):
			r = '?'
		}
		b.WriteRune(r)
		count++
	}
	return b.String()
}
