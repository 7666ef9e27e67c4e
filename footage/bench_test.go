package footage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"hash/crc32"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/footage/footagetest"
	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// frame1080 is the size of a 1080p MJPEG frame from a typical camera.
const frame1080 = 175 << 10

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAppend appends 175 KiB frames at 25 fps with the default sync
// policy (an fdatasync per second of footage, i.e. every 25 frames), and,
// as the baseline in the same run, dd writes the same bytes to the same
// file system with conv=fdatasync.
func BenchmarkAppend(b *testing.B) {
	data := make([]byte, frame1080)
	rand.NewChaCha8([32]byte{7}).Read(data)
	b.Run("store", func(b *testing.B) {
		s, err := footage.Open(b.TempDir(), footage.DefaultOptions(), nil, clock.NewFake(t0))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.SetBytes(frame1080)
		b.ReportAllocs()
		cpu := cpuTime()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			f := camera.Frame{Data: data, Codec: camera.MJPEG, Time: t0.Add(time.Duration(i) * 40 * time.Millisecond), Width: 1920, Height: 1080}
			if _, err := s.Append(f, 0); err != nil {
				b.Fatal(err)
			}
			if i%25 == 24 {
				if _, err := s.Sync(); err != nil {
					b.Fatal(err)
				}
			}
		}
		if _, err := s.Sync(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/frame")
	})
	b.Run("dd", func(b *testing.B) {
		dd, err := exec.LookPath("dd")
		if err != nil {
			b.Skip("dd not installed")
		}
		out := filepath.Join(b.TempDir(), "dd.out")
		b.SetBytes(frame1080)
		b.ResetTimer()
		cmd := exec.Command(dd, "if=/dev/zero", "of="+out, "bs="+strconv.Itoa(frame1080), "count="+strconv.Itoa(b.N), "conv=fdatasync", "status=none")
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("dd: %v: %s", err, msg)
		}
		b.StopTimer()
		ps := cmd.ProcessState
		b.ReportMetric(float64((ps.UserTime()+ps.SystemTime()).Microseconds())/float64(b.N), "cpu-µs/frame")
	})
}

// noisyJPEG encodes a w×h picture with enough noise to come out near the
// size of a real camera's frame.
func noisyJPEGn(w, h, seed, quality, noise int) []byte {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Y[y*img.YStride+x] = uint8((x/8+y/8)%200) + uint8(rng.IntN(noise))
		}
	}
	for i := range img.Cb {
		img.Cb[i], img.Cr[i] = 128+uint8(rng.IntN(8)), 128+uint8(rng.IntN(8))
	}
	var buf bytes.Buffer
	jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality})
	return buf.Bytes()
}

var exportBench struct {
	once  sync.Once
	dir   string
	bytes int64
	err   error
}

// exportFixture is a minute of 1080p at 25 fps, both in a store and as a
// raw MJPEG stream for ffmpeg; built once per run.
func exportFixture(b *testing.B) (string, int64) {
	exportBench.once.Do(func() {
		dir, err := os.MkdirTemp("", "footage-bench-export-")
		if err != nil {
			exportBench.err = err
			return
		}
		benchDirs = append(benchDirs, dir)
		var pics [][]byte
		for i := 0; i < 10; i++ {
			pics = append(pics, noisyJPEGn(1920, 1080, i, 73, 16))
		}
		s, err := footage.Open(filepath.Join(dir, "store"), footage.DefaultOptions(), nil, clock.NewFake(t0))
		if err != nil {
			exportBench.err = err
			return
		}
		raw, err := os.Create(filepath.Join(dir, "in.mjpeg"))
		if err != nil {
			exportBench.err = err
			return
		}
		for _, f := range footagetest.Frames(t0, 25, 1500, pics, 1920, 1080) {
			if _, err := s.Append(f, 0); err != nil {
				exportBench.err = err
				return
			}
			raw.Write(f.Data)
			exportBench.bytes += int64(len(f.Data))
		}
		raw.Close()
		exportBench.err = s.Close()
		exportBench.dir = dir
		// Let the fixture reach the disk before timing, so that its
		// writeback does not slow what is measured.
		syscall.Sync()
	})
	if exportBench.err != nil {
		b.Fatal(exportBench.err)
	}
	return exportBench.dir, exportBench.bytes
}

// benchDirs are removed by TestMain after the run.
var benchDirs []string

// BenchmarkExport exports 60 s of 1080p25 (1500 frames of ~175 KiB) to an
// MP4 file, and, as the baseline in the same run, ffmpeg remuxes the same
// frames from a raw MJPEG stream with -c copy.
func BenchmarkExport(b *testing.B) {
	dir, size := exportFixture(b)
	b.Logf("fixture: 1500 frames, %.1f MiB, %.0f KiB a frame", float64(size)/(1<<20), float64(size)/1500/1024)
	b.Run("store", func(b *testing.B) {
		o := footage.DefaultOptions()
		o.ReadOnly = true
		s, err := footage.Open(filepath.Join(dir, "store"), o, nil, clock.NewFake(t0))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		out := filepath.Join(b.TempDir(), "out.mp4")
		b.SetBytes(size)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			f, err := os.Create(out)
			if err != nil {
				b.Fatal(err)
			}
			info, err := s.Export(context.Background(), f, t0, t0.Add(time.Minute))
			if err != nil || info.Frames != 1500 {
				b.Fatalf("export: %+v %v", info, err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ffmpeg", func(b *testing.B) {
		ff, err := exec.LookPath("ffmpeg")
		if err != nil {
			b.Fatal("ffmpeg is not installed: run `make test`, which installs it")
		}
		out := filepath.Join(b.TempDir(), "out.mp4")
		b.SetBytes(size)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			cmd := exec.Command(ff, "-v", "error", "-y", "-f", "mjpeg", "-framerate", "25", "-i", filepath.Join(dir, "in.mjpeg"), "-c", "copy", out)
			if msg, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("ffmpeg: %v: %s", err, msg)
			}
		}
	})
}

var openBench struct {
	once sync.Once
	dir  string
}

// BenchmarkOpen opens a store of 28 days of 60 s segments (40,320 files):
// with its index file (the normal case), without it (every footer read),
// and, as the floor, just listing the directory.
func BenchmarkOpen(b *testing.B) {
	openBench.once.Do(func() {
		dir, err := os.MkdirTemp("", "footage-bench-open-")
		if err != nil {
			b.Fatal(err)
		}
		benchDirs = append(benchDirs, dir)
		buildManySegments(b, dir, segments28Days)
		openBench.dir = dir
	})
	dir := openBench.dir
	open := func(b *testing.B) {
		s, err := footage.Open(dir, footage.DefaultOptions(), nil, clock.NewFake(t0))
		if err != nil {
			b.Fatal(err)
		}
		if n := s.Stats().Segments; n != segments28Days {
			b.Fatalf("%d segments", n)
		}
		s.Close()
	}
	b.Run("index", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			open(b)
		}
	})
	b.Run("footers", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			os.Remove(filepath.Join(dir, "index.log"))
			b.StartTimer()
			open(b)
		}
	})
	b.Run("readdir", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			ents, err := os.ReadDir(dir)
			if err != nil || len(ents) < segments28Days {
				b.Fatal(len(ents), err)
			}
		}
	})
}

// BenchmarkSealHash is the cost of the chain's SHA-256 of each segment,
// paid as frames are written (sealing then adds only the footer): per
// 175 KiB frame, against the baseline of the CRC-32C the store already
// computes over the same bytes.
func BenchmarkSealHash(b *testing.B) {
	data := make([]byte, frame1080)
	rand.NewChaCha8([32]byte{7}).Read(data)
	b.Run("sha256", func(b *testing.B) {
		h := sha256.New()
		b.SetBytes(frame1080)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			h.Write(data)
		}
		h.Sum(nil)
	})
	b.Run("crc32c", func(b *testing.B) {
		tab := crc32.MakeTable(crc32.Castagnoli)
		var c uint32
		b.SetBytes(frame1080)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			c = crc32.Update(c, tab, data)
		}
		_ = c
	})
}
