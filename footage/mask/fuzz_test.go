package mask

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"
)

// FuzzMask feeds arbitrary bytes to Apply: it must never panic or hang,
// and what it returns is either an error or a JPEG image/jpeg decodes
// whenever image/jpeg decodes the input.
func FuzzMask(f *testing.F) {
	for _, frame := range corpus(f) {
		f.Add(frame)
	}
	f.Add([]byte{0xFF, mSOI, 0xFF, mEOI})
	blank, err := Blank(40, 24)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blank)
	m, err := New(64, 64, []Rect{{X: 16, Y: 16, W: 24, H: 24}}, [][]image.Point{{{40, 0}, {64, 10}, {50, 30}}})
	if err != nil {
		f.Fatal(err)
	}
	mk := NewMasker(m)
	var out []byte
	f.Fuzz(func(t *testing.T, frame []byte) {
		for _, h := range []Huffman{HuffmanOptimal, HuffmanOwn} {
			mk.SetHuffman(h)
			out, err = mk.Apply(out, frame)
			if err != nil {
				if out != nil {
					t.Fatalf("Apply returned %d bytes with error %v", len(out), err)
				}
				continue
			}
			in := withDHT(frame)
			cfg, err := jpeg.DecodeConfig(bytes.NewReader(in))
			if err != nil || cfg.Width*cfg.Height > 1<<20 {
				continue
			}
			if _, err := jpeg.Decode(bytes.NewReader(in)); err != nil {
				continue
			}
			if _, err := jpeg.Decode(bytes.NewReader(out)); err != nil {
				t.Fatalf("%s: image/jpeg decodes the input but not the masked frame: %v", h, err)
			}
		}
	})
}
