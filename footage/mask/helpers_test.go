package mask

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
)

// corpus returns the test frames of testdata by name.
func corpus(t testing.TB) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob("testdata/*.jpg")
	if err != nil || len(names) == 0 {
		t.Fatalf("no test frames in testdata (%v): run testdata/gen.sh", err)
	}
	out := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(n)] = b
	}
	return out
}

// imageJPEGReads reports whether image/jpeg can decode the test frame
// name: it reads neither progressive frames (we refuse them) nor restart
// markers in a scan of one component of several.
func imageJPEGReads(name string) bool {
	return name != "progressive.jpg" && name != "cj420scansrst.jpg"
}

// withDHT returns img with a DHT segment holding the standard tables
// inserted before its first scan when it has no DHT, as a decoder of
// MJPEG assumes; image/jpeg needs it.
func withDHT(img []byte) []byte {
	i := 2
	for i+4 <= len(img) {
		m := img[i+1]
		if m == mDHT {
			return img
		}
		if m == mSOS {
			var dht []byte
			dht = append(dht, 0xFF, mDHT, 0, 0)
			for class := range 2 {
				for id := range 2 {
					dht = stdSpecs[class][id].appendDHT(dht, class, id)
				}
			}
			dht[2], dht[3] = byte((len(dht)-2)>>8), byte(len(dht)-2)
			out := append([]byte(nil), img[:i]...)
			out = append(out, dht...)
			return append(out, img[i:]...)
		}
		i += 2 + (int(img[i+2])<<8 | int(img[i+3]))
	}
	return img
}

func decode(t testing.TB, b []byte) image.Image {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(withDHT(b)))
	if err != nil {
		t.Fatalf("image/jpeg cannot decode the frame: %v", err)
	}
	return img
}

// plane is one component's samples as image/jpeg returns them (no
// upsampling), with the sampling factors that map its blocks to MCUs.
type plane struct {
	pix          []byte
	stride, w, h int
	hf, vf       int
}

func planes(t testing.TB, img image.Image, comps []comp) []plane {
	t.Helper()
	switch m := img.(type) {
	case *image.Gray:
		return []plane{{m.Pix, m.Stride, m.Rect.Dx(), m.Rect.Dy(), 1, 1}}
	case *image.YCbCr:
		if len(comps) != 3 {
			t.Fatalf("YCbCr image from a %d-component frame", len(comps))
		}
		last := m.COffset(m.Rect.Max.X-1, m.Rect.Max.Y-1)
		cw, ch := last%m.CStride+1, last/m.CStride+1
		return []plane{
			{m.Y, m.YStride, m.Rect.Dx(), m.Rect.Dy(), comps[0].h, comps[0].v},
			{m.Cb, m.CStride, cw, ch, comps[1].h, comps[1].v},
			{m.Cr, m.CStride, cw, ch, comps[2].h, comps[2].v},
		}
	}
	t.Fatalf("image/jpeg returned a %T; want *image.Gray or *image.YCbCr", img)
	return nil
}

// checkMasked compares the decoded original and masked frames plane by
// plane: blocks of unmasked MCUs must be identical, blocks of masked MCUs
// uniformly 128. It returns the number of masked samples seen.
func checkMasked(t testing.TB, orig, masked []byte, mk *Masker) int {
	t.Helper()
	return checkMaskedImage(t, decode(t, orig), masked, mk)
}

// checkMaskedImage is checkMasked with the original already decoded.
func checkMaskedImage(t testing.TB, orig image.Image, masked []byte, mk *Masker) int {
	t.Helper()
	comps := mk.comps[:mk.ncomp]
	po := planes(t, orig, comps)
	pm := planes(t, decode(t, masked), comps)
	nx := mk.nxMCU
	n := 0
	for k := range po {
		a, b := po[k], pm[k]
		if a.w != b.w || a.h != b.h {
			t.Fatalf("plane %d: size %dx%d, masked %dx%d", k, a.w, a.h, b.w, b.h)
		}
		for y := range a.h {
			for x := range a.w {
				mx, my := (x/8)/a.hf, (y/8)/a.vf
				va, vb := a.pix[y*a.stride+x], b.pix[y*b.stride+x]
				if mk.cells[my*nx+mx] {
					n++
					if vb != 128 {
						t.Fatalf("plane %d (%d,%d): masked sample is %d, want 128", k, x, y, vb)
					}
				} else if va != vb {
					t.Fatalf("plane %d (%d,%d): unmasked sample changed from %d to %d", k, x, y, va, vb)
				}
			}
		}
	}
	return n
}
