package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera/sim"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// Formatting of figures.

func fmtDur(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 10e6:
		return fmt.Sprintf("%.0f ms", ns/1e6)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 10e3:
		return fmt.Sprintf("%.0f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
}

// fmtInt writes n with thin groups of three digits: 1 532 160.
func fmtInt(n float64) string {
	s := strconv.FormatInt(int64(math.Round(n)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(" ")
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtMB(bytes float64) string { return fmt.Sprintf("%.2f MB", bytes/1e6) }

func ptr(b bool) *bool { return &b }

// ratioTimes is a/b as "1.48×".
func ratioTimes(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func (r *runner) benchtime(full, quick string) string {
	if r.quick {
		return quick
	}
	return full
}

// benchStore: appending frames to the footage store against dd, and
// opening a store of 28 days against listing its directory.
func (r *runner) benchStore(ctx context.Context) {
	const pkg = "./footage/"
	set, runs, repro, err := r.goBench(ctx, pkg, "^BenchmarkAppend$", r.benchtime("1500x", "300x"), r.count)
	r.raw["footage/Append"] = set
	if err != nil {
		r.add(Row{Group: "store", Figure: "Footage store append", Goal: "—", Reproduce: repro, NotMeasured: err.Error()})
		return
	}
	ns, _ := set.get("BenchmarkAppend/store", "ns/op")
	mbs, _ := set.get("BenchmarkAppend/store", "MB/s")
	cpu, _ := set.get("BenchmarkAppend/store", "cpu-µs/frame")
	allocs, _ := set.get("BenchmarkAppend/store", "allocs/op")
	bop, _ := set.get("BenchmarkAppend/store", "B/op")
	ddNs, haveDD := set.get("BenchmarkAppend/dd", "ns/op")
	ddMBs, _ := set.get("BenchmarkAppend/dd", "MB/s")
	ddCPU, _ := set.get("BenchmarkAppend/dd", "cpu-µs/frame")
	n := runs["BenchmarkAppend/store"]
	wall := Row{Group: "store", Figure: fmt.Sprintf("Store append of 175 KiB frames, fdatasync every 25 frames (1 s at 25 fps): wall time per frame (median of %d)", n),
		Ours: fmt.Sprintf("%s/frame, %.0f MB/s", fmtDur(ns), mbs), Goal: "≤ 40 ms/frame (a frame's time at 25 fps)", Met: ptr(ns <= 40e6), Reproduce: repro,
		Values: map[string]float64{"ns/frame": ns, "MB/s": mbs, "dd-ns/frame": ddNs}}
	cpuRow := Row{Group: "store", Figure: "Store append: CPU per frame (user + system, whole process)", Ours: fmt.Sprintf("%.0f µs (%.0f alloc, %.0f B)", cpu, allocs, bop),
		Goal: "≤ 200 µs", Met: ptr(cpu <= 200), Reproduce: "same", Values: map[string]float64{"cpu-µs/frame": cpu, "dd-cpu-µs/frame": ddCPU, "allocs/frame": allocs}}
	if haveDD {
		wall.Peer = fmt.Sprintf("`dd bs=175KiB conv=fdatasync`, same bytes: %s/frame, %.0f MB/s", fmtDur(ddNs), ddMBs)
		wall.Ratio = ratioTimes(ns, ddNs) + " dd's time"
		cpuRow.Peer = fmt.Sprintf("dd: %.0f µs", ddCPU)
		cpuRow.Ratio = ratioTimes(cpu, ddCPU)
	} else {
		why := r.need("dd")
		if why == "" {
			why = "the dd benchmark did not report"
		}
		wall.Peer, cpuRow.Peer = "not measured: "+why, "not measured: "+why
	}
	r.add(wall)
	r.add(cpuRow)

	if r.quick {
		return
	}
	set, _, repro, err = r.goBench(ctx, pkg, "^BenchmarkOpen$", "3x", r.count)
	r.raw["footage/Open"] = set
	if err != nil {
		r.add(Row{Group: "store", Figure: "Store open (recovery) of 28 days of segments", Goal: "< 2 s", Reproduce: repro, NotMeasured: err.Error()})
		return
	}
	idx, _ := set.get("BenchmarkOpen/index", "ns/op")
	foot, _ := set.get("BenchmarkOpen/footers", "ns/op")
	rd, _ := set.get("BenchmarkOpen/readdir", "ns/op")
	r.add(Row{Group: "store", Figure: "Store open (recovery) of 28 days of 60 s segments (40,320 files), with index.log",
		Ours: fmtDur(idx), Peer: "listing the directory alone: " + fmtDur(rd), Ratio: ratioTimes(idx, rd) + " a readdir",
		Goal: "< 2 s", Met: ptr(idx < 2e9), Reproduce: repro, Values: map[string]float64{"ns": idx, "readdir-ns": rd}})
	r.add(Row{Group: "store", Figure: "Store open of the same store without index.log (every footer read)",
		Ours: fmtDur(foot), Peer: "readdir: " + fmtDur(rd), Ratio: ratioTimes(foot, rd) + " a readdir",
		Goal: "< 2 s", Met: ptr(foot < 2e9), Reproduce: "same", Values: map[string]float64{"ns": foot, "readdir-ns": rd}})
}

// benchExport: a minute of 1080p25 from the store to MP4 against ffmpeg
// remuxing the same frames with -c copy.
func (r *runner) benchExport(ctx context.Context) {
	pattern := "^BenchmarkExport$"
	why := r.need("ffmpeg")
	if why != "" {
		pattern = "^BenchmarkExport$/^store$"
	}
	set, runs, repro, err := r.goBench(ctx, "./footage/", pattern, r.benchtime("5x", "2x"), r.count)
	r.raw["footage/Export"] = set
	row := Row{Group: "export", Figure: "Export 60 s of 1080p25 (1,500 frames) to MP4", Goal: "no slower than ffmpeg (≤ 1×)", Reproduce: repro}
	if err != nil {
		row.NotMeasured = err.Error()
		r.add(row)
		return
	}
	ns, _ := set.get("BenchmarkExport/store", "ns/op")
	mbs, _ := set.get("BenchmarkExport/store", "MB/s")
	row.Figure += fmt.Sprintf(" (median of %d)", runs["BenchmarkExport/store"])
	row.Ours = fmt.Sprintf("%s (%.0f MB/s)", fmtDur(ns), mbs)
	row.Values = map[string]float64{"ns": ns, "MB/s": mbs}
	if ff, ok := set.get("BenchmarkExport/ffmpeg", "ns/op"); ok && why == "" {
		ffMBs, _ := set.get("BenchmarkExport/ffmpeg", "MB/s")
		row.Peer = fmt.Sprintf("`ffmpeg -f mjpeg -framerate 25 -i in.mjpeg -c copy out.mp4`: %s (%.0f MB/s)", fmtDur(ff), ffMBs)
		row.Ratio = ratioTimes(ns, ff) + " ffmpeg's time"
		row.Met = ptr(ns <= ff)
		row.Values["ffmpeg-ns"] = ff
	} else {
		row.Peer = "not measured: " + why
	}
	r.add(row)
}

// simFrame1080 writes the simulated camera's 1080p street frame (quality
// 75, as in footage/motion/jpegdc's benchmarks) to a file, for every
// decoder to read the same bytes.
func simFrame1080(path string) (int, error) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cam, err := sim.New(sim.Config{Width: 1920, Height: 1080, FPS: 25, Quality: 75}, clk)
	if err != nil {
		return 0, err
	}
	defer cam.Close()
	f, err := cam.Next(context.Background())
	if err != nil {
		return 0, err
	}
	return len(f.Data), os.WriteFile(path, f.Data, 0o644)
}

var tjRate = regexp.MustCompile(`Decompress\s+-->\s+Frame rate:\s+([0-9.]+)\s+fps`)

// benchDecode: the DC-only decode against image/jpeg's full decode and
// libjpeg-turbo's 1/8-scale decode (tjbench), on the same JPEG file.
func (r *runner) benchDecode(ctx context.Context) {
	jpg, err := filepath.Abs(filepath.Join(r.outDir, "frame1080.jpg"))
	if err != nil {
		fatal(err)
	}
	size, err := simFrame1080(jpg)
	if err != nil {
		r.add(Row{Group: "decode", Figure: "DC-only decode of a 1080p frame", Goal: "≥ 5× faster than image/jpeg", Reproduce: "", NotMeasured: err.Error()})
		return
	}
	set, runs, repro, err := r.goBench(ctx, "./footage/motion/jpegdc/", "^BenchmarkDecodeFile$", r.benchtime("1s", "300ms"), r.count, "OUTPOST_BENCH_JPEG="+jpg)
	repro = strings.Replace(repro, jpg, "FRAME.jpg", 1)
	r.raw["jpegdc/DecodeFile"] = set
	if err != nil {
		r.add(Row{Group: "decode", Figure: "DC-only decode of a 1080p frame", Goal: "≥ 5× faster than image/jpeg", Reproduce: repro, NotMeasured: err.Error()})
		return
	}
	dc, _ := set.get("BenchmarkDecodeFile/jpegdc", "ns/op")
	dcAllocs, _ := set.get("BenchmarkDecodeFile/jpegdc", "allocs/op")
	full, _ := set.get("BenchmarkDecodeFile/image-jpeg", "ns/op")
	fullAllocs, _ := set.get("BenchmarkDecodeFile/image-jpeg", "allocs/op")
	n := runs["BenchmarkDecodeFile/jpegdc"]
	what := fmt.Sprintf("DC-only decode of a 1080p frame (%d KB, the simulated street at quality 75) to its 240×135 luma block means (median of %d)", size/1000, n)
	r.add(Row{Group: "decode", Figure: what, Ours: fmt.Sprintf("%s, %.0f allocs", fmtDur(dc), dcAllocs),
		Peer: fmt.Sprintf("`image/jpeg` full decode: %s, %.0f allocs", fmtDur(full), fullAllocs), Ratio: fmt.Sprintf("%.1f× faster", full/dc),
		Goal: "≥ 5× faster", Met: ptr(full/dc >= 5), Reproduce: "`" + repro + "` (FRAME.jpg: `go run ./scripts/bench -only decode` writes bin/bench/frame1080.jpg)",
		Values: map[string]float64{"ns": dc, "image-jpeg-ns": full, "bytes": float64(size)}})

	row := Row{Group: "decode", Figure: "DC-only decode vs libjpeg-turbo's scaled decode, same file", Ours: fmtDur(dc),
		Goal: "within 1.25× of tjbench's time", Reproduce: "`tjbench FRAME.jpg -scale 1/8 -benchtime 1 -warmup 1`, and the Go benchmark above",
		Values: map[string]float64{"ns": dc}}
	if why := r.need("tjbench"); why != "" {
		row.Peer = "not measured: " + why
		r.add(row)
		return
	}
	var rates []float64
	for i := 0; i < r.count; i++ {
		out, err := exec.CommandContext(ctx, "tjbench", jpg, "-scale", "1/8", "-benchtime", r.benchtime("1", "0.3"), "-warmup", r.benchtime("1", "0.1")).CombinedOutput()
		r.logf("$ tjbench %s -scale 1/8\n%s", jpg, out)
		m := tjRate.FindSubmatch(out)
		if err != nil || m == nil {
			row.Peer = fmt.Sprintf("not measured: tjbench failed (%v), see %s", err, r.logPath)
			r.add(row)
			return
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		rates = append(rates, v)
	}
	tj := 1e9 / median(rates)
	row.Peer = fmt.Sprintf("`tjbench -scale 1/8` (libjpeg-turbo %s, to 240×135 BGR): %s", r.peers["tjbench"].Version, fmtDur(tj))
	row.Ratio = ratioTimes(dc, tj) + " tjbench's time"
	row.Met = ptr(dc <= 1.25*tj)
	row.Values["tjbench-ns"] = tj
	r.add(row)
}

// benchClip: a clip pull through a shaped 4G-like link against plain TCP
// through the same shaper (the benchmark measures both).
func (r *runner) benchClip(ctx context.Context) {
	if why := r.need("mosquitto"); why != "" {
		r.add(Row{Group: "clip", Figure: "Clip pull goodput over a shaped link", Goal: "≥ 0.9 of plain TCP",
			Reproduce: "go test -run '^$' -bench '^BenchmarkClipPullShaped$' -count 3 -benchtime 1x ./cmd/outpostctl", NotMeasured: why})
		return
	}
	set, runs, repro, err := r.goBench(ctx, "./cmd/outpostctl", "^BenchmarkClipPullShaped$", r.benchtime("1x", "1x"), r.count)
	r.raw["outpostctl/ClipPullShaped"] = set
	row := Row{Group: "clip", Figure: "Clip pull goodput, 1 s of 720p, link shaped to 2 Mbit/s and 80 ms RTT", Goal: "≥ 0.9 of plain TCP", Reproduce: repro}
	if err != nil {
		row.NotMeasured = err.Error()
		r.add(row)
		return
	}
	const b = "BenchmarkClipPullShaped"
	pull, _ := set.get(b, "pull-Mbit/s")
	tcp, _ := set.get(b, "tcp-Mbit/s")
	ratio, _ := set.get(b, "ratio")
	size, _ := set.get(b, "clip-bytes")
	row.Figure = fmt.Sprintf("Clip pull goodput, 1 s of 720p (%s), link shaped to 2 Mbit/s and 80 ms RTT (median of %d)", fmtMB(size), runs[b])
	row.Ours = fmt.Sprintf("%.2f Mbit/s", pull)
	row.Peer = fmt.Sprintf("plain TCP, same bytes, same shaper: %.2f Mbit/s", tcp)
	row.Ratio = fmt.Sprintf("%.2f (median of the runs' ratios)", ratio)
	row.Met = ptr(ratio >= 0.9)
	row.Values = map[string]float64{"pull-Mbit/s": pull, "tcp-Mbit/s": tcp, "ratio": ratio, "bytes": size}
	r.add(row)
}

// benchOTA: the size of the agent's update delta (bsdiff-zstd, and the
// zstd-delta it replaced) against bsdiff, xdelta3 and zstd --patch-from on
// the same two builds, and the time and memory of applying it against
// bspatch's time.
func (r *runner) benchOTA(ctx context.Context) {
	count := r.count
	pattern := "^BenchmarkDelta$"
	if r.quick {
		pattern = "^BenchmarkDelta$/^code$"
	}
	set, runs, repro, err := r.goBench(ctx, "./ota/", pattern, "1x", count)
	r.raw["ota/Delta"] = set
	if err != nil {
		r.add(Row{Group: "ota", Figure: "OTA delta between two builds of the agent", Goal: "—", Reproduce: repro, NotMeasured: err.Error()})
		return
	}
	scenarios := []struct{ name, what string }{
		{"code", "a string of the code changed"},
		{"stamp", "only the version stamp changed"},
	}
	peers := []struct{ bench, tool, label string }{
		{"bsdiff", "bsdiff", "`bsdiff`"},
		{"xdelta3-9", "xdelta3", "`xdelta3 -e -9`"},
		{"zstd-patch-from-19", "zstd", "`zstd -19 --long=27 --patch-from`"},
	}
	const maxHeap = 64 << 20 // a unit applies a delta in at most this much heap
	same := func() string {
		if len(r.rows) > 0 && r.rows[len(r.rows)-1].Group == "ota" {
			return "same"
		}
		return repro
	}
	for _, sc := range scenarios {
		base := "BenchmarkDelta/" + sc.name + "/"
		ours, ok := set.get(base+"ota-bsdiff-zstd", "bytes")
		if !ok {
			continue
		}
		oursNs, _ := set.get(base+"ota-bsdiff-zstd", "ns/op")
		pct, _ := set.get(base+"ota-bsdiff-zstd", "%of-binary")
		before, _ := set.get(base+"ota-zstd-delta", "bytes")
		full, _ := set.get(base+"ota-full-zstd", "bytes")
		for _, p := range peers {
			row := Row{Group: "ota", Figure: fmt.Sprintf("OTA delta (bsdiff-zstd), linux/arm64 agent, %s (median of %d)", sc.what, runs[base+"ota-bsdiff-zstd"]),
				Ours: fmt.Sprintf("%s B (%.3f %% of the binary; zstd-delta %s B, full zstd %s B), made in %s", fmtInt(ours), pct, fmtInt(before), fmtInt(full), fmtDur(oursNs)),
				Goal: "— (none set)", Reproduce: same(), Values: map[string]float64{"bytes": ours, "ns": oursNs, "zstd-delta-bytes": before, "full-bytes": full}}
			if p.bench == "bsdiff" {
				row.Goal = "≤ bsdiff's size"
			}
			if why := r.need(p.tool); why != "" {
				row.Peer = p.label + ": not measured: " + why
				r.add(row)
				continue
			}
			pb, ok := set.get(base+p.bench, "bytes")
			if !ok {
				row.Peer = p.label + ": not measured: the benchmark did not report it (see " + r.logPath + ")"
				r.add(row)
				continue
			}
			pns, _ := set.get(base+p.bench, "ns/op")
			row.Peer = fmt.Sprintf("%s: %s B, %s", p.label, fmtInt(pb), fmtDur(pns))
			row.Ratio = ratioTimes(ours, pb) + " its size"
			if p.bench == "bsdiff" {
				row.Met = ptr(ours <= pb)
			}
			row.Values[p.bench+"-bytes"] = pb
			row.Values[p.bench+"-ns"] = pns
			r.add(row)
		}
		// Applying it on the unit.
		applyNs, ok := set.get(base+"ota-bsdiff-zstd-apply", "ns/op")
		if !ok {
			continue
		}
		heap, _ := set.get(base+"ota-bsdiff-zstd-apply", "peak-heap-B")
		row := Row{Group: "ota", Figure: fmt.Sprintf("OTA delta (bsdiff-zstd) applied, linux/arm64 agent, %s (median of %d)", sc.what, runs[base+"ota-bsdiff-zstd-apply"]),
			Ours: fmt.Sprintf("%s, peak heap ≤ %s (the base binary and what applying allocates)", fmtDur(applyNs), fmtMB(heap)),
			Goal: "peak heap ≤ 64 MiB", Met: ptr(heap <= maxHeap), Reproduce: same(),
			Values: map[string]float64{"ns": applyNs, "peak-heap-B": heap}}
		if pns, ok := set.get(base+"bspatch-apply", "ns/op"); ok {
			row.Peer = fmt.Sprintf("`bspatch`: %s", fmtDur(pns))
			row.Ratio = ratioTimes(applyNs, pns) + " its time"
			row.Values["bspatch-ns"] = pns
		} else if why := r.need("bsdiff"); why != "" {
			row.Peer = "`bspatch`: not measured: " + why
		} else {
			row.Peer = "`bspatch`: not measured: the benchmark did not report it (see " + r.logPath + ")"
		}
		r.add(row)
	}
}

// benchTelemetry: a simulated day of telemetry at the default settings
// against 1 KB of JSON a minute.
func (r *runner) benchTelemetry(ctx context.Context) {
	set, runs, repro, err := r.goBench(ctx, "./agent/", "^BenchmarkTelemetryBytesPerDay$", "1x", r.count)
	r.raw["agent/TelemetryBytesPerDay"] = set
	row := Row{Group: "telemetry", Figure: "Telemetry per day at the default settings (24 simulated hours), payload + MQTT", Goal: "≤ 500 000 B/day", Reproduce: repro}
	if err != nil {
		row.NotMeasured = err.Error()
		r.add(row)
		return
	}
	const b = "BenchmarkTelemetryBytesPerDay"
	mqtt, _ := set.get(b, "mqtt-B/day")
	msgs, _ := set.get(b, "msgs/day")
	wire, _ := set.get(b, "wire-B/day")
	naive, _ := set.get(b, "naive-mqtt-B/day")
	naiveWire, _ := set.get(b, "naive-wire-B/day")
	row.Figure += fmt.Sprintf(" (median of %d)", runs[b])
	row.Ours = fmt.Sprintf("%s B (%s messages; %s B with TLS and TCP/IP)", fmtInt(mqtt), fmtInt(msgs), fmtInt(wire))
	row.Peer = fmt.Sprintf("naive 1 KB of JSON a minute: %s B (%s B on the wire)", fmtInt(naive), fmtInt(naiveWire))
	row.Ratio = fmt.Sprintf("%.1f× smaller", naive/mqtt)
	row.Met = ptr(mqtt <= 500000)
	row.Values = map[string]float64{"mqtt-B/day": mqtt, "wire-B/day": wire, "msgs/day": msgs, "naive-mqtt-B/day": naive}
	r.add(row)
}

// benchCross: the static binaries' sizes from `make cross`, against the
// Motion daemon's binary and the shared libraries it loads.
func (r *runner) benchCross(ctx context.Context) {
	cmd := exec.CommandContext(ctx, "make", "cross")
	out, err := cmd.CombinedOutput()
	r.logf("$ make cross\n%s", out)
	row := Row{Group: "cross", Figure: "Agent binary, static (CGO_ENABLED=0, -s -w), linux/arm64 | armv7 | armv6", Goal: "— (none set)", Reproduce: "`make cross` (sizes of bin/cross/outpost-linux-*)"}
	if err != nil {
		row.NotMeasured = fmt.Sprintf("make cross failed: %v (see %s)", err, r.logPath)
		r.add(row)
		return
	}
	var parts []string
	row.Values = map[string]float64{}
	for _, a := range []string{"arm64", "armv7", "armv6"} {
		for _, b := range []string{"outpost", "outpostctl"} {
			fi, err := os.Stat(filepath.Join("bin", "cross", b+"-linux-"+a))
			if err != nil {
				continue
			}
			row.Values[b+"-"+a+"-bytes"] = float64(fi.Size())
			if b == "outpost" {
				parts = append(parts, fmtMB(float64(fi.Size())))
			}
		}
	}
	row.Ours = strings.Join(parts, " | ")
	ctl := row.Values["outpostctl-arm64-bytes"]
	row.Ours += fmt.Sprintf(" (outpostctl arm64: %s)", fmtMB(ctl))
	if why := r.need("motion"); why != "" {
		row.Peer = "not measured: " + why
	} else if bin, libs, n, err := dynamicSize(r.peers["motion"].Path); err == nil {
		row.Peer = fmt.Sprintf("Motion %s (Debian, %s, dynamic): %s binary + %s in %d shared libraries", r.peers["motion"].Version, hostArch(), fmtMB(bin), fmtMB(libs), n)
		if arm := row.Values["outpost-arm64-bytes"]; arm > 0 {
			row.Ratio = ratioTimes(arm, bin+libs) + " (arm64 vs Motion with its libraries)"
		}
		row.Values["motion-bytes"], row.Values["motion-libs-bytes"] = bin, libs
	} else {
		row.Peer = "not measured: " + err.Error()
	}
	r.add(row)
}

func hostArch() string {
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		return "host"
	}
	return strings.TrimSpace(string(out))
}

// dynamicSize is a binary's size and the total size of the shared
// libraries ldd says it loads.
func dynamicSize(path string) (bin, libs float64, n int, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, 0, err
	}
	out, err := exec.Command("ldd", path).Output()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("ldd %s: %v", path, err)
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		for i, w := range f {
			if w == "=>" && i+1 < len(f) && strings.HasPrefix(f[i+1], "/") {
				p, _ := filepath.EvalSymlinks(f[i+1])
				if seen[p] {
					continue
				}
				seen[p] = true
				if li, err := os.Stat(p); err == nil {
					libs += float64(li.Size())
					n++
				}
			}
		}
	}
	return float64(fi.Size()), libs, n, nil
}

// benchFleet: a thousand simulated units (outpost fleet-sim) against
// mosquitto: what the control room sees, with `outpostctl units` against
// its goal of two seconds.
func (r *runner) benchFleet(ctx context.Context) {
	const b = "BenchmarkFleet1000"
	if why := r.need("mosquitto"); why != "" {
		r.add(Row{Group: "fleet", Figure: "outpostctl units for 1000 units", Goal: "< 2 s",
			Reproduce: "go test -run '^$' -bench '^BenchmarkFleet1000$' -benchtime 1x ./cmd/outpostctl", NotMeasured: why})
		return
	}
	// One run: it takes half a minute, and the outpostctl timing in it is
	// already the median of three.
	set, runs, repro, err := r.goBench(ctx, "./cmd/outpostctl", "^BenchmarkFleet1000$", "1x", 1)
	r.raw["outpostctl/Fleet1000"] = set
	row := Row{Group: "fleet", Figure: "outpostctl units for 1000 simulated units reporting (outpost fleet-sim, telemetry every 10 s) and a demo unit, one mosquitto", Goal: "< 2 s", Reproduce: repro}
	if err != nil {
		row.NotMeasured = err.Error()
		r.add(row)
		return
	}
	secs, _ := set.get(b, "units-cmd-s")
	mb, _ := set.get(b, "units-cmd-MB")
	online, _ := set.get(b, "units-online")
	rate, _ := set.get(b, "telemetry-msgs/s")
	conn, _ := set.get(b, "s-to-connect")
	alone, _ := set.get(b, "pull-alone-Mbit/s")
	busy, _ := set.get(b, "pull-with-fleet-Mbit/s")
	row.Figure += fmt.Sprintf(" (%d run; outpostctl units the median of 3)", runs[b])
	row.Ours = fmt.Sprintf("%.2f s, %.0f MB peak; %.0f units online %.1f s after the start; %.0f telemetry messages/s through the broker", secs, mb, online, conn, rate)
	row.Peer = fmt.Sprintf("a clip pull from the demo unit meanwhile: %.0f Mbit/s, %.0f Mbit/s with no fleet (loopback)", busy, alone)
	// The fleet's cost to the control room's other work: a clip pull's
	// goodput with the fleet reporting against without it.
	row.Ratio = "—"
	if alone > 0 {
		row.Ratio = fmt.Sprintf("%.2f× the clip's goodput without the fleet", busy/alone)
	}
	row.Met = ptr(secs < 2)
	row.Values = map[string]float64{"units-cmd-s": secs, "units-cmd-MB": mb, "units-online": online, "telemetry-msgs/s": rate, "s-to-connect": conn, "pull-alone-Mbit/s": alone, "pull-with-fleet-Mbit/s": busy}
	r.add(row)
}
