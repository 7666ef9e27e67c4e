package mask

import (
	"encoding/binary"
	"errors"
)

// readPad is how many zero bytes follow the unstuffed entropy-coded data
// so that the reader can always load 8 bytes; a block reads at most
// 64 × (16 + 16) bits = 256 bytes, and the reader checks after each block
// that it has not run past the data.
const readPad = 512

// bitReader reads Huffman codes from entropy-coded data whose byte
// stuffing has already been removed (see unstuff), at bit offset pos.
type bitReader struct {
	buf []byte // data followed by readPad zero bytes
	pos uint   // in bits
}

// peek returns the next 57 or more bits at the top of a 64-bit word.
func (r *bitReader) peek() uint64 {
	return binary.BigEndian.Uint64(r.buf[r.pos>>3:]) << (r.pos & 7)
}

var errBadCode = errors.New("mask: invalid Huffman code in the entropy-coded data: the image is damaged")

// decode reads one symbol of table t; it returns the symbol and the bits
// that follow it, at the top of a 64-bit word.
func (r *bitReader) decode(t *decTable) (byte, uint64, error) {
	w := r.peek()
	e := t.lut[w>>(64-lutBits)]
	if e == 0 {
		return r.decodeLong(t, w)
	}
	l := uint(e >> 8)
	r.pos += l
	return byte(e), w << l, nil
}

// decodeLong decodes a code longer than lutBits from w, the next bits.
func (r *bitReader) decodeLong(t *decTable, w uint64) (byte, uint64, error) {
	for l := lutBits + 1; l <= 16; l++ {
		code := int32(w >> (64 - uint(l)))
		if code <= t.maxcode[l] {
			r.pos += uint(l)
			return t.vals[byte(code+t.valptr[l])], w << uint(l), nil
		}
	}
	return 0, 0, errBadCode
}

// bitWriter holds the state of a scan's entropy coder between restart
// intervals; encodeScan keeps the bits in locals while it codes. Bytes
// are written with byte stuffing: every 0xFF is followed by 0x00.
type bitWriter struct {
	out []byte
	acc uint64 // pending bits in the low n bits
	n   uint
}

// flush pads the pending bits with ones to a byte boundary and writes
// them, as before a restart marker or the end of a scan (T.81 F.1.2.3).
func (w *bitWriter) flush() {
	if pad := (8 - w.n%8) % 8; pad > 0 {
		w.acc = w.acc<<pad | (1<<pad - 1)
		w.n += pad
	}
	for w.n > 0 {
		w.n -= 8
		b := byte(w.acc >> w.n)
		w.out = append(w.out, b)
		if b == 0xFF {
			w.out = append(w.out, 0)
		}
	}
	w.acc = 0
}

// appendStuffed appends the 4 bytes of x, each 0xFF followed by 0x00.
func appendStuffed(out []byte, x uint32) []byte {
	for s := 24; s >= 0; s -= 8 {
		b := byte(x >> s)
		out = append(out, b)
		if b == 0xFF {
			out = append(out, 0)
		}
	}
	return out
}
