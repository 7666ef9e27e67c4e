package mask

import (
	"bytes"
	"fmt"
	"image"
	"testing"
)

func TestCorpusMasks(t *testing.T) {
	for name, frame := range corpus(t) {
		if !imageJPEGReads(name) {
			continue
		}
		orig := decode(t, frame)
		w, h := orig.Bounds().Dx(), orig.Bounds().Dy()
		masks := map[string]struct {
			rects []Rect
			polys [][]image.Point
		}{
			"middle":  {rects: []Rect{{X: 50, Y: 40, W: 100, H: 60}}},
			"edges":   {rects: []Rect{{X: 0, Y: 0, W: 30, H: h}, {X: w - 10, Y: h - 10, W: 10, H: 10}, {X: 0, Y: h - 1, W: w, H: 1}}},
			"whole":   {rects: []Rect{{X: 0, Y: 0, W: w, H: h}}},
			"polygon": {polys: [][]image.Point{{{10, 10}, {w - 20, h / 2}, {w / 3, h - 5}}}},
			"outside": {rects: []Rect{{X: w - 5, Y: -20, W: 100, H: 40}}},
		}
		for mname, mm := range masks {
			strategies := []Huffman{HuffmanOptimal}
			if mname == "edges" || mname == "polygon" {
				strategies = append(strategies, HuffmanOwn, HuffmanStandard)
			}
			for _, hs := range strategies {
				t.Run(fmt.Sprintf("%s/%s/%s", name, mname, hs), func(t *testing.T) {
					m, err := New(w, h, mm.rects, mm.polys)
					if err != nil {
						t.Fatal(err)
					}
					mk := NewMasker(m)
					mk.SetHuffman(hs)
					out, err := mk.Apply(nil, frame)
					if err != nil {
						t.Fatal(err)
					}
					st := mk.Stats()
					if !st.Changed || st.MaskedMCUs == 0 {
						t.Fatalf("stats %+v: want a changed frame with masked MCUs", st)
					}
					// Snapped states exactly the MCUs blanked.
					g := st.Geometry
					snapped := make([]bool, len(mk.cells))
					for _, r := range m.Snapped(g) {
						for y := r.Y; y < r.Y+r.H; y += g.MCUHeight {
							for x := r.X; x < r.X+r.W; x += g.MCUWidth {
								snapped[(y/g.MCUHeight)*mk.nxMCU+x/g.MCUWidth] = true
							}
						}
					}
					masked := 0
					for i, c := range mk.cells {
						if c != snapped[i] {
							t.Fatalf("MCU %d: blanked %v, Snapped says %v", i, c, snapped[i])
						}
						if c {
							masked++
						}
					}
					if masked != st.MaskedMCUs {
						t.Fatalf("Stats.MaskedMCUs = %d, %d blanked", st.MaskedMCUs, masked)
					}
					if n := checkMaskedImage(t, orig, out, mk); n == 0 {
						t.Fatal("no masked sample in the decoded frame")
					}
					t.Logf("%d -> %d bytes (%.1f%%), %d of %d MCUs masked", len(frame), len(out), 100*float64(len(out))/float64(len(frame)), st.MaskedMCUs, st.MCUs)
				})
			}
		}
	}
}

func TestEmptyMaskReturnsFrameUnchanged(t *testing.T) {
	for name, frame := range corpus(t) {
		m, err := New(100, 100, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		mk := NewMasker(m)
		out, err := mk.Apply(make([]byte, 0, 10), frame)
		if name == "progressive.jpg" {
			if err == nil {
				t.Errorf("%s: no error", name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(out, frame) || mk.Stats().Changed {
			t.Errorf("%s: frame changed by an empty mask", name)
		}
	}
}
