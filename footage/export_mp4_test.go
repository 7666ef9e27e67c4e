package footage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/jpeg"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/footage/footagetest"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// probe is what ffprobe says of a clip.
type probe struct {
	Frames   int
	Duration float64
	Codec    string
	Width    int
	Height   int
}

// ffprobe reads a clip with ffprobe, counting its frames by decoding. The
// tests need it: `make test` installs it (scripts/test-deps.sh).
func ffprobe(t *testing.T, path string) probe {
	t.Helper()
	bin, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatalf("ffprobe is not installed, and the exported clips must be checked with it: run `make test`, which installs it (scripts/test-deps.sh), or apt-get install ffmpeg")
	}
	out, err := exec.Command(bin, "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames:format=duration", "-of", "json", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("ffprobe %s: %v: %s", path, err, ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var r struct {
		Streams []struct {
			Codec  string `json:"codec_name"`
			Width  int    `json:"width"`
			Height int    `json:"height"`
			Frames string `json:"nb_read_frames"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Streams) != 1 {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	p := probe{Codec: r.Streams[0].Codec, Width: r.Streams[0].Width, Height: r.Streams[0].Height}
	p.Frames, _ = strconv.Atoi(r.Streams[0].Frames)
	p.Duration, _ = strconv.ParseFloat(r.Format.Duration, 64)
	return p
}

// decodes checks that ffmpeg decodes every frame of a clip without error.
func decodes(t *testing.T, path string) {
	t.Helper()
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg is not installed: run `make test`, which installs it")
	}
	if out, err := exec.Command(bin, "-v", "error", "-xerror", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("ffmpeg cannot decode %s: %v: %s", path, err, out)
	}
}

func exportFile(t *testing.T, s *footage.Store, from, to time.Time) (string, footage.ExportInfo) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "clip.mp4")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := s.Export(context.Background(), f, from, to)
	if err != nil {
		t.Fatalf("export %v-%v: %v", from, to, err)
	}
	return p, info
}

func TestExportMP4(t *testing.T) {
	var pics [][]byte
	for i := 0; i < 8; i++ {
		pics = append(pics, footagetest.JPEG(320, 240, i, 70))
	}
	s := openStore(t, t.TempDir(), smallOpts(), clock.NewFake(t0))
	// 60 s at 25 fps, then a 10 s gap, then 5 s at 10 fps.
	for _, f := range footagetest.Frames(t0, 25, 1500, pics, 320, 240) {
		if _, err := s.Append(f, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range footagetest.Frames(t0.Add(70*time.Second), 10, 50, pics, 320, 240) {
		if _, err := s.Append(f, footage.FlagEvent); err != nil {
			t.Fatal(err)
		}
	}
	s.Sync()
	sec := func(x float64) time.Time { return t0.Add(time.Duration(x * float64(time.Second))) }
	cases := []struct {
		name     string
		from, to time.Time
		frames   int
		duration float64
	}{
		{"a minute", t0, sec(60), 1500, 60},
		{"middle 40 s", sec(10), sec(50), 1000, 40},
		{"one frame", sec(30), sec(30.04), 1, 0.04},
		{"across the gap", sec(59), sec(75), 25 + 50, 16},
		{"from before the footage", t0.Add(-time.Hour), sec(2), 50, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, info := exportFile(t, s, c.from, c.to)
			if info.Frames != c.frames {
				t.Errorf("ExportInfo.Frames %d, want %d", info.Frames, c.frames)
			}
			pr := ffprobe(t, p)
			if pr.Codec != "mjpeg" || pr.Width != 320 || pr.Height != 240 {
				t.Errorf("ffprobe: %+v", pr)
			}
			if d := pr.Frames - c.frames; d < -1 || d > 1 {
				t.Errorf("ffprobe counts %d frames, want %d (±1)", pr.Frames, c.frames)
			}
			// ±1 frame of the fastest rate.
			if math.Abs(pr.Duration-c.duration) > 0.04+1e-6 {
				t.Errorf("ffprobe duration %.3f s, want %.3f s (±1 frame)", pr.Duration, c.duration)
			}
			decodes(t, p)
		})
	}
}

func TestExportNoFootage(t *testing.T) {
	s := openStore(t, t.TempDir(), smallOpts(), clock.NewFake(t0))
	record(t, s, t0, 25, 25)
	var buf bytes.Buffer
	for _, r := range [][2]time.Time{{t0.Add(-time.Hour), t0}, {t0.Add(time.Hour), t0.Add(2 * time.Hour)}, {t0.Add(10 * time.Second), t0.Add(5 * time.Second)}} {
		if _, err := s.Export(context.Background(), &buf, r[0], r[1]); !errors.Is(err, footage.ErrNoFootage) || buf.Len() != 0 {
			t.Fatalf("export of %v: %v, %d bytes written", r, err, buf.Len())
		}
	}
}

// cancelAfter cancels a context once n bytes have been written.
type cancelAfter struct {
	n      int
	cancel func()
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	c.n -= len(p)
	if c.n <= 0 {
		c.cancel()
	}
	return len(p), nil
}

func TestExportCancel(t *testing.T) {
	s := openStore(t, t.TempDir(), smallOpts(), clock.NewFake(t0))
	record(t, s, t0, 25, 500)
	ctx, cancel := context.WithCancel(context.Background())
	info, err := s.Export(ctx, &cancelAfter{n: 20000, cancel: cancel}, t0, t0.Add(time.Minute))
	if !errors.Is(err, context.Canceled) || info.Frames >= 500 {
		t.Fatalf("cancelled export: %+v %v", info, err)
	}
	// The pins are released: everything can be evicted.
	if _, err := s.Export(context.Background(), io.Discard, t0, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
}

func TestNearest(t *testing.T) {
	s := openStore(t, t.TempDir(), smallOpts(), clock.NewFake(t0))
	seqs := record(t, s, t0, 10, 50) // a frame every 100 ms for 5 s
	cases := []struct {
		at     time.Time
		within time.Duration
		seq    int // index into seqs; -1 for none
	}{
		{t0.Add(1234 * time.Millisecond), time.Second, 12},
		{t0.Add(1260 * time.Millisecond), time.Second, 13},
		{t0.Add(-400 * time.Millisecond), time.Second, 0},
		{t0.Add(-2 * time.Second), time.Second, -1},
		{t0.Add(10 * time.Second), time.Minute, 49},
	}
	for _, c := range cases {
		f, err := s.Nearest(context.Background(), c.at, c.within)
		if c.seq < 0 {
			if !errors.Is(err, footage.ErrNoFootage) {
				t.Errorf("at %v: %v, want ErrNoFootage", c.at, err)
			}
			continue
		}
		if err != nil || f.Seq != seqs[c.seq] {
			t.Errorf("at %v: seq %d (%v), want %d", c.at, f.Seq, err, seqs[c.seq])
			continue
		}
		if _, err := jpeg.Decode(bytes.NewReader(f.Data)); err != nil {
			t.Errorf("snapshot is not a JPEG: %v", err)
		}
	}
}
