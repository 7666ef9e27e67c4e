// Command bench measures Outpost against its peers on this machine and
// writes the results: bin/bench/results.json and docs/performance.md.
//
//	go run ./scripts/bench            # everything, under 15 minutes
//	go run ./scripts/bench -quick     # a trial run of about 2 minutes
//	go run ./scripts/bench -only agent,decode -write=false
//
// Each row pairs one of Outpost's figures with a peer's figure measured in
// the same run on the same machine: dd, ffmpeg, tjbench (libjpeg-turbo),
// plain TCP, bsdiff, xdelta3, zstd and Debian's Motion daemon. The Go
// figures come from the packages' own benchmarks (go test -bench), run
// several times and reduced to medians. Peers missing from the machine are
// installed from Debian's packages when run as root; otherwise their rows
// say what is missing and the rest of the run goes on.
//
// This program is a development tool: nothing in cmd/ imports it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Row is one line of the table: Outpost's figure, the peer's, their ratio
// and the goal, or why it was not measured.
type Row struct {
	Group       string `json:"group"`
	Figure      string `json:"figure"`
	Ours        string `json:"ours,omitempty"`
	Peer        string `json:"peer,omitempty"`
	Ratio       string `json:"ratio,omitempty"`
	Goal        string `json:"goal"`
	Met         *bool  `json:"met,omitempty"`
	Reproduce   string `json:"reproduce"`
	NotMeasured string `json:"not_measured,omitempty"`
	// Values are the raw numbers behind the row, in the units named.
	Values map[string]float64 `json:"values,omitempty"`
}

// Results is what a run writes to results.json.
type Results struct {
	Machine  Machine        `json:"machine"`
	Started  time.Time      `json:"started"`
	Seconds  float64        `json:"seconds"`
	Quick    bool           `json:"quick"`
	Count    int            `json:"count"`
	Peers    []PeerStatus   `json:"peers"`
	Rows     []Row          `json:"rows"`
	Benchset map[string]any `json:"benchmarks,omitempty"`
}

type runner struct {
	quick    bool
	count    int
	agentDur time.Duration
	budget   time.Duration
	start    time.Time
	outDir   string
	logPath  string
	log      *os.File
	peers    map[string]*PeerStatus
	rows     []Row
	raw      map[string]any
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, format, args...)
	if !strings.HasSuffix(format, "\n") {
		fmt.Fprintln(r.log)
	}
}

// say prints progress on stderr with the time since the start.
func (r *runner) say(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(os.Stderr, "[%5.0fs] %s\n", time.Since(r.start).Seconds(), msg)
	r.logf("## %s", msg)
}

func (r *runner) add(row Row) { r.rows = append(r.rows, row) }

// group is one part of the run.
type group struct {
	name string
	run  func(r *runner, ctx context.Context)
}

func main() {
	quick := flag.Bool("quick", false, "a trial run of about 2 minutes: fewer and shorter runs, 720p only")
	only := flag.String("only", "", "run only these groups, comma-separated (store,export,decode,mask,clip,ota,telemetry,cross,fleet,agent)")
	write := flag.Bool("write", true, "write docs/performance.md (results.json is always written)")
	doc := flag.String("doc", "docs/performance.md", "the document to write")
	out := flag.String("out", "bin/bench", "directory for results.json, the log and the work files")
	agentDur := flag.Duration("agent-duration", 60*time.Second, "how long Outpost and Motion each record the stream, per run (quick: 15s)")
	budget := flag.Duration("budget", 14*time.Minute, "the whole run's time budget; 1080p agent runs are done only if they fit")
	install := flag.Bool("install", true, "install missing peers from Debian's packages when run as root")
	flag.Parse()

	r := &runner{quick: *quick, count: 3, agentDur: *agentDur, budget: *budget, start: time.Now(), outDir: *out, raw: map[string]any{}}
	if *quick {
		r.count = 1
		if !isSet("agent-duration") {
			r.agentDur = 15 * time.Second
		}
		if !isSet("budget") {
			r.budget = 2 * time.Minute
		}
	}
	if err := os.MkdirAll(r.outDir, 0o755); err != nil {
		fatal(err)
	}
	if abs, err := filepath.Abs(r.outDir); err == nil {
		r.outDir = abs
	}
	r.logPath = filepath.Join(r.outDir, "bench.log")
	lf, err := os.Create(r.logPath)
	if err != nil {
		fatal(err)
	}
	defer lf.Close()
	r.log = lf

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	m := machine()
	r.say("machine: %s, %d cores, %s, %s", m.CPU, m.Cores, m.Go, m.Kernel)
	r.peers = r.ensurePeers(ctx, *install)

	groups := []group{
		{"store", (*runner).benchStore},
		{"export", (*runner).benchExport},
		{"decode", (*runner).benchDecode},
		{"mask", (*runner).benchMask},
		{"clip", (*runner).benchClip},
		{"ota", (*runner).benchOTA},
		{"telemetry", (*runner).benchTelemetry},
		{"cross", (*runner).benchCross},
		{"fleet", (*runner).benchFleet},
		{"agent", (*runner).benchAgent},
	}
	want := map[string]bool{}
	for _, g := range strings.Split(*only, ",") {
		if g = strings.TrimSpace(g); g != "" {
			want[g] = true
		}
	}
	for _, g := range groups {
		if len(want) > 0 && !want[g.name] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		r.say("%s ...", g.name)
		g.run(r, ctx)
	}

	res := Results{Machine: m, Started: r.start.UTC(), Seconds: time.Since(r.start).Seconds(), Quick: r.quick, Count: r.count, Rows: r.rows, Benchset: r.raw}
	for _, name := range peerOrder {
		if p := r.peers[name]; p != nil {
			res.Peers = append(res.Peers, *p)
		}
	}
	js, _ := json.MarshalIndent(res, "", "  ")
	jsPath := filepath.Join(r.outDir, "results.json")
	if err := os.WriteFile(jsPath, append(js, '\n'), 0o644); err != nil {
		fatal(err)
	}
	r.say("wrote %s", jsPath)
	if *write {
		if len(want) > 0 {
			r.say("not writing %s: -only ran part of the table", *doc)
		} else if err := render(*doc, res); err != nil {
			fatal(err)
		} else {
			r.say("wrote %s", *doc)
		}
	}
	for _, row := range r.rows {
		v := row.Ours
		if row.NotMeasured != "" {
			v = "not measured: " + row.NotMeasured
		}
		fmt.Printf("%-60.60s %s | %s | %s\n", row.Figure, v, row.Peer, row.Ratio)
	}
	fmt.Printf("total %.0f s\n", time.Since(r.start).Seconds())
}

func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
