package jpegdc

import (
	"encoding/binary"
	"errors"
)

// lutBits is the length of the codes decoded by a single table look-up;
// longer codes (rare) fall back to the canonical maxcode search.
const lutBits = 9

// maxPad is how many zero bytes the bit reader may invent past the end of
// the entropy-coded data before the scan is declared truncated. A valid
// scan needs at most the few bytes the reader looks ahead.
const maxPad = 64

// huffTable is a decoding table for one Huffman table of T.81 Annex C.
type huffTable struct {
	// lut maps the next lutBits bits to length<<8 | value, or 0 when the
	// code is longer than lutBits.
	lut [1 << lutBits]uint16
	// maxcode[l] is the largest code of length l, -1 if none; valptr[l]
	// is added to a code of length l to index vals.
	maxcode [17]int32
	valptr  [17]int32
	vals    [256]byte
	// skip serves skipAC: for the next skipBits bits, when an AC code and
	// its extra bits both fit in them, their total length<<8 | the
	// coefficients they advance (1-16), or skipEOB for an end of block;
	// 0 otherwise (decode the slow way).
	skip [1 << skipBits]uint16
}

// skipBits is the look-up length of huffTable.skip: a code and its extra
// bits within 12 bits cover nearly every coefficient of camera JPEGs.
const skipBits = 12

// skipEOB marks an end-of-block code in huffTable.skip.
const skipEOB = 0x80

func (t *huffTable) build(counts *[16]byte, vals []byte) error {
	*t = huffTable{}
	copy(t.vals[:], vals)
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		t.valptr[l] = k - code
		t.maxcode[l] = -1
		if n > 0 {
			if code+n > 1<<l {
				return errors.New("jpegdc: Huffman table (DHT) has more codes than fit: the image is damaged")
			}
			if l <= lutBits {
				for j := int32(0); j < n; j++ {
					c := code + j
					shift := lutBits - l
					e := uint16(l)<<8 | uint16(vals[k+j])
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
	t.buildSkip(counts)
	return nil
}

// buildSkip fills t.skip from the code lengths and values.
func (t *huffTable) buildSkip(counts *[16]byte) {
	code, k := 0, 0
	for l := 1; l <= skipBits; l++ {
		n := int(counts[l-1])
		for j := 0; j < n; j++ {
			rs := t.vals[k+j]
			r, size := int(rs>>4), int(rs&15)
			var e uint16
			switch {
			case size == 0 && r != 15:
				e = uint16(l)<<8 | skipEOB
			case size == 0:
				e = uint16(l)<<8 | 16
			case l+size <= skipBits:
				e = uint16(l+size)<<8 | uint16(r+1)
			default:
				continue
			}
			c := code + j
			shift := skipBits - l
			for p := c << shift; p < (c+1)<<shift; p++ {
				t.skip[p] = e
			}
		}
		code += n
		k += n
		code <<= 1
	}
}

// bitReader reads the entropy-coded data of a scan: bits from the top of
// acc, with byte stuffing removed. At a marker (or the end of the data) it
// feeds zero bytes, counted in pad, and stops advancing.
type bitReader struct {
	data   []byte
	pos    int
	acc    uint64
	n      uint
	marker bool // pos is at a marker that ends the entropy-coded data
	pad    int
}

func (b *bitReader) reset(data []byte, pos int) {
	*b = bitReader{data: data, pos: pos}
}

func (b *bitReader) fill() {
	// Fast path: the next 8 bytes hold no 0xFF (so no stuffing and no
	// marker): take as many whole bytes as fit at once.
	if !b.marker && b.pos+8 <= len(b.data) {
		w := binary.BigEndian.Uint64(b.data[b.pos:])
		if v := ^w; (v-0x0101010101010101)&^v&0x8080808080808080 == 0 {
			k := (64 - b.n) >> 3 // whole bytes that fit
			b.acc |= w >> (64 - 8*k) << (64 - 8*k - b.n)
			b.n += 8 * k
			b.pos += int(k)
			return
		}
	}
	for b.n <= 56 {
		var c byte
		if b.marker || b.pos >= len(b.data) {
			b.pad++
		} else {
			c = b.data[b.pos]
			if c == 0xFF {
				if b.pos+1 < len(b.data) && b.data[b.pos+1] == 0 {
					b.pos += 2
				} else {
					b.marker = true
					c = 0
					b.pad++
				}
			} else {
				b.pos++
			}
		}
		b.acc |= uint64(c) << (56 - b.n)
		b.n += 8
	}
}

// decode reads one Huffman-coded value.
func (b *bitReader) decode(t *huffTable) (byte, error) {
	if b.n < 16 {
		b.fill()
	}
	if e := t.lut[b.acc>>(64-lutBits)]; e != 0 {
		l := uint(e >> 8)
		b.acc <<= l
		b.n -= l
		return byte(e), nil
	}
	for l := lutBits + 1; l <= 16; l++ {
		code := int32(b.acc >> (64 - uint(l)))
		if code <= t.maxcode[l] {
			b.acc <<= uint(l)
			b.n -= uint(l)
			return t.vals[(code+t.valptr[l])&0xFF], nil
		}
	}
	return 0, errors.New("jpegdc: invalid Huffman code: the image is damaged")
}

// receive reads s bits (s ≤ 16) as an unsigned number.
func (b *bitReader) receive(s uint) int32 {
	if s == 0 {
		return 0
	}
	if b.n < s {
		b.fill()
	}
	v := int32(b.acc >> (64 - s))
	b.acc <<= s
	b.n -= s
	return v
}

// skipAC reads a block's 63 AC coefficients and throws them away.
func (b *bitReader) skipAC(t *huffTable) error {
	for k := 1; k < 64; {
		if b.n < skipBits {
			b.fill()
		}
		if e := t.skip[b.acc>>(64-skipBits)]; e != 0 {
			l := uint(e >> 8)
			b.acc <<= l
			b.n -= l
			if e&skipEOB != 0 {
				return nil
			}
			k += int(e & 0x1f)
			continue
		}
		rs, err := b.decode(t)
		if err != nil {
			return err
		}
		r, s := int(rs>>4), uint(rs&15)
		if s == 0 {
			if r != 15 {
				return nil // end of block
			}
			k += 16
			continue
		}
		k += r + 1
		if b.n < s {
			b.fill()
		}
		b.acc <<= s
		b.n -= s
	}
	return nil
}

// restartAt drops the bits left in the current interval and moves past
// the next restart marker. An out-of-order marker is tolerated: a damaged
// interval only spoils its own blocks.
func (b *bitReader) restartAt() error {
	i := b.pos
	for i+1 < len(b.data) {
		if b.data[i] == 0xFF {
			m := b.data[i+1]
			if m >= mRST0 && m <= mRST7 {
				b.reset(b.data, i+2)
				return nil
			}
			if m != 0 && m != 0xFF {
				break
			}
		}
		i++
	}
	return errors.New("jpegdc: restart marker missing: the image is damaged")
}
