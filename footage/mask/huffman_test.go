package mask

import (
	"math/rand/v2"
	"testing"
)

// The standard tables typed in from T.81 Annex K.3 must be those cjpeg
// writes (it codes with them unless asked to optimise).
func TestStandardTablesMatchCjpeg(t *testing.T) {
	frame := corpus(t)["cj444.jpg"]
	mk := NewMasker(&Mask{width: 1, height: 1})
	i := 2
	for frame[i+1] != mSOS {
		n := int(frame[i+2])<<8 | int(frame[i+3])
		if frame[i+1] == mDHT {
			if err := mk.parseDHT(frame[i+4 : i+2+n]); err != nil {
				t.Fatal(err)
			}
		}
		i += 2 + n
	}
	for class := range 2 {
		for id := range 2 {
			if !mk.inDefined[class][id] {
				t.Fatalf("cj444.jpg defines no table %d/%d", class, id)
			}
			if !mk.inSpec[class][id].equal(&stdSpecs[class][id]) {
				t.Errorf("standard table class %d id %d differs from cjpeg's", class, id)
			}
		}
	}
}

func codeLen(s *huffSpec, freq *[256]int32) int64 {
	var e encTable
	e.build(s)
	var n int64
	for sym, f := range freq {
		n += int64(f) * int64(e.cs[sym]&0xFF)
	}
	return n
}

func TestOptimalTables(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var fib [256]int32
	a, b := int32(1), int32(1)
	for i := range 40 { // Fibonacci frequencies force codes above 16 bits
		fib[i] = a
		a, b = b, a+b
	}
	cases := map[string]*[256]int32{"fibonacci": &fib}
	one := [256]int32{7: 1000}
	cases["one symbol"] = &one
	for k := range 20 {
		var f [256]int32
		n := 1 + r.IntN(256)
		for range n {
			f[r.IntN(256)] = int32(r.IntN(1 << uint(r.IntN(20))))
		}
		cases[string(rune('a'+k))] = &f
	}
	var scratch optScratch
	for name, freq := range cases {
		var s huffSpec
		optimal(&s, freq, &scratch)
		if err := s.check(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// The all-ones code must stay unused: the counts fill less than
		// the whole code space.
		space := 0
		for l := 1; l <= 16; l++ {
			space += int(s.counts[l-1]) << (16 - l)
		}
		if space >= 1<<16 {
			t.Fatalf("%s: the table uses the all-ones code", name)
		}
		var e encTable
		e.build(&s)
		if !e.covers(freq) {
			t.Fatalf("%s: optimal table has no code for a used symbol", name)
		}
		// Against a table of the same symbols built from flat
		// frequencies, optimal must not be longer.
		var flat [256]int32
		for sym, f := range freq {
			if f > 0 {
				flat[sym] = 1
			}
		}
		var fs huffSpec
		optimal(&fs, &flat, &scratch)
		if got, base := codeLen(&s, freq), codeLen(&fs, freq); got > base {
			t.Errorf("%s: optimal codes %d bits, flat table %d", name, got, base)
		}
	}
}

func TestCategory(t *testing.T) {
	for _, v := range []int32{0, 1, -1, 2, -2, 3, -3, 255, -255, 1023, -1024, 2047, -2047} {
		s, bits := category(v)
		var back int32
		if s > 0 {
			back = int32(bits)
			if back < 1<<(s-1) {
				back += -1<<s + 1
			}
		}
		if back != v {
			t.Errorf("category(%d) = %d, %b: decodes to %d", v, s, bits, back)
		}
	}
}

// HuffmanOwn keeps a frame's table that has every code needed and falls
// back to the standard table, written in a DHT, for one that has not.
func TestOwnTablesFallBack(t *testing.T) {
	mk := NewMasker(&Mask{width: 1, height: 1})
	mk.SetHuffman(HuffmanOwn)
	// The frame's DC table 0 codes categories 0-3 only; its AC table 0
	// is the standard one.
	mk.inSpec[0][0] = specOf([16]byte{0, 4}, []byte{0, 1, 2, 3})
	mk.inSpec[1][0] = stdSpecs[1][0]
	mk.inDefined[0][0], mk.inDefined[1][0] = true, true
	mk.used[0][0], mk.used[1][0] = true, true
	mk.freq[0][0][2] = 10
	mk.freq[1][0][0] = 10
	out := mk.chooseTables(nil)
	if !mk.outSpec[0][0].equal(&mk.inSpec[0][0]) {
		t.Error("DC table covering every symbol was not kept")
	}
	// Now the masked frame needs category 9, which the table lacks.
	mk.outDefined = [2][4]bool{}
	mk.freq[0][0][9] = 1
	out = mk.chooseTables(out[:0])
	if !mk.outSpec[0][0].equal(&stdSpecs[0][0]) || !mk.outSpec[1][0].equal(&stdSpecs[1][0]) {
		t.Fatal("DC table lacking a code did not fall back to the standard table")
	}
	if !mk.enc[0][0].covers(&mk.freq[0][0]) {
		t.Fatal("chosen DC table lacks a code")
	}
	// The DHT written holds both tables and parses back.
	if len(out) < 4 || out[0] != 0xFF || out[1] != mDHT {
		t.Fatalf("no DHT segment written: % x", out)
	}
	if n := int(out[2])<<8 | int(out[3]); n != len(out)-2 {
		t.Fatalf("DHT length %d, segment is %d bytes", n, len(out)-2)
	}
	back := NewMasker(&Mask{width: 1, height: 1})
	if err := back.parseDHT(out[4:]); err != nil {
		t.Fatal(err)
	}
	if !back.inSpec[0][0].equal(&stdSpecs[0][0]) || !back.inSpec[1][0].equal(&stdSpecs[1][0]) {
		t.Fatal("DHT written does not hold the chosen tables")
	}
}
