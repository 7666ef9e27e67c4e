package mask

import "fmt"

// Blank returns a mid-grey baseline JPEG of width×height pixels, for the
// caller to store in place of a frame that Apply could not mask: a frame
// that cannot be masked is never kept unmasked. The image is grayscale
// and every 8×8 block is coded in 2 bits, so it is small (1080p: about
// 8 KB) and quick to make.
func Blank(width, height int) ([]byte, error) {
	if width <= 0 || height <= 0 || width > MaxSide || height > MaxSide {
		return nil, fmt.Errorf("mask: blank frame size %dx%d: width and height must be 1 to %d", width, height, MaxSide)
	}
	blocks := ((width + 7) / 8) * ((height + 7) / 8)
	out := make([]byte, 0, 200+blocks/4)
	out = append(out, 0xFF, mSOI)
	// One quantisation table of ones (any table decodes DC 0 to grey).
	out = append(out, 0xFF, 0xDB, 0, 67, 0)
	for range 64 {
		out = append(out, 1)
	}
	out = append(out, 0xFF, mSOF0, 0, 11, 8,
		byte(height>>8), byte(height), byte(width>>8), byte(width),
		1, 1, 0x11, 0)
	// A DC table holding only category 0 and an AC table holding only
	// EOB, each as the 1-bit code "0".
	out = append(out, 0xFF, mDHT, 0, 2+2*17+2,
		0x00, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	out = append(out, 0xFF, mSOS, 0, 8, 1, 1, 0x00, 0, 63, 0)
	// Each block: DC difference 0 ("0") then EOB ("0").
	bits := 2 * blocks
	for range bits / 8 {
		out = append(out, 0)
	}
	if r := bits % 8; r != 0 {
		out = append(out, byte(1<<(8-r)-1)) // padded with ones
	}
	return append(out, 0xFF, mEOI), nil
}
