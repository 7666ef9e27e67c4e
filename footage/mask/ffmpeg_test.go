package mask

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ffmpegYUV420 decodes a 4:2:0 JPEG file with ffmpeg into its planes,
// without conversion.
func ffmpegYUV420(t *testing.T, path string) (w, h int, planes [3][]byte) {
	t.Helper()
	probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=width,height",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	if _, err := fmt.Sscanf(string(probe), "%d,%d", &w, &h); err != nil {
		t.Fatalf("ffprobe %s: %q: %v", path, probe, err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "yuvj420p", "-")
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg %s: %v: %s", path, err, stderr.String())
	}
	cw, ch := (w+1)/2, (h+1)/2
	if len(raw) != w*h+2*cw*ch {
		t.Fatalf("ffmpeg %s: %d bytes of raw video for %dx%d", path, len(raw), w, h)
	}
	return w, h, [3][]byte{raw[:w*h], raw[w*h : w*h+cw*ch], raw[w*h+cw*ch:]}
}

// A frame with one scan per component and restart markers, which
// image/jpeg cannot read: ffmpeg decodes original and masked frames, and
// they must be equal outside the mask and grey inside, plane by plane.
func TestNonInterleavedRestartWithFFmpeg(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not on PATH: install ffmpeg to run this test")
	}
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not on PATH: install ffmpeg to run this test")
	}
	src := filepath.Join("testdata", "cj420scansrst.jpg")
	frame, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(317, 179, []Rect{{X: 40, Y: 30, W: 70, H: 50}, {X: 250, Y: 150, W: 100, H: 100}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mk := NewMasker(m)
	out, err := mk.Apply(nil, frame)
	if err != nil {
		t.Fatal(err)
	}
	if mk.ns != 1 || mk.restart == 0 {
		t.Fatalf("test frame has %d-component scans, restart %d: want non-interleaved with restarts", mk.ns, mk.restart)
	}
	dst := filepath.Join(t.TempDir(), "masked.jpg")
	if err := os.WriteFile(dst, out, 0o600); err != nil {
		t.Fatal(err)
	}
	w, h, po := ffmpegYUV420(t, src)
	w2, h2, pm := ffmpegYUV420(t, dst)
	if w != w2 || h != h2 {
		t.Fatalf("masked frame decodes to %dx%d, original %dx%d", w2, h2, w, h)
	}
	masked := 0
	for k := range 3 {
		pw, ph, f := w, h, 2 // samples per MCU side are 8*f
		if k > 0 {
			pw, ph, f = (w+1)/2, (h+1)/2, 1
		}
		for y := range ph {
			for x := range pw {
				a, b := po[k][y*pw+x], pm[k][y*pw+x]
				if mk.cells[(y/8/f)*mk.nxMCU+x/8/f] {
					masked++
					if b != 128 {
						t.Fatalf("plane %d (%d,%d): masked sample is %d, want 128", k, x, y, b)
					}
				} else if a != b {
					t.Fatalf("plane %d (%d,%d): unmasked sample changed from %d to %d", k, x, y, a, b)
				}
			}
		}
	}
	if masked == 0 {
		t.Fatal("no masked sample")
	}
}
