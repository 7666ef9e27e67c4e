package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent"
	"github.com/outpost-cctv/outpost/agent/identity"
	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/footage/footagetest"
	"github.com/outpost-cctv/outpost/internal/clock"
)

var ft0 = time.Date(2025, 3, 4, 3, 12, 0, 0, time.UTC)

// footageData makes a data directory holding 30 s of footage at 25 fps
// from ft0, and returns it.
func footageData(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	s, err := footage.Open(footage.Dir(data), footage.DefaultOptions(), nil, clock.NewFake(ft0))
	if err != nil {
		t.Fatal(err)
	}
	pics := [][]byte{footagetest.JPEG(160, 120, 1, 80), footagetest.JPEG(160, 120, 2, 80)}
	for _, f := range footagetest.Frames(ft0, 25, 750, pics, 160, 120) {
		if _, err := s.Append(f, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddHold(ft0, ft0.Add(5*time.Second), "incident 42", "PC Smith"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return data
}

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, args)
	return code, out.String(), errb.String()
}

func ffprobeClip(t *testing.T, path string) (frames int, duration float64) {
	t.Helper()
	bin, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatal("ffprobe is not installed, and exported clips must be checked with it: `make test` installs it (scripts/test-deps.sh)")
	}
	b, err := exec.Command(bin, "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames:format=duration", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var r struct {
		Streams []struct {
			N string `json:"nb_read_frames"`
		} `json:"streams"`
		Format struct {
			D string `json:"duration"`
		} `json:"format"`
	}
	json.Unmarshal(b, &r)
	if len(r.Streams) != 1 {
		t.Fatalf("ffprobe: %s", b)
	}
	frames, _ = strconv.Atoi(r.Streams[0].N)
	duration, _ = strconv.ParseFloat(r.Format.D, 64)
	return frames, duration
}

func TestFootageLs(t *testing.T) {
	data := footageData(t)
	code, out, errs := run(t, "footage", "ls", "--data", data)
	if code != agent.ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"1 segment,", "0000000000000001.seg", "sealed,held", "holds: 1", `"incident 42" by "PC Smith"`} {
		if !strings.Contains(out, want) {
			t.Errorf("ls output lacks %q:\n%s", want, out)
		}
	}
}

func TestFootageExport(t *testing.T) {
	data := footageData(t)
	dir := t.TempDir()
	cases := []struct {
		name   string
		args   []string
		code   int
		frames int
	}{
		{"last 20s", []string{"--last", "20s"}, agent.ExitOK, 500},
		{"from to RFC 3339", []string{"--from", ft0.Add(10 * time.Second).Format(time.RFC3339), "--to", ft0.Add(12 * time.Second).Format(time.RFC3339)}, agent.ExitOK, 50},
		{"from to local", []string{"--from", ft0.Local().Format("2006-01-02 15:04:05"), "--to", ft0.Add(time.Second).Local().Format("2006-01-02 15:04:05")}, agent.ExitOK, 25},
		{"no footage", []string{"--from", ft0.Add(time.Hour).Format(time.RFC3339), "--to", ft0.Add(2 * time.Hour).Format(time.RFC3339)}, agent.ExitNoFootage, 0},
		{"both forms", []string{"--last", "1m", "--from", ft0.Format(time.RFC3339)}, agent.ExitUsage, 0},
		{"bad time", []string{"--from", "yesterday", "--to", "today"}, agent.ExitUsage, 0},
		{"backwards", []string{"--from", ft0.Add(time.Second).Format(time.RFC3339), "--to", ft0.Format(time.RFC3339)}, agent.ExitUsage, 0},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, "clip"+strconv.Itoa(i)+".mp4")
			args := append([]string{"footage", "export", "--data", data, "-o", out}, c.args...)
			code, stdout, errs := run(t, args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d: %s%s", code, c.code, stdout, errs)
			}
			_, statErr := os.Stat(out)
			if c.code != agent.ExitOK {
				if statErr == nil {
					t.Fatal("a file was written for a failed export")
				}
				return
			}
			if !strings.Contains(stdout, "sha256 ") {
				t.Errorf("no hash in %q", stdout)
			}
			frames, dur := ffprobeClip(t, out)
			if d := frames - c.frames; d < -1 || d > 1 {
				t.Errorf("ffprobe: %d frames, want %d", frames, c.frames)
			}
			if want := float64(c.frames) / 25; dur < want-0.04 || dur > want+0.04 {
				t.Errorf("ffprobe: %.3f s, want %.3f s", dur, want)
			}
		})
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestFootageSnapshot(t *testing.T) {
	data := footageData(t)
	out := filepath.Join(t.TempDir(), "snap.jpg")
	code, stdout, errs := run(t, "footage", "snapshot", "--data", data, "--at", ft0.Add(3*time.Second+10*time.Millisecond).Format(time.RFC3339Nano), "-o", out)
	if code != agent.ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	b, err := os.ReadFile(out)
	if err != nil || len(b) < 4 || b[0] != 0xff || b[1] != 0xd8 {
		t.Fatalf("snapshot is not a JPEG (%v)", err)
	}
	if !strings.Contains(stdout, "frame 76 ") { // 3 s at 25 fps is the 76th frame
		t.Errorf("snapshot output %q", stdout)
	}
	if code, _, _ := run(t, "footage", "snapshot", "--data", data, "--at", ft0.Add(time.Hour).Format(time.RFC3339), "-o", out+"2"); code != agent.ExitNoFootage {
		t.Fatalf("snapshot of a time with no footage: exit %d", code)
	}
}

func TestFootageVerify(t *testing.T) {
	data := footageData(t)
	if code, out, errs := run(t, "footage", "verify", "--data", data); code != agent.ExitOK || !strings.Contains(out, "clean") {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}

	// A store left by a crash: the segment being written has a torn
	// record at its end. verify recovers it and reports it clean.
	crashed := t.TempDir()
	s, err := footage.Open(footage.Dir(crashed), footage.DefaultOptions(), nil, clock.NewFake(ft0))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range footagetest.Frames(ft0, 25, 10, [][]byte{footagetest.JPEG(64, 48, 1, 80)}, 64, 48) {
		s.Append(f, 0)
	}
	s.Sync()
	segs, _ := filepath.Glob(filepath.Join(footage.Dir(crashed), "*.seg"))
	b, _ := os.ReadFile(segs[0])
	copyDir := t.TempDir()
	os.MkdirAll(footage.Dir(copyDir), 0o755)
	os.WriteFile(filepath.Join(footage.Dir(copyDir), filepath.Base(segs[0])), append(b, b[40:300]...), 0o644)
	s.Close()
	code, out, errs := run(t, "footage", "verify", "--data", copyDir)
	if code != agent.ExitOK || !strings.Contains(out, "clean (recovered)") || !strings.Contains(out, "torn tail") {
		t.Fatalf("verify of a crashed store: exit %d: %s%s", code, out, errs)
	}

	// A bit flipped in a sealed segment: exit 1 with a report.
	segs, _ = filepath.Glob(filepath.Join(footage.Dir(data), "*.seg"))
	b, _ = os.ReadFile(segs[0])
	b[100000] ^= 0x20
	os.WriteFile(segs[0], b, 0o644)
	code, out, _ = run(t, "footage", "verify", "--data", data)
	if code != agent.ExitFailure || !strings.Contains(out, "DAMAGED "+filepath.Base(segs[0])) {
		t.Fatalf("verify of a damaged store: exit %d: %s", code, out)
	}
}

func TestFootageUsage(t *testing.T) {
	for _, args := range [][]string{{"footage"}, {"footage", "nope"}, {"footage", "export", "--data", "x"}, {"footage", "ls", "extra"}} {
		if code, _, _ := run(t, args...); code != agent.ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, agent.ExitUsage)
		}
	}
	if code, _, errs := run(t, "footage", "ls", "--data", filepath.Join(t.TempDir(), "missing")); code != agent.ExitFailure || !strings.Contains(errs, "data directory") {
		t.Errorf("ls of a missing directory: exit %d: %s", code, errs)
	}
}

// chainedData makes a data directory with an evidence key and 30 s of
// footage in 5 s segments whose chain heads it signed.
func chainedData(t *testing.T) (string, *identity.Key) {
	t.Helper()
	data := t.TempDir()
	key, _, err := identity.LoadOrCreate(data)
	if err != nil {
		t.Fatal(err)
	}
	o := footage.DefaultOptions()
	o.SegmentDuration = 5 * time.Second
	o.Signer = key
	s, err := footage.Open(footage.Dir(data), o, nil, clock.NewFake(ft0))
	if err != nil {
		t.Fatal(err)
	}
	pics := [][]byte{footagetest.JPEG(160, 120, 1, 80), footagetest.JPEG(160, 120, 2, 80)}
	for _, f := range footagetest.Frames(ft0, 25, 750, pics, 160, 120) {
		if _, err := s.Append(f, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return data, key
}

func TestFootageVerifyChain(t *testing.T) {
	data, key := chainedData(t)
	other := footagetest.NewSigner(9)
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unit key from the data directory", nil, agent.ExitOK, []string{"chain: 6 sealed segments checked, chain intact from 0000000000000001.seg to ", "heads: 1 signed by key outpost-evidence-ed25519 ", "clean"}},
		{"key given", []string{"--pubkey", key.PublicKeyString()}, agent.ExitOK, []string{"heads: 1 signed by key " + key.PublicKeyString()[:30], "clean"}},
		{"another unit's key", []string{"--pubkey", identity.FormatPublicKey(other.PublicKey())}, agent.ExitFailure, []string{"ALTERED chain.log: the head signed at ", "does not verify with key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := run(t, append([]string{"footage", "verify", "--data", data}, c.args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d: %s%s", code, c.code, out, errs)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	if code, _, errs := run(t, "footage", "verify", "--data", data, "--pubkey", "ssh-ed25519 AAAA"); code != agent.ExitUsage || !strings.Contains(errs, "not an evidence public key") {
		t.Fatalf("bad --pubkey: exit %d: %s", code, errs)
	}

	// A segment removed from the middle of the footage.
	segs, _ := filepath.Glob(filepath.Join(footage.Dir(data), "*.seg"))
	if err := os.Remove(segs[2]); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, "footage", "verify", "--data", data, "--pubkey", key.PublicKeyString())
	if code != agent.ExitFailure || !strings.Contains(out, "ALTERED "+filepath.Base(segs[2])+": missing") {
		t.Fatalf("verify with a segment removed: exit %d: %s", code, out)
	}
}
