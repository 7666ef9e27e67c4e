package mask

import (
	"errors"
	"slices"
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
// MJPEG frames without a DHT segment are coded with. Table 0 is for luma,
// table 1 for chroma. Set once here, never modified.
var stdSpecs = [2][2]huffSpec{
	{ // DC
		specOf([16]byte{0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
			[]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}),
		specOf([16]byte{0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
			[]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}),
	},
	{ // AC
		specOf([16]byte{0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d}, []byte{
			0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12,
			0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
			0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08,
			0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
			0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16,
			0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
			0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
			0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
			0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
			0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
			0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79,
			0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
			0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98,
			0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
			0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
			0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
			0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4,
			0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
			0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea,
			0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
			0xf9, 0xfa,
		}),
		specOf([16]byte{0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77}, []byte{
			0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21,
			0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
			0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91,
			0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
			0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34,
			0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
			0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38,
			0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
			0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58,
			0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
			0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78,
			0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
			0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96,
			0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
			0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
			0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
			0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2,
			0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
			0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9,
			0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
			0xf9, 0xfa,
		}),
	},
}

func specOf(counts [16]byte, vals []byte) huffSpec {
	s := huffSpec{counts: counts, n: len(vals)}
	copy(s.vals[:], vals)
	return s
}
