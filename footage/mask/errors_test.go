package mask

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func middleMask(t testing.TB) *Mask {
	t.Helper()
	m, err := New(320, 180, []Rect{{X: 100, Y: 60, W: 80, H: 50}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Every prefix of a frame is refused: a frame cut short in transfer is
// never passed on, masked or not.
func TestTruncatedFramesAreRefused(t *testing.T) {
	c := corpus(t)
	mk := NewMasker(middleMask(t))
	for _, name := range []string{"ff420.jpg", "cj422rst.jpg", "nodht422rst.jpg", "cj420scans.jpg"} {
		frame := c[name]
		// Every cut in the headers and near the end, one in 29 in the
		// entropy-coded data between.
		for n := 0; n < len(frame); n++ {
			if n > 1024 && n < len(frame)-64 && n%29 != 0 {
				continue
			}
			out, err := mk.Apply(nil, frame[:n])
			if err == nil || out != nil {
				t.Fatalf("%s cut to %d of %d bytes: got %d bytes, error %v; want nil and an error", name, n, len(frame), len(out), err)
			}
		}
	}
}

func TestUnsupportedFrames(t *testing.T) {
	c := corpus(t)
	base := c["ff420.jpg"]
	sof := bytes.Index(base, []byte{0xFF, mSOF0})
	patch := func(at int, b byte) []byte {
		f := bytes.Clone(base)
		f[at] = b
		return f
	}
	tests := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"progressive", c["progressive.jpg"], "progressive"},
		{"12-bit", patch(sof+4, 12), "12-bit"},
		{"arithmetic", patch(sof+1, 0xC9), "SOF9"},
		{"lossless", patch(sof+1, 0xC3), "SOF3"},
		{"four components", patch(sof+9, 4), "4 components"},
		{"not a JPEG", []byte("GIF89a......"), "no SOI"},
		{"empty", nil, "no SOI"},
	}
	mk := NewMasker(middleMask(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := mk.Apply(nil, tt.frame)
			if err == nil || out != nil {
				t.Fatalf("got %d bytes and error %v; want an error", len(out), err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not name %q", err, tt.want)
			}
		})
	}
	if _, err := mk.Apply(nil, c["progressive.jpg"]); !errors.Is(err, ErrProgressive) {
		t.Fatalf("progressive frame: error %v, want ErrProgressive", err)
	}
}

// Masking reuses its buffers: in the steady state it allocates nothing.
func TestApplyDoesNotAllocate(t *testing.T) {
	c := corpus(t)
	for _, name := range []string{"cj420rst.jpg", "ff422.jpg", "nodht422rst.jpg"} {
		for _, h := range []Huffman{HuffmanOptimal, HuffmanOwn, HuffmanStandard} {
			mk := NewMasker(middleMask(t))
			mk.SetHuffman(h)
			out, err := mk.Apply(nil, c[name])
			if err != nil {
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(5, func() {
				out, err = mk.Apply(out, c[name])
			})
			if err != nil || allocs != 0 {
				t.Errorf("%s %s: %v allocations per frame (error %v), want 0", name, h, allocs, err)
			}
		}
	}
}

// APPn segments holding a picture of the scene are left out of a masked
// frame: a thumbnail would show what the mask hides.
func TestThumbnailsAreDropped(t *testing.T) {
	frame := corpus(t)["ff420.jpg"]
	exif := append([]byte("Exif\x00\x00II*\x00"), 0xFF, mSOI, 0xFF, 0xDB, 1, 2, 3, 0xFF, mEOI)
	jfif := append([]byte("JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x01\x01"), 1, 2, 3)
	keep := []byte("keep me, no picture")
	seg := func(m byte, body []byte) []byte {
		n := len(body) + 2
		return append([]byte{0xFF, m, byte(n >> 8), byte(n)}, body...)
	}
	f := []byte{0xFF, mSOI}
	f = append(f, seg(0xE1, exif)...)
	f = append(f, seg(0xE0, jfif)...)
	f = append(f, seg(0xE5, keep)...)
	f = append(f, frame[2:]...)
	mk := NewMasker(middleMask(t))
	out, err := mk.Apply(nil, f)
	if err != nil {
		t.Fatal(err)
	}
	if st := mk.Stats(); st.DroppedSegments != 2 {
		t.Errorf("dropped %d segments, want 2", st.DroppedSegments)
	}
	if bytes.Contains(out, []byte("Exif")) || bytes.Contains(out, jfif[:14]) {
		t.Error("masked frame still holds a thumbnail")
	}
	if !bytes.Contains(out, keep) {
		t.Error("masked frame lost an APPn segment without a picture")
	}
	checkMasked(t, f, out, mk)
}

func TestBlank(t *testing.T) {
	for _, sz := range []image.Point{{1, 1}, {17, 9}, {320, 180}, {1920, 1080}} {
		b, err := Blank(sz.X, sz.Y)
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%v: image/jpeg cannot decode the blank frame: %v", sz, err)
		}
		g, ok := img.(*image.Gray)
		if !ok || g.Rect.Size() != sz {
			t.Fatalf("%v: decoded %T of size %v", sz, img, img.Bounds().Size())
		}
		for i, v := range g.Pix {
			if v != 128 {
				t.Fatalf("%v: pixel %d is %d, want 128", sz, i, v)
			}
		}
	}
	if _, err := Blank(0, 10); err == nil {
		t.Error("Blank(0, 10): no error")
	}
}

// ffprobe (libavcodec's decoder) reads every masked frame and the blank
// frame without complaint.
func TestFFprobeReadsMaskedFrames(t *testing.T) {
	probe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Skip("ffprobe not on PATH: install ffmpeg to run this test")
	}
	dir := t.TempDir()
	var files []string
	for name, frame := range corpus(t) {
		if !imageJPEGReads(name) {
			continue
		}
		for _, h := range []Huffman{HuffmanOptimal, HuffmanOwn, HuffmanStandard} {
			m, err := New(320, 180, []Rect{{X: 0, Y: 0, W: 90, H: 40}, {X: 150, Y: 100, W: 200, H: 200}},
				[][]image.Point{{{200, 0}, {300, 20}, {250, 90}}})
			if err != nil {
				t.Fatal(err)
			}
			mk := NewMasker(m)
			mk.SetHuffman(h)
			out, err := mk.Apply(nil, frame)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			p := filepath.Join(dir, h.String()+"-"+name)
			if err := os.WriteFile(p, out, 0o600); err != nil {
				t.Fatal(err)
			}
			files = append(files, p)
		}
	}
	blank, err := Blank(333, 77)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "blank.jpg")
	if err := os.WriteFile(p, blank, 0o600); err != nil {
		t.Fatal(err)
	}
	files = append(files, p)
	// One ffprobe run reads all the frames as an MJPEG stream: the
	// decoder reports any frame it cannot decode.
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	stream := filepath.Join(dir, "all.mjpeg")
	if err := os.WriteFile(stream, all, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(probe, "-v", "error", "-f", "mjpeg", "-show_frames", "-of", "compact", stream)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe: %v: %s", err, stderr.String())
	}
	if n := bytes.Count(stdout, []byte("media_type=video")); n != len(files) {
		t.Fatalf("ffprobe decoded %d frames of %d: %s", n, len(files), stdout)
	}
}
