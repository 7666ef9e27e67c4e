package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// benchMask: blanking privacy masks in a noisy 1080p frame in the
// compressed domain against decoding it with image/jpeg, filling the
// masked area and encoding it again; and the size of the masked frame
// with each choice of Huffman tables.
func (r *runner) benchMask(ctx context.Context) {
	const figure = "Privacy masks blanked in a noisy 1080p frame, the worst case (878 KB of noise: a rectangle and a polygon, ~1/5 of the picture)"
	set, runs, repro, err := r.goBench(ctx, "./footage/mask/", "^Benchmark(Mask1080p|DecodeFillEncode1080p)$", r.benchtime("2s", "300ms"), r.count)
	r.raw["mask/Mask1080p"] = set
	if err != nil {
		r.add(Row{Group: "mask", Figure: figure, Goal: "≤ 8 ms a frame, ≥ 6× faster", Reproduce: repro, NotMeasured: err.Error()})
		return
	}
	ours, _ := set.get("BenchmarkMask1080p/optimal", "ns/op")
	allocs, _ := set.get("BenchmarkMask1080p/optimal", "allocs/op")
	base, _ := set.get("BenchmarkDecodeFillEncode1080p", "ns/op")
	n := runs["BenchmarkMask1080p/optimal"]
	ratio := base / ours
	r.add(Row{Group: "mask", Figure: fmt.Sprintf("%s (median of %d)", figure, n),
		Ours: fmt.Sprintf("%s, %.0f allocs", fmtDur(ours), allocs), Peer: fmt.Sprintf("`image/jpeg` decode + fill + encode: %s", fmtDur(base)),
		Ratio: fmt.Sprintf("%.1f× faster", ratio), Goal: "≤ 8 ms a frame, ≥ 6× faster", Met: ptr(ours <= 8e6 && ratio >= 6),
		Reproduce: "`" + repro + "`", Values: map[string]float64{"ns": ours, "baseline-ns": base}})

	// The same on a frame as a camera sends it: the simulated street the
	// DC-decode row reads.
	if jpg, err := filepath.Abs(filepath.Join(r.outDir, "frame1080.jpg")); err == nil {
		fig := "Privacy masks blanked in the simulated camera's 1080p street (the DC-decode row's frame, %d KB), same masks"
		size, err := simFrame1080(jpg)
		fset, fruns, frepro, ferr := r.goBench(ctx, "./footage/mask/", "^Benchmark(MaskFile|DecodeFillEncodeFile)$", r.benchtime("2s", "300ms"), r.count, "OUTPOST_BENCH_JPEG="+jpg)
		frepro = strings.Replace(frepro, jpg, "FRAME.jpg", 1)
		r.raw["mask/MaskFile"] = fset
		switch {
		case err != nil || ferr != nil:
			r.add(Row{Group: "mask", Figure: fmt.Sprintf(fig, size/1000), Goal: "≤ 8 ms a frame, ≥ 6× faster", Reproduce: frepro, NotMeasured: fmt.Sprint(errors.Join(err, ferr))})
		default:
			ours, _ := fset.get("BenchmarkMaskFile", "ns/op")
			base, _ := fset.get("BenchmarkDecodeFillEncodeFile", "ns/op")
			ratio := base / ours
			r.add(Row{Group: "mask", Figure: fmt.Sprintf(fig+" (median of %d)", size/1000, fruns["BenchmarkMaskFile"]),
				Ours: fmtDur(ours), Peer: fmt.Sprintf("`image/jpeg` decode + fill + encode: %s", fmtDur(base)),
				Ratio: fmt.Sprintf("%.1f× faster", ratio), Goal: "≤ 8 ms a frame, ≥ 6× faster", Met: ptr(ours <= 8e6 && ratio >= 6),
				Reproduce: "`" + frepro + "` (FRAME.jpg: `go run ./scripts/bench -only mask` writes bin/bench/frame1080.jpg)",
				Values:    map[string]float64{"ns": ours, "baseline-ns": base, "bytes": float64(size)}})
		}
	}

	sizes := map[string]float64{}
	for _, h := range []string{"optimal", "own", "standard"} {
		sizes[h], _ = set.get("BenchmarkMask1080p/"+h, "out/in")
	}
	reenc, _ := set.get("BenchmarkDecodeFillEncode1080p", "out/in")
	r.add(Row{Group: "mask", Figure: "Size of the masked frame against the original, by Huffman tables (we use optimal tables built from the frame's own symbol counts)",
		Ours: fmt.Sprintf("optimal %.3f; the frame's own %.3f; standard %.3f", sizes["optimal"], sizes["own"], sizes["standard"]),
		Peer: fmt.Sprintf("`image/jpeg` re-encoded: %.3f", reenc), Ratio: ratioTimes(sizes["optimal"], reenc),
		Goal: "no larger than re-encoding", Met: ptr(sizes["optimal"] <= reenc), Reproduce: "`" + repro + "`",
		Values: map[string]float64{"optimal": sizes["optimal"], "own": sizes["own"], "standard": sizes["standard"], "reencoded": reenc}})
}
