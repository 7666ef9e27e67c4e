package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// benchResult is one line of `go test -bench` output: the benchmark's
// name without its -GOMAXPROCS suffix, and each reported unit's value.
type benchResult struct {
	Name    string
	Iters   int
	Metrics map[string]float64
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads the result lines of `go test -bench` output.
func parseBench(out []byte) []benchResult {
	var res []benchResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		r := benchResult{Name: procsSuffix.ReplaceAllString(f[0], ""), Iters: n, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			r.Metrics[f[i+1]] = v
		}
		res = append(res, r)
	}
	return res
}

// benchSet holds the medians over -count runs: name → unit → median.
type benchSet map[string]map[string]float64

// medians groups results by name and takes each unit's median.
func medians(rs []benchResult) (benchSet, map[string]int) {
	vals := map[string]map[string][]float64{}
	runs := map[string]int{}
	for _, r := range rs {
		if vals[r.Name] == nil {
			vals[r.Name] = map[string][]float64{}
		}
		runs[r.Name]++
		for u, v := range r.Metrics {
			vals[r.Name][u] = append(vals[r.Name][u], v)
		}
	}
	out := benchSet{}
	for name, units := range vals {
		out[name] = map[string]float64{}
		for u, vs := range units {
			out[name][u] = median(vs)
		}
	}
	return out, runs
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// get returns a median, and whether the benchmark reported it.
func (s benchSet) get(name, unit string) (float64, bool) {
	m, ok := s[name]
	if !ok {
		return 0, false
	}
	v, ok := m[unit]
	return v, ok
}

// goBench runs `go test -run '^$' -bench PATTERN -count N [-benchtime T]
// PKG` and returns the medians, the command (to reproduce it) and the raw
// output, which is also appended to the run's log.
func (r *runner) goBench(ctx context.Context, pkg, pattern, benchtime string, count int, env ...string) (benchSet, map[string]int, string, error) {
	args := []string{"test", "-run", "^$", "-bench", pattern, "-count", strconv.Itoa(count)}
	if benchtime != "" {
		args = append(args, "-benchtime", benchtime)
	}
	args = append(args, "-timeout", "30m", pkg)
	repro := "go " + shellJoin(args)
	for _, e := range env {
		repro = e + " " + repro
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r.logf("$ %s  (%.1f s)\n%s", repro, time.Since(start).Seconds(), out)
	if err != nil {
		return nil, nil, repro, fmt.Errorf("%s: %v (see %s)", repro, err, r.logPath)
	}
	set, runs := medians(parseBench(out))
	return set, runs, repro, nil
}

// shellJoin quotes the arguments that need it for a POSIX shell.
func shellJoin(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a == "" || strings.ContainsAny(a, " '\"$^|*?()[]{}<>&;\\") {
			b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
		} else {
			b.WriteString(a)
		}
	}
	return b.String()
}
