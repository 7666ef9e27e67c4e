package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/clip"
	"github.com/outpost-cctv/outpost/control"
	"github.com/outpost-cctv/outpost/internal/faultproxy"
	"github.com/outpost-cctv/outpost/internal/testbroker"
)

// Shaped link of a unit on 4G: 2 Mbit/s towards the control room, 80 ms
// round trip.
const (
	shapedRate    = 2_000_000 / 8
	shapedLatency = 40 * time.Millisecond // each way
)

// BenchmarkClipPullShaped measures the goodput of a clip pull through a
// shaped link against a plain TCP stream of the same bytes through the same
// shaper, in the same run. Run it with:
//
//	go test ./cmd/outpostctl -run '^$' -bench ClipPullShaped -benchtime 3x
func BenchmarkClipPullShaped(b *testing.B) {
	br := testbroker.Start(b, testbroker.Options{})
	link, err := faultproxy.Start(br.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer link.Close()
	unit(b, br.Via(link.Addr()), "bench-1")
	waitOnline(b, br, "bench-1")
	from := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	to := from.Add(time.Second)
	waitRecorded(to)
	link.SetLatency(shapedLatency)
	link.SetBandwidth(shapedRate)

	c, err := control.Dial(context.Background(), control.Options{Broker: br.URL()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	var pullSecs, tcpSecs float64
	var size int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out := filepath.Join(b.TempDir(), "c.mp4")
		start := time.Now()
		res, err := c.Pull(context.Background(), control.PullRequest{Unit: "bench-1", Out: out,
			Args: clip.StartArgs{Kind: clip.KindClip, From: from, To: to, ID: "bench-" + time.Now().Format("150405.000000")[7:]}})
		if err != nil {
			b.Fatal(err)
		}
		pullSecs += time.Since(start).Seconds()
		size = res.Manifest.Size
		tcpSecs += plainTCP(b, size)
	}
	b.StopTimer()
	pull := float64(size) * float64(b.N) / pullSecs
	tcp := float64(size) * float64(b.N) / tcpSecs
	b.ReportMetric(pull*8/1e6, "pull-Mbit/s")
	b.ReportMetric(tcp*8/1e6, "tcp-Mbit/s")
	b.ReportMetric(pull/tcp, "ratio")
	b.ReportMetric(float64(size), "clip-bytes")
}

// plainTCP sends n bytes through a proxy shaped like the unit's link to a
// sink that answers one byte when it has them all, and returns the seconds
// that took.
func plainTCP(b *testing.B, n int64) float64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		io.CopyN(io.Discard, conn, n)
		conn.Write([]byte{1})
	}()
	p, err := faultproxy.Start(ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	p.SetLatency(shapedLatency)
	p.SetBandwidth(shapedRate)
	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	buf := make([]byte, 64<<10)
	for left := n; left > 0; {
		k := min(left, int64(len(buf)))
		if _, err := conn.Write(buf[:k]); err != nil {
			b.Fatal(err)
		}
		left -= k
	}
	one := make([]byte, 1)
	if _, err := io.ReadFull(conn, one); err != nil {
		b.Fatal(err)
	}
	return time.Since(start).Seconds()
}
