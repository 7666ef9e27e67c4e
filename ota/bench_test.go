package ota

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// buildAgent builds cmd/outpost for linux/arm64 as the Makefile does, with
// the given version stamp and, when overlay is set, a source file
// replaced (a small code change).
func buildAgent(b *testing.B, dir, name, stamp string, overlay map[string]string) []byte {
	b.Helper()
	out := filepath.Join(dir, name)
	pkg := "github.com/outpost-cctv/outpost/internal/version"
	args := []string{"build", "-trimpath", "-o", out,
		"-ldflags", "-s -w -X " + pkg + ".Version=" + stamp + " -X " + pkg + ".Commit=" + stamp + "0000 -X " + pkg + ".Date=2026-11-25T12:00:00Z"}
	if overlay != nil {
		js := `{"Replace":{`
		var parts []string
		for from, to := range overlay {
			parts = append(parts, `"`+from+`":"`+to+`"`)
		}
		js += strings.Join(parts, ",") + `}}`
		ov := filepath.Join(dir, name+".overlay.json")
		if err := os.WriteFile(ov, []byte(js), 0o644); err != nil {
			b.Fatal(err)
		}
		args = append(args, "-overlay", ov)
	}
	args = append(args, "../cmd/outpost")
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, msg)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	return bin
}

// agentPair returns two builds of the agent: v1.2.3, and v1.2.4 either
// with only its stamp changed or with a string of the code changed too.
func agentPair(b *testing.B, codeChange bool) (oldBin, newBin []byte, dir string) {
	b.Helper()
	if testing.Short() {
		b.Skip("builds the agent twice")
	}
	dir = b.TempDir()
	oldBin = buildAgent(b, dir, "outpost-old", "v1.2.3", nil)
	var ov map[string]string
	if codeChange {
		src, err := os.ReadFile("../internal/version/version.go")
		if err != nil {
			b.Fatal(err)
		}
		changed := strings.Replace(string(src), "(commit %s, built %s)", "(commit %s, built on %s)", 1)
		if changed == string(src) {
			b.Fatal("version.go no longer has the string the code change edits")
		}
		p := filepath.Join(dir, "version.go")
		os.WriteFile(p, []byte(changed), 0o644)
		abs, _ := filepath.Abs("../internal/version/version.go")
		ov = map[string]string{abs: p}
	}
	newBin = buildAgent(b, dir, "outpost-new", "v1.2.4", ov)
	return oldBin, newBin, dir
}

// BenchmarkDelta measures the size ("bytes") and the time of a delta
// between two real builds of the agent, against full zstd and the usual
// binary diff tools when they are installed.
func BenchmarkDelta(b *testing.B) {
	for _, sc := range []struct {
		name string
		code bool
	}{{"stamp", false}, {"code", true}} {
		b.Run(sc.name, func(b *testing.B) {
			oldBin, newBin, dir := agentPair(b, sc.code)
			b.Logf("%s: old %d bytes, new %d bytes", sc.name, len(oldBin), len(newBin))
			oldPath, newPath := filepath.Join(dir, "outpost-old"), filepath.Join(dir, "outpost-new")
			run := func(name string, f func() (int, error)) {
				b.Run(name, func(b *testing.B) {
					b.SetBytes(int64(len(newBin)))
					b.ReportAllocs()
					var n int
					for b.Loop() {
						var err error
						if n, err = f(); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(n), "bytes")
					b.ReportMetric(100*float64(n)/float64(len(newBin)), "%of-binary")
				})
			}
			run("ota-full-zstd", func() (int, error) {
				p, err := EncodeFull(newBin)
				return len(p), err
			})
			var delta []byte
			run("ota-zstd-delta", func() (int, error) {
				var err error
				delta, err = EncodeDelta(oldBin, newBin)
				return len(delta), err
			})
			var bsd []byte
			run("ota-bsdiff-zstd", func() (int, error) {
				var err error
				bsd, err = EncodeBsdiff(oldBin, newBin)
				return len(bsd), err
			})
			apply := func(name string, m Manifest, payload []byte) {
				b.Run(name, func(b *testing.B) {
					b.SetBytes(int64(len(newBin)))
					b.ReportAllocs()
					var before, after runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&before)
					for b.Loop() {
						if err := Decode(context.Background(), m, bytes.NewReader(payload), oldBin, io.Discard); err != nil {
							b.Fatal(err)
						}
					}
					runtime.ReadMemStats(&after)
					// What a unit holds while applying: the base
					// binary, and at most what the apply allocates.
					alloc := float64(after.TotalAlloc-before.TotalAlloc) / float64(b.N)
					b.ReportMetric(float64(len(oldBin))+alloc, "peak-heap-B")
				})
			}
			apply("ota-zstd-delta-apply", Manifest{Size: int64(len(newBin)), SHA256: sha256Hex(newBin), Encoding: EncodingZstdDelta, DeltaBaseSHA256: sha256Hex(oldBin)}, delta)
			apply("ota-bsdiff-zstd-apply", bsdiffManifest(oldBin, newBin), bsd)
			// The variants the layout was chosen from, on the same
			// bsdiff streams: sizes only.
			d := diffBsdiff(oldBin, newBin)
			for _, v := range deltaVariants {
				run("variant-"+v.name, func() (int, error) { return v.size(b, oldBin, d), nil })
			}
			peer := func(name, tool string, args ...string) {
				if _, err := exec.LookPath(tool); err != nil {
					b.Logf("%s not installed: %s skipped", tool, name)
					return
				}
				out := filepath.Join(dir, name+".patch")
				run(name, func() (int, error) {
					os.Remove(out)
					cmd := exec.Command(tool, append(args, out)...)
					if msg, err := cmd.CombinedOutput(); err != nil {
						b.Fatalf("%s: %v\n%s", tool, err, msg)
					}
					fi, err := os.Stat(out)
					if err != nil {
						return 0, err
					}
					return int(fi.Size()), nil
				})
			}
			peer("zstd-patch-from-19", "zstd", "-q", "-19", "--long=27", "--patch-from="+oldPath, newPath, "-o")
			peer("bsdiff", "bsdiff", oldPath, newPath)
			peer("xdelta3-9", "xdelta3", "-e", "-9", "-f", "-s", oldPath, newPath)
			if _, err := exec.LookPath("bspatch"); err == nil {
				if _, err := os.Stat(filepath.Join(dir, "bsdiff.patch")); err == nil {
					b.Run("bspatch-apply", func(b *testing.B) {
						b.SetBytes(int64(len(newBin)))
						out := filepath.Join(dir, "bspatch.out")
						for b.Loop() {
							cmd := exec.Command("bspatch", oldPath, out, filepath.Join(dir, "bsdiff.patch"))
							if msg, err := cmd.CombinedOutput(); err != nil {
								b.Fatalf("bspatch: %v\n%s", err, msg)
							}
						}
					})
				}
			}
		})
	}
}

// deltaVariants are the layouts of a bsdiff delta that were measured
// against the one EncodeBsdiff writes ("chosen"): the classic three
// streams each compressed with zstd ("unsplit"), the diff stream split
// with every run placed by its distance in 4-byte words ("no-candidates")
// or in bytes ("byte-gaps"), the extra stream compressed with the base
// binary as a dictionary ("extra-dict", which would cost the unit a window
// as large as the base), and the chosen layout at zstd's second-best level
// ("better").
var deltaVariants = []struct {
	name string
	size func(b *testing.B, base []byte, d deltaStreams) int
}{
	{"unsplit", func(b *testing.B, _ []byte, d deltaStreams) int {
		return 1 + 3 + zsize(b, d.ctrl, zstd.SpeedBestCompression, nil) + zsize(b, d.diff, zstd.SpeedBestCompression, nil) + zsize(b, d.extra, zstd.SpeedBestCompression, nil)
	}},
	{"chosen", func(b *testing.B, base []byte, d deltaStreams) int {
		set, g, s, v := chosen(b, base, d)
		return len(set) + splitSize(b, d, g, s, v, zstd.SpeedBestCompression, nil)
	}},
	{"no-candidates", func(b *testing.B, _ []byte, d deltaStreams) int {
		g, s, v := splitDiff(d.diff, nil, nil)
		return splitSize(b, d, g, s, v, zstd.SpeedBestCompression, nil)
	}},
	{"byte-gaps", func(b *testing.B, _ []byte, d deltaStreams) int {
		g, s, v := splitDiffBytes(d.diff)
		return splitSize(b, d, g, s, v, zstd.SpeedBestCompression, nil)
	}},
	{"extra-dict", func(b *testing.B, base []byte, d deltaStreams) int {
		set, g, s, v := chosen(b, base, d)
		return len(set) + splitSize(b, d, g, s, v, zstd.SpeedBestCompression, base)
	}},
	{"better", func(b *testing.B, base []byte, d deltaStreams) int {
		set, g, s, v := chosen(b, base, d)
		return len(set) + splitSize(b, d, g, s, v, zstd.SpeedBetterCompression, nil)
	}},
}

func chosen(b *testing.B, base []byte, d deltaStreams) (set, gaps, shapes, values []byte) {
	enc, err := newStreamEncoder()
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	return chooseCandidates(enc, d, base)
}

// splitSize is the size of a payload of d with the diff stream split into
// gaps, shapes and values, its streams compressed at level, the extra
// stream against dict when it is set.
func splitSize(b *testing.B, d deltaStreams, gaps, shapes, values []byte, level zstd.EncoderLevel, dict []byte) int {
	n := 2 + 5
	for _, s := range [][]byte{d.ctrl, gaps, shapes, values} {
		n += zsize(b, s, level, nil)
	}
	return n + zsize(b, d.extra, level, dict)
}

// splitDiffBytes is splitDiff with gaps counted in bytes, from the end of
// the previous run, and shapes holding the run's length alone.
func splitDiffBytes(diff []byte) (gaps, shapes, values []byte) {
	prevEnd := 0
	for i := 0; i < len(diff); {
		if diff[i] == 0 {
			i++
			continue
		}
		start := i
		for i < len(diff) && diff[i] != 0 {
			i++
		}
		gaps = binary.AppendUvarint(gaps, uint64(start-prevEnd))
		shapes = binary.AppendUvarint(shapes, uint64(i-start-1))
		values = append(values, diff[start:i]...)
		prevEnd = i
	}
	return gaps, shapes, values
}

// zsize is the size of s compressed as packBsdiff does, at level, with
// dict as a raw dictionary when it is set.
func zsize(b *testing.B, s []byte, level zstd.EncoderLevel, dict []byte) int {
	if len(s) == 0 {
		return 0
	}
	opts := []zstd.EOption{zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false), zstd.WithWindowSize(bsdiffEncWindow)}
	if dict != nil {
		opts = append(opts, zstd.WithWindowSize(windowFor(len(s), len(dict))), zstd.WithEncoderDictRaw(dictID, dict))
	}
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, opts...)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := enc.Write(s); err != nil {
		b.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Len()
}
