package mask

import (
	"errors"
	"slices"

	"github.com/outpost-cctv/outpost/hal/camera/mjpeg"
)

// huffSpec is a Huffman table as a DHT segment holds it (T.81 B.2.4.2):
// how many codes there are of each length 1-16, and the symbols in code
// order.
type huffSpec struct {
	counts [16]byte
	n      int // number of symbols, sum of counts
	vals   [256]byte
}

func (s *huffSpec) equal(o *huffSpec) bool {
	return s.counts == o.counts && s.n == o.n && s.vals == o.vals
}

// appendDHT appends the table's body (class/id byte, counts, symbols) as
// it goes in a DHT segment.
func (s *huffSpec) appendDHT(dst []byte, class, id int) []byte {
	dst = append(dst, byte(class<<4|id))
	dst = append(dst, s.counts[:]...)
	return append(dst, s.vals[:s.n]...)
}

// lutBits is the number of bits one table look-up decodes; longer codes,
// rare in practice, take the canonical-code search.
const lutBits = 10

// decTable decodes one Huffman table.
type decTable struct {
	// lut maps the next lutBits bits to length<<8 | symbol, or 0 when
	// the code is longer than lutBits (or no code starts so).
	lut [1 << lutBits]uint16
	// maxcode[l] is the largest code of length l (-1 if none); a code
	// c of length l is symbol vals[c+valptr[l]].
	maxcode [18]int32
	valptr  [17]int32
	vals    [256]byte
}

// encTable encodes one Huffman table: for each symbol, its code<<8 | its
// code's length, 0 when the table has no code for it.
type encTable struct {
	cs [256]uint32
}

var errTableOverfull = errors.New("mask: Huffman table (DHT) has more codes than fit in their lengths: the image is damaged")

// check verifies that the counts describe a valid canonical code in which
// no code is all ones (T.81 C).
func (s *huffSpec) check() error {
	code := 0
	for l := 1; l <= 16; l++ {
		code += int(s.counts[l-1])
		if code > 1<<l {
			return errTableOverfull
		}
		code <<= 1
	}
	return nil
}

func (t *decTable) build(s *huffSpec) {
	clear(t.lut[:])
	t.vals = s.vals
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(s.counts[l-1])
		t.valptr[l] = k - code
		t.maxcode[l] = -1
		if n > 0 {
			if l <= lutBits {
				shift := uint(lutBits - l)
				for j := int32(0); j < n; j++ {
					e := uint16(l)<<8 | uint16(s.vals[k+j])
					c := code + j
					for p := c << shift; p < (c+1)<<shift; p++ {
						t.lut[p] = e
					}
				}
			}
			t.maxcode[l] = code + n - 1
		}
		code += n
		k += n
		code <<= 1
	}
	t.maxcode[17] = 1 << 30 // sentinel: never reached by a valid code
}

func (t *encTable) build(s *huffSpec) {
	clear(t.cs[:])
	code, k := uint32(0), 0
	for l := 1; l <= 16; l++ {
		for j := 0; j < int(s.counts[l-1]); j++ {
			t.cs[s.vals[k]] = code<<8 | uint32(l)
			code++
			k++
		}
		code <<= 1
	}
}

// covers reports whether the table has a code for every symbol counted in
// freq.
func (t *encTable) covers(freq *[256]int32) bool {
	for sym, f := range freq {
		if f > 0 && t.cs[sym] == 0 {
			return false
		}
	}
	return true
}

// optimal fills s with a Huffman table for the symbol frequencies freq,
// limited to 16-bit codes and with the all-ones code left unused, by the
// method of T.81 Annex K.2: code lengths from repeated merging of the two
// least frequent nodes, lengths above 16 folded back (K.3, figure K.3),
// symbols listed by increasing code length. scratch is reused.
func optimal(s *huffSpec, freq *[256]int32, scratch *optScratch) {
	f := &scratch.freq
	size := &scratch.size
	others := &scratch.others
	for i := range 256 {
		f[i] = int64(freq[i])
	}
	// A reserved symbol with the smallest frequency keeps the all-ones
	// code free; it is taken out again below.
	f[256] = 1
	for i := range size {
		size[i] = 0
		others[i] = -1
	}
	for {
		// v1: least frequency (larger index on ties), v2: next least.
		v1, v2 := -1, -1
		var m1, m2 int64 = 1 << 62, 1 << 62
		for i := range 257 {
			if f[i] == 0 {
				continue
			}
			if f[i] <= m1 {
				v2, m2 = v1, m1
				v1, m1 = i, f[i]
			} else if f[i] <= m2 {
				v2, m2 = i, f[i]
			}
		}
		if v2 < 0 {
			break
		}
		f[v1] += f[v2]
		f[v2] = 0
		size[v1]++
		for others[v1] >= 0 {
			v1 = others[v1]
			size[v1]++
		}
		others[v1] = v2
		size[v2]++
		for others[v2] >= 0 {
			v2 = others[v2]
			size[v2]++
		}
	}
	// A code length is at most the number of symbols.
	bits := &scratch.bits
	clear(bits[:])
	for i := range 257 {
		if size[i] > 0 {
			bits[size[i]]++
		}
	}
	for i := len(bits) - 1; i > 16; i-- {
		for bits[i] > 0 {
			j := i - 2
			for bits[j] == 0 {
				j--
			}
			bits[i] -= 2
			bits[i-1]++
			bits[j+1] += 2
			bits[j]--
		}
	}
	// Remove the reserved symbol: it has one of the longest codes.
	i := 16
	for bits[i] == 0 {
		i--
	}
	bits[i]--
	*s = huffSpec{}
	for l := 1; l <= 16; l++ {
		s.counts[l-1] = byte(bits[l])
	}
	// Symbols sorted by code length, then value; the reserved symbol
	// (256) sorts last and is dropped.
	order := scratch.order[:0]
	for sym := range 257 {
		if size[sym] > 0 {
			order = append(order, sym)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return size[a] - size[b] })
	for _, sym := range order {
		if sym != 256 {
			s.vals[s.n] = byte(sym)
			s.n++
		}
	}
	scratch.order = order
}

type optScratch struct {
	freq   [257]int64
	size   [257]int
	others [257]int
	order  []int
	bits   [258]int
}

// The standard tables of ITU-T T.81 Annex K.3 (tables K.3 to K.6), which
// MJPEG frames without a DHT segment are coded with, as hal/camera/mjpeg
// holds them. Table 0 is for luma, table 1 for chroma. Set once here,
// never modified.
var stdSpecs = func() (s [2][2]huffSpec) {
	for class := range 2 {
		for id := range 2 {
			counts, vals := mjpeg.StandardTable(byte(class), byte(id))
			s[class][id] = specOf(counts, vals)
		}
	}
	return s
}()

func specOf(counts [16]byte, vals []byte) huffSpec {
	s := huffSpec{counts: counts, n: len(vals)}
	copy(s.vals[:], vals)
	return s
}
