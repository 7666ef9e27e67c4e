package footage_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// The crash test re-executes the test binary as a child that records until
// it is killed; TestMain sends it to crashChild.
const crashEnv = "FOOTAGE_CRASH_CHILD_DIR"

// crashKeyEnv, when set, holds the hex key the child encrypts with.
const crashKeyEnv = "FOOTAGE_CRASH_CHILD_KEY"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		return
	}
	code := m.Run()
	for _, d := range benchDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

func crashOpts() footage.Options {
	o := footage.DefaultOptions()
	o.SegmentDuration = 150 * time.Millisecond
	o.SegmentMaxSize = 256 << 10
	o.MaxFrameSize = 64 << 10
	o.MaxAge = 366 * 24 * time.Hour
	return o
}

// crashChild records frames of random sizes as fast as it can, syncing
// often, and writes to stdout "F seq crc" for each frame appended and
// "S seq" after each sync (every frame up to seq is then durable). It
// runs until killed.
func crashChild(dir string) {
	o := crashOpts()
	if k := os.Getenv(crashKeyEnv); k != "" {
		key, err := hex.DecodeString(k)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child: key:", err)
			os.Exit(2)
		}
		o.EncryptionKey = key
	}
	s, err := footage.Open(dir, o, nil, clock.Real{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(2)
	}
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	buf := make([]byte, 48<<10)
	for n := 0; ; n++ {
		p := buf[:100+rng.IntN(len(buf)-100)]
		for i := 0; i < len(p); i += 8 {
			p[i] = byte(rng.Uint32())
		}
		seq, err := s.Append(camera.Frame{Data: p, Codec: camera.MJPEG, Time: time.Now(), Width: 64, Height: 48}, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child: append:", err)
			os.Exit(2)
		}
		fmt.Fprintf(out, "F %d %d\n", seq, crc32.ChecksumIEEE(p))
		switch {
		case n%97 == 13:
			s.AppendEvent("motion", time.Now())
		case n%211 == 7:
			s.NoteClockStep(time.Duration(rng.IntN(10)+3)*time.Second, time.Now())
		}
		if n%4 == 3 {
			synced, err := s.Sync()
			if err != nil {
				fmt.Fprintln(os.Stderr, "child: sync:", err)
				os.Exit(2)
			}
			fmt.Fprintf(out, "S %d\n", synced)
			out.Flush()
		}
	}
}

// TestCrash kills a recording child at random moments, at least 200 times,
// and checks after each that every frame it reported synced is present and
// intact, and that recording continues with higher sequences.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test takes about 20 s; run without -short")
	}
	crashTest(t, 200, nil)
}

// TestCrashEncrypted is the crash test, shorter, with encryption on: the
// torn tails cut at recovery are then of sealed records.
func TestCrashEncrypted(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test starts 50 processes; run without -short")
	}
	crashTest(t, 50, testKey(4))
}

func crashTest(t *testing.T, cycles int, key []byte) {
	dir := t.TempDir()
	opts := crashOpts()
	opts.EncryptionKey = key
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	durable := map[uint64]uint32{} // every frame reported synced, ever
	var lastSeq uint64
	start := time.Now()
	killedMidWrite := 0
	var firstLine, reopen time.Duration // time children took to record, and reopening took
	for cycle := 0; cycle < cycles; cycle++ {
		if time.Since(start) > 55*time.Second {
			t.Fatalf("only %d crash cycles in 55 s", cycle)
		}
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		if key != nil {
			cmd.Env = append(cmd.Env, crashKeyEnv+"="+hex.EncodeToString(key))
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cs := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		frames := map[uint64]uint32{}
		var synced uint64
		var wg sync.WaitGroup
		recording := make(chan struct{})
		var once sync.Once
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				once.Do(func() { close(recording) })
				f := strings.Fields(sc.Text())
				if len(f) == 0 {
					continue
				}
				seq, _ := strconv.ParseUint(f[1], 10, 64)
				switch f[0] {
				case "F":
					c, _ := strconv.ParseUint(f[2], 10, 32)
					frames[seq] = uint32(c)
				case "S":
					synced = seq
				}
			}
		}()
		// Kill at a random moment: one time in five while it starts (and
		// recovers), otherwise while it records.
		delay := time.Duration(rng.IntN(40_000)) * time.Microsecond
		if cycle%5 != 0 {
			select {
			case <-recording:
				firstLine += time.Since(cs)
			case <-time.After(10 * time.Second):
				t.Fatalf("cycle %d: child recorded nothing in 10 s: %s", cycle, stderr.String())
			}
		} else {
			delay /= 10
		}
		time.Sleep(delay) // the moment of the crash: a random time, nothing to wait for
		cmd.Process.Kill()
		wg.Wait()
		werr := cmd.Wait()
		if ee, ok := werr.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
			t.Fatalf("cycle %d: child ended on its own (%v): %s", cycle, werr, stderr.String())
		}
		for seq, c := range frames {
			if seq <= lastSeq {
				t.Fatalf("cycle %d: sequence %d reused (previous run reached %d)", cycle, seq, lastSeq)
			}
			if seq <= synced {
				durable[seq] = c
			}
		}
		if len(frames) > 0 {
			killedMidWrite++
		}

		// Reopen (recovering) and check this run's durable frames.
		ro := time.Now()
		s, err := footage.Open(dir, opts, testLog(t), clock.Real{})
		if err != nil {
			t.Fatalf("cycle %d: reopen: %v", cycle, err)
		}
		if synced > 0 {
			lo := synced
			for seq := range frames {
				lo = min(lo, seq)
			}
			got := map[uint64]uint32{}
			if _, err := s.FramesBySeq(context.Background(), lo, synced, func(f footage.Frame) error {
				got[f.Seq] = crc32.ChecksumIEEE(f.Data)
				return nil
			}); err != nil {
				t.Fatalf("cycle %d: read back: %v", cycle, err)
			}
			for seq, c := range frames {
				if seq > synced {
					continue
				}
				if g, ok := got[seq]; !ok || g != c {
					t.Fatalf("cycle %d: frame %d reported synced: present %v, same content %v", cycle, seq, ok, g == c)
				}
			}
		}
		for seq := range frames {
			lastSeq = max(lastSeq, seq)
		}
		reopen += time.Since(ro)
		if err := s.Close(); err != nil {
			t.Fatalf("cycle %d: close: %v", cycle, err)
		}
	}

	// At the end: every frame ever reported synced is there and intact,
	// the store verifies clean, and recording goes on.
	s := openStore(t, dir, opts, clock.Real{})
	seen := 0
	if _, err := s.FramesBySeq(context.Background(), 0, ^uint64(0), func(f footage.Frame) error {
		if c, ok := durable[f.Seq]; ok {
			if crc32.ChecksumIEEE(f.Data) != c {
				return fmt.Errorf("frame %d has other content", f.Seq)
			}
			seen++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seen != len(durable) {
		t.Fatalf("%d of %d synced frames found at the end", seen, len(durable))
	}
	rep, err := s.Verify(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("verify at the end: %v %+v", err, rep.Problems)
	}
	// Every segment is sealed and in the chain, which was cut and
	// re-linked after each crash and still holds together.
	if rep.Chain.Links != rep.Segments || rep.Chain.Unchained != 0 {
		t.Fatalf("chain at the end: %d links for %d segments: %+v", rep.Chain.Links, rep.Segments, rep.Chain)
	}
	seq, err := s.Append(frame(time.Now(), testPics[0]), 0)
	if err != nil || seq <= lastSeq {
		t.Fatalf("append after the crashes: seq %d (last %d), %v", seq, lastSeq, err)
	}
	relinked := 0
	for _, n := range rep.Notes {
		if strings.Contains(n, "linked into the chain when the store was reopened") {
			relinked++
		}
	}
	t.Logf("%d crashes in %s (children started recording in %s, reopening and checking took %s); %d synced frames checked; %d children killed while recording; %d segments, %d linked after a crash",
		cycles, time.Since(start).Round(time.Millisecond), firstLine.Round(time.Millisecond), reopen.Round(time.Millisecond), len(durable), killedMidWrite, rep.Segments, relinked)
}
