package clip

import (
	"encoding/base64"
	"fmt"
	"math/bits"
)

// Bitmap records which chunks of a transfer have arrived.
type Bitmap struct {
	n    int
	bits []byte
}

// NewBitmap returns an empty bitmap of n chunks.
func NewBitmap(n int) Bitmap { return Bitmap{n: n, bits: make([]byte, (n+7)/8)} }

// Len is the number of chunks.
func (b Bitmap) Len() int { return b.n }

// Has reports whether chunk i arrived.
func (b Bitmap) Has(i int) bool { return i >= 0 && i < b.n && b.bits[i/8]&(1<<(i%8)) != 0 }

// Set marks chunk i.
func (b Bitmap) Set(i int) { b.bits[i/8] |= 1 << (i % 8) }

// Count is the number of chunks marked.
func (b Bitmap) Count() int {
	c := 0
	for _, x := range b.bits {
		c += bits.OnesCount8(x)
	}
	return c
}

// Prefix is the number of chunks marked from the start without a gap.
func (b Bitmap) Prefix() int {
	i := 0
	for i < b.n && b.Has(i) {
		i++
	}
	return i
}

// Encode packs the bitmap for a transfer.start request.
func (b Bitmap) Encode() string { return base64.RawStdEncoding.EncodeToString(b.bits) }

// DecodeBitmap unpacks a bitmap of n chunks; an empty string is an empty
// bitmap.
func DecodeBitmap(s string, n int) (Bitmap, error) {
	b := NewBitmap(n)
	if s == "" {
		return b, nil
	}
	raw, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil || len(raw) != len(b.bits) {
		return Bitmap{}, fmt.Errorf("clip: received-chunk bitmap does not match %d chunks", n)
	}
	copy(b.bits, raw)
	if r := n % 8; r != 0 && len(raw) > 0 && raw[len(raw)-1]>>r != 0 {
		return Bitmap{}, fmt.Errorf("clip: received-chunk bitmap marks chunks beyond %d", n)
	}
	return b, nil
}
