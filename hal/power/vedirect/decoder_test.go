package vedirect

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var mpptBlock = Block{{"V", "12850"}, {"I", "3200"}, {"VPV", "18420"}, {"PPV", "45"}, {"CS", "3"}}

func enc(b Block) string { return string(AppendBlock(nil, b)) }

// decodeAll returns the blocks of s and the number discarded.
func decodeAll(t testing.TB, s []byte) ([]Block, int) {
	t.Helper()
	d := NewDecoder(bytes.NewReader(s))
	var out []Block
	bad := 0
	for {
		b, err := d.Next()
		switch {
		case err == nil:
			out = append(out, b)
		case errors.Is(err, ErrBadBlock):
			bad++
		case err == io.EOF:
			return out, bad
		default:
			t.Fatalf("Next: %v", err)
		}
	}
}

func TestDecoder(t *testing.T) {
	good := enc(mpptBlock)
	badSum := []byte(good)
	badSum[len(badSum)-1]++
	withHex := strings.Replace(good, "\r\nI\t", ":7F0ED0071\n\r\nI\t", 1)
	// Find values that make the checksum byte ':' so the hex rule must not
	// fire on it.
	var colon string
	for i := 0; i < 256 && colon == ""; i++ {
		s := enc(Block{{"V", "1" + strings.Repeat("0", i%5)}, {"X", string(rune('a' + i%26))}, {"Y", strings.Repeat("z", i/26)}})
		if s[len(s)-1] == ':' {
			colon = s
		}
	}
	if colon == "" {
		t.Fatal("no block with ':' as checksum found")
	}
	tests := []struct {
		name   string
		in     string
		blocks int
		bad    int
	}{
		{"one block", good, 1, 0},
		{"two blocks", good + good, 2, 0},
		{"empty", "", 0, 0},
		{"garbage before", "\x00\xffjunk\tjunk" + good, 1, 0},
		{"started mid-block", good[7:] + good, 1, 1},
		{"bad checksum then good", string(badSum) + good, 1, 1},
		{"hex frame between fields", withHex, 1, 0},
		{"hex frame between blocks", ":A0102000543\n" + good, 1, 0},
		{"checksum byte is a colon", colon + good, 2, 0},
		{"label too long", "\r\n" + strings.Repeat("L", 40) + "\t1" + good, 1, 1},
		{"value too long", "\r\nV\t" + strings.Repeat("9", 100) + good, 1, 1},
		{"label without value", "\r\nV\r\n" + good, 1, 1},
		{"truncated at end", good + good[:20], 1, 0},
		{"checksum only", enc(nil), 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks, bad := decodeAll(t, []byte(tt.in))
			if len(blocks) != tt.blocks || bad != tt.bad {
				t.Fatalf("got %d blocks, %d discarded; want %d, %d", len(blocks), bad, tt.blocks, tt.bad)
			}
			for _, b := range blocks {
				if v, _ := b.Get("V"); v == "" {
					t.Errorf("block without V: %q", b)
				}
			}
		})
	}
	blocks, _ := decodeAll(t, []byte(withHex))
	if !reflect.DeepEqual(blocks[0], mpptBlock) {
		t.Errorf("hex frame leaked into block: %q", blocks[0])
	}
}

func TestDecoderTestdata(t *testing.T) {
	tests := []struct {
		file   string
		blocks int
		bad    int
	}{
		{"mppt.txt", 1, 0},
		{"bmv.txt", 2, 0},
		{"noise.txt", 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			blocks, bad := decodeAll(t, data)
			if len(blocks) != tt.blocks || bad != tt.bad {
				t.Fatalf("got %d blocks, %d discarded; want %d, %d", len(blocks), bad, tt.blocks, tt.bad)
			}
		})
	}
}

// FuzzDecoder checks that the decoder never panics, that every block it
// returns has a right checksum when encoded again, and that an encoded
// block decodes to itself.
func FuzzDecoder(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		blocks, _ := decodeAll(t, data)
		for _, b := range blocks {
			again, bad := decodeAll(t, AppendBlock(nil, b))
			if bad != 0 || len(again) != 1 || !reflect.DeepEqual(again[0], b) {
				t.Fatalf("block %q does not round-trip: %q, %d discarded", b, again, bad)
			}
			Decode(b) // must not panic
		}
	})
}

func BenchmarkDecoder(b *testing.B) {
	data := bytes.Repeat([]byte(enc(mpptBlock)), 64)
	// Baseline: reading the same bytes one at a time without decoding.
	b.Run("baseline-readbyte", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			r := bytes.NewReader(data)
			for {
				if _, err := r.ReadByte(); err != nil {
					break
				}
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			d := NewDecoder(bytes.NewReader(data))
			for {
				if _, err := d.Next(); err == io.EOF {
					break
				}
			}
		}
	})
}
