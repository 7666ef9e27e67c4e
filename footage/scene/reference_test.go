package scene

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func testReference() Reference {
	rnd := rand.New(rand.NewPCG(20, 20))
	m := image.NewGray(image.Rect(0, 0, 20, 12))
	for i := range m.Pix {
		m.Pix[i] = uint8(rnd.IntN(256))
	}
	return Reference{Taken: t0.Add(1234567 * time.Nanosecond), Luma: m, Sharpness: 3.25}
}

func TestReferenceRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		ref  Reference
	}{
		{"with AC sharpness", testReference()},
		{"image only, time unknown", func() Reference { r := testReference(); r.Sharpness, r.Taken = 0, time.Time{}; return r }()},
		{"sub-image", func() Reference {
			r := testReference()
			r.Luma = r.Luma.SubImage(image.Rect(3, 2, 17, 9)).(*image.Gray)
			return r
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.ref.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			w, h := tc.ref.Luma.Rect.Dx(), tc.ref.Luma.Rect.Dy()
			if len(b) != refHeader+w*h+4 {
				t.Fatalf("%d bytes, want %d", len(b), refHeader+w*h+4)
			}
			got, err := UnmarshalReference(b)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Taken.Equal(tc.ref.Taken) || got.Sharpness != tc.ref.Sharpness {
				t.Fatalf("got taken %v sharpness %v, want %v %v", got.Taken, got.Sharpness, tc.ref.Taken, tc.ref.Sharpness)
			}
			if !bytes.Equal(got.Luma.Pix, copyGray(tc.ref.Luma).Pix) || got.Luma.Rect.Dx() != w || got.Luma.Rect.Dy() != h {
				t.Fatal("image differs after the round trip")
			}
			// And the analyzer takes it.
			a, err := New(Config{})
			if err != nil {
				t.Fatal(err)
			}
			if err := a.SetReference(got); err != nil {
				t.Fatal(err)
			}
			if r, ok := a.Reference(); !ok || !bytes.Equal(r.Luma.Pix, got.Luma.Pix) {
				t.Fatal("the analyzer does not give the reference back")
			}
		})
	}
}

// TestReferenceDamage: every single damaged byte, every truncation and a
// newer version are refused, with an error that says to commission again.
func TestReferenceDamage(t *testing.T) {
	good, err := testReference().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, b []byte) {
		t.Helper()
		_, err := UnmarshalReference(b)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		if !strings.Contains(err.Error(), "commission") {
			t.Fatalf("%s: %v: the error must say to commission again", name, err)
		}
	}
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		check(fmt.Sprintf("byte %d", i), b)
	}
	for n := 0; n < len(good); n += 7 {
		check("truncated", good[:n])
	}
	check("trailing bytes", append(bytes.Clone(good), 0))
	b := bytes.Clone(good)
	binary.LittleEndian.PutUint16(b[8:], 2)
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc(b[:len(b)-4]))
	if _, err := UnmarshalReference(b); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("version 2: %v", err)
	}
}

func crc(b []byte) uint32 { return crc32.Checksum(b, crcTable) }

func TestReferenceErrors(t *testing.T) {
	if _, err := (Reference{}).Marshal(); err == nil {
		t.Fatal("a reference without an image was marshalled")
	}
	big := Reference{Luma: image.NewGray(image.Rect(0, 0, 3000, 2))}
	if _, err := big.Marshal(); err == nil {
		t.Fatal("a 3000-cell-wide image was marshalled")
	}
	a, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetReference(Reference{Luma: image.NewGray(image.Rect(0, 0, 2, 2))}); err == nil {
		t.Fatal("a 2x2 reference was taken")
	}
	if _, ok := a.Reference(); ok {
		t.Fatal("reference reported before any was set")
	}
	if _, err := a.CommissionJPEG(t0, []byte("not a jpeg")); err == nil {
		t.Fatal("commissioned from garbage")
	}
}

func FuzzUnmarshalReference(f *testing.F) {
	good, err := testReference().Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalReference(b)
		if err != nil {
			return
		}
		again, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Fatal("a reference read does not marshal back to the same bytes")
		}
	})
}
