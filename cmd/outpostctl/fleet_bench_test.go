package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/clip"
	"github.com/outpost-cctv/outpost/control"
	"github.com/outpost-cctv/outpost/internal/testbroker"
)

// BenchmarkFleet1000 runs a fleet of a thousand simulated units
// (`outpost fleet-sim`, telemetry every 10 s) against a real mosquitto and
// measures what a control room sees: units online, telemetry messages a
// second through the broker, `outpostctl units` wall time and peak memory
// (median of 3; goal under 2 s), and a clip pull's goodput from a real
// demo unit while the fleet reports, against the same pull with no fleet.
//
//	go test ./cmd/outpostctl -run '^$' -bench Fleet1000 -benchtime 1x
func BenchmarkFleet1000(b *testing.B) {
	const n = 1000
	br := testbroker.Start(b, testbroker.Options{})
	unit(b, br, "fleet-cam")
	waitOnline(b, br, "fleet-cam")
	c, err := control.Dial(context.Background(), control.Options{Broker: br.URL()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	from := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	to := from.Add(2 * time.Second)
	waitRecorded(to)
	pull := func() float64 {
		out := filepath.Join(b.TempDir(), "c.mp4")
		start := time.Now()
		res, err := c.Pull(context.Background(), control.PullRequest{Unit: "fleet-cam", Out: out,
			Args: clip.StartArgs{Kind: clip.KindClip, From: from, To: to, ID: "fleet-" + time.Now().Format("150405.000000")[7:]}})
		if err != nil {
			b.Fatal(err)
		}
		return float64(res.Manifest.Size) / time.Since(start).Seconds()
	}
	alone := pull()

	sim := exec.Command(bins.outpost, "fleet-sim", "--units", "1000", "--broker", br.URL(), "--telemetry", "10s", "--rate", "500")
	var simOut strings.Builder
	sim.Stdout, sim.Stderr = &simOut, &simOut
	if err := sim.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { sim.Process.Signal(syscall.SIGTERM); sim.Wait() }()
	start := time.Now()
	var online int
	for time.Since(start) < 60*time.Second {
		out, _, _ := ctl(b, br, "units", "--json")
		var units []struct {
			Status *struct {
				State string `json:"state"`
			} `json:"status"`
		}
		json.Unmarshal([]byte(out), &units)
		online = 0
		for _, u := range units {
			if u.Status != nil && u.Status.State == "online" {
				online++
			}
		}
		if online >= n+1 {
			break
		}
		time.Sleep(time.Second)
	}
	if online < n+1 {
		b.Fatalf("only %d of %d units online after 60 s:\n%s", online, n+1, simOut.String())
	}
	connectSecs := time.Since(start).Seconds()

	// Telemetry through the broker, counted for 20 s.
	var msgs atomic.Int64
	wctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	c.Watch(wctx, "+", func(e control.Event) {
		if strings.HasPrefix(e.Topic, "telemetry/") {
			msgs.Add(1)
		}
	})
	cancel()
	rate := float64(msgs.Load()) / 20

	// outpostctl units: wall time and peak memory, median of 3.
	var secs, mems []float64
	for range 3 {
		cmd := exec.Command(bins.outpostctl, "--broker", br.URL(), "units")
		t0 := time.Now()
		out, err := cmd.Output()
		if err != nil {
			b.Fatal(err)
		}
		secs = append(secs, time.Since(t0).Seconds())
		mems = append(mems, float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)/1024)
		if lines := strings.Count(string(out), "\n"); lines < n+2 {
			b.Fatalf("outpostctl units listed %d lines, want %d", lines, n+2)
		}
	}
	sort.Float64s(secs)
	sort.Float64s(mems)
	busy := pull()

	b.ReportMetric(float64(online), "units-online")
	b.ReportMetric(connectSecs, "s-to-connect")
	b.ReportMetric(rate, "telemetry-msgs/s")
	b.ReportMetric(secs[1], "units-cmd-s")
	b.ReportMetric(mems[1], "units-cmd-MB")
	b.ReportMetric(alone*8/1e6, "pull-alone-Mbit/s")
	b.ReportMetric(busy*8/1e6, "pull-with-fleet-Mbit/s")
}
