package jpegdc

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// scene draws a w×h picture with smooth gradients, hard edges and noise,
// so that blocks have AC energy to skip.
func scene(w, h int, seed uint64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, 1))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := (x*255/w + y*128/h) % 256
			if (x/37+y/23)%3 == 0 {
				v = 255 - v
			}
			n := r.IntN(31) - 15
			m.Set(x, y, color.RGBA{uint8(clampInt(v + n)), uint8(clampInt(255 - v + n)), uint8(clampInt(v/2 + n)), 255})
		}
	}
	return m
}

func clampInt(v int) int { return max(0, min(255, v)) }

func encodeStd(t testing.TB, m image.Image, q int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// encodeFFmpeg encodes m with ffmpeg's MJPEG encoder in the given pixel
// format (yuvj420p, yuvj422p, yuvj444p, gray).
func encodeFFmpeg(t testing.TB, m image.Image, pixFmt string) []byte {
	t.Helper()
	ff, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg not found (%v): `make test` installs it; or apt-get install ffmpeg", err)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.png"), filepath.Join(dir, "out.jpg")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, m); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ff, "-hide_banner", "-loglevel", "error", "-y", "-i", in, "-pix_fmt", pixFmt, "-q:v", "3", "-frames:v", "1", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// blockMeans decodes img with image/jpeg and returns the mean luma of
// every 8×8 block (partial blocks at the edges: the mean of the pixels
// present).
func blockMeans(t testing.TB, img []byte) *image.Gray {
	t.Helper()
	m, err := jpeg.Decode(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("image/jpeg: %v", err)
	}
	b := m.Bounds()
	luma := func(x, y int) int {
		switch p := m.(type) {
		case *image.YCbCr:
			return int(p.Y[p.YOffset(x, y)])
		case *image.Gray:
			return int(p.Pix[p.PixOffset(x, y)])
		}
		t.Fatalf("image/jpeg gave %T", m)
		return 0
	}
	w, h := (b.Dx()+7)/8, (b.Dy()+7)/8
	out := image.NewGray(image.Rect(0, 0, w, h))
	for by := 0; by < h; by++ {
		for bx := 0; bx < w; bx++ {
			sum, n := 0, 0
			for y := by * 8; y < min(by*8+8, b.Dy()); y++ {
				for x := bx * 8; x < min(bx*8+8, b.Dx()); x++ {
					sum += luma(x, y)
					n++
				}
			}
			out.Pix[by*out.Stride+bx] = uint8((sum + n/2) / n)
		}
	}
	return out
}

// compare fails unless got matches want within tol on every pixel but the
// partial blocks at the right and bottom edges (whose DC also covers the
// encoder's padding), and within 2 on average.
func compare(t testing.TB, got, want *image.Gray, fullW, fullH, tol int) {
	t.Helper()
	if got.Rect != want.Rect {
		t.Fatalf("size %v, want %v", got.Rect, want.Rect)
	}
	worst, sum, n := 0, 0, 0
	for y := 0; y < fullH/8; y++ {
		for x := 0; x < fullW/8; x++ {
			d := int(got.Pix[y*got.Stride+x]) - int(want.Pix[y*want.Stride+x])
			d = max(d, -d)
			worst = max(worst, d)
			sum += d
			n++
		}
	}
	t.Logf("vs image/jpeg block means: worst %d, mean %.2f grey levels over %d blocks", worst, float64(sum)/float64(max(n, 1)), n)
	if worst > tol || (n > 0 && sum > 2*n) {
		t.Fatalf("differs from image/jpeg block means: worst %d (tolerance %d), mean %.2f", worst, tol, float64(sum)/float64(n))
	}
}

// dcOnlyJPEG encodes a grayscale image whose blocks are flat (no AC), with
// a restart interval (0 for none), by hand: image/jpeg and ffmpeg cannot
// write restart markers. The Huffman tables are minimal: DC categories
// 0-11 as 4-bit codes, and a single 1-bit AC code for end-of-block. It
// returns the image and the block values coded.
func dcOnlyJPEG(w, h, restart int, seed uint64, withDHT bool) ([]byte, []uint8) {
	r := rand.New(rand.NewPCG(seed, 2))
	bw, bh := (w+7)/8, (h+7)/8
	vals := make([]uint8, bw*bh)
	for i := range vals {
		vals[i] = uint8(r.IntN(256) &^ 7) // multiples of 8: exact with q=8
	}
	seg := func(m byte, p []byte) []byte {
		b := []byte{0xFF, m}
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)+2))
		return append(b, p...)
	}
	out := []byte{0xFF, mSOI}
	q := make([]byte, 65)
	for i := 1; i < 65; i++ {
		q[i] = 8
	}
	out = append(out, seg(mDQT, q)...)
	out = append(out, seg(mSOF0, []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 1, 1, 0x11, 0})...)
	if withDHT {
		dc := append([]byte{0x00}, make([]byte, 16)...)
		dc[4] = 12 // twelve 4-bit codes
		for i := 0; i < 12; i++ {
			dc = append(dc, byte(i))
		}
		ac := append([]byte{0x10, 1}, make([]byte, 15)...)
		ac = append(ac, 0x00)
		out = append(out, seg(mDHT, append(dc, ac...))...)
	}
	if restart > 0 {
		out = append(out, seg(mDRI, []byte{byte(restart >> 8), byte(restart)})...)
	}
	out = append(out, seg(mSOS, []byte{1, 1, 0x00, 0, 63, 0})...)

	var acc uint64
	var n uint
	put := func(v uint32, l uint) {
		acc = acc<<l | uint64(v)&(1<<l-1)
		n += l
		for n >= 8 {
			c := byte(acc >> (n - 8))
			out = append(out, c)
			if c == 0xFF {
				out = append(out, 0)
			}
			n -= 8
		}
	}
	flush := func() {
		if n > 0 {
			put(1<<(8-n)-1, 8-n)
		}
	}
	pred := 0
	for i, v := range vals {
		if restart > 0 && i > 0 && i%restart == 0 {
			flush()
			out = append(out, 0xFF, byte(mRST0+(i/restart-1)%8))
			pred = 0
		}
		dc := (int(v) - 128) // q=8: DC coefficient = 8*(mean-128)/8
		diff := dc - pred
		pred = dc
		s, bits := uint(0), diff
		for a := max(diff, -diff); a > 0; a >>= 1 {
			s++
		}
		if diff < 0 {
			bits = diff + (1 << s) - 1
		}
		put(uint32(s), 4)
		put(uint32(bits), s)
		put(0, 1) // end of block
	}
	flush()
	return append(out, 0xFF, mEOI), vals
}

// withoutDHT removes the DHT segments of img, as UVC cameras send frames.
func withoutDHT(img []byte) []byte {
	out := append([]byte(nil), img[:2]...)
	i := 2
	for i+4 <= len(img) {
		m := img[i+1]
		n := int(binary.BigEndian.Uint16(img[i+2:]))
		if m == mSOS {
			return append(out, img[i:]...)
		}
		if m != mDHT {
			out = append(out, img[i:i+2+n]...)
		}
		i += 2 + n
	}
	return out
}
