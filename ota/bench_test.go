package ota

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
			b.Run("ota-zstd-delta-apply", func(b *testing.B) {
				m := Manifest{Size: int64(len(newBin)), SHA256: sha256Hex(newBin), Encoding: EncodingZstdDelta, DeltaBaseSHA256: sha256Hex(oldBin)}
				b.SetBytes(int64(len(newBin)))
				b.ReportAllocs()
				for b.Loop() {
					if err := Decode(context.Background(), m, bytes.NewReader(delta), oldBin, io.Discard); err != nil {
						b.Fatal(err)
					}
				}
			})
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
		})
	}
}
