package main

import (
	_ "embed"
	"fmt"
	"os"
	"strings"
)

// notes are the method notes kept below the generated table.
//
//go:embed notes.md
var notes string

// cell makes a value safe in a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// render writes the performance document: what was measured on which
// machine, the table, then the method notes.
func render(path string, res Results) error {
	var b strings.Builder
	m := res.Machine
	fmt.Fprintf(&b, "# Performance\n\n")
	fmt.Fprintf(&b, "<!-- Written by `make bench` (scripts/bench); edit scripts/bench/notes.md for the notes below the table. -->\n\n")
	fmt.Fprintf(&b, "Outpost against its peers, side by side: each row is one of Outpost's\n")
	fmt.Fprintf(&b, "figures and a peer's figure measured in the same run on the same machine.\n")
	fmt.Fprintf(&b, "`make bench` measures everything again and rewrites this file\n")
	fmt.Fprintf(&b, "(`make bench BENCH_QUICK=1` for a trial run); the raw figures are in\n")
	fmt.Fprintf(&b, "`bin/bench/results.json` and every command's output in `bin/bench/bench.log`.\n\n")
	mode := fmt.Sprintf("medians of %d runs", res.Count)
	if res.Quick {
		mode = "quick mode: single, shorter runs; a trial, not figures to quote"
	}
	fmt.Fprintf(&b, "Machine: %s, %d cores, %.0f GiB RAM; %s, %s; %s. Run on %s, %.1f minutes, %s.\n\n",
		m.CPU, m.Cores, m.MemGiB, m.OS, m.Kernel, m.Go, m.Date, res.Seconds/60, mode)
	var have, miss []string
	for _, p := range res.Peers {
		if p.Missing == "" {
			have = append(have, fmt.Sprintf("%s (%s %s)", p.Tool, p.Package, p.Version))
		} else {
			miss = append(miss, p.Missing)
		}
	}
	fmt.Fprintf(&b, "Peers and tools: %s.", strings.Join(have, ", "))
	if len(miss) > 0 {
		fmt.Fprintf(&b, " Missing: %s.", strings.Join(miss, "; "))
	}
	b.WriteString("\n\n")
	b.WriteString("| Figure | Outpost | Peer (same run) | Ratio | Goal | Reproduce |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range res.Rows {
		ours, peer, ratio := r.Ours, r.Peer, r.Ratio
		if r.NotMeasured != "" {
			ours, peer, ratio = "not measured: "+r.NotMeasured, "—", "—"
		}
		if peer == "" {
			peer = "—"
		}
		if ratio == "" {
			ratio = "—"
		}
		goal := r.Goal
		if r.Met != nil {
			if *r.Met {
				goal += " — met"
			} else {
				goal += " — **not met**"
			}
		}
		repro := r.Reproduce
		if repro != "same" && repro != "" && !strings.Contains(repro, "`") {
			repro = "`" + repro + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", cell(r.Figure), cell(ours), cell(peer), cell(ratio), cell(goal), cell(repro))
	}
	b.WriteString("\n")
	b.WriteString(strings.TrimLeft(notes, "\n"))
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
