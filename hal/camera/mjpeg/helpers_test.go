package mjpeg

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

// testJPEG encodes a w×h picture whose content depends on seed, so that
// frames differ.
func testJPEG(t testing.TB, w, h, seed int) []byte {
	t.Helper()
	m := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for y := range h {
		for x := range w {
			m.Y[m.YOffset(x, y)] = uint8(x*7 + y*3 + seed*31)
		}
	}
	for i := range m.Cb {
		m.Cb[i] = uint8(i + seed)
		m.Cr[i] = uint8(3*i - seed)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// segment builds a marker segment with payload p.
func segment(marker byte, p []byte) []byte {
	b := []byte{0xFF, marker}
	b = binary.BigEndian.AppendUint16(b, uint16(len(p)+2))
	return append(b, p...)
}

// withThumbnail inserts, after the SOI of img, an APP1 segment holding a
// whole JPEG thumbnail (with its own SOI and EOI), as EXIF does.
func withThumbnail(t testing.TB, img []byte) []byte {
	thumb := testJPEG(t, 16, 16, 99)
	app1 := segment(0xE1, append([]byte("Exif\x00\x00"), thumb...))
	out := append([]byte{}, img[:2]...)
	out = append(out, app1...)
	return append(out, img[2:]...)
}

// withoutHuffman removes the DHT segments from img, as UVC cameras send
// frames.
func withoutHuffman(t testing.TB, img []byte) []byte {
	t.Helper()
	out := append([]byte{}, img[:2]...)
	i := 2
	for {
		if img[i] != 0xFF {
			t.Fatalf("no marker at %d", i)
		}
		m := img[i+1]
		if m == mSOS {
			return append(out, img[i:]...)
		}
		n := int(binary.BigEndian.Uint16(img[i+2:]))
		if m != mDHT {
			out = append(out, img[i:i+2+n]...)
		}
		i += 2 + n
	}
}

// multiScan builds a structurally valid image with two scans and a DHT
// between them, as progressive images have. The scanner does not decode,
// so the scan data need only obey the stuffing rules.
func multiScan() []byte {
	b := []byte{0xFF, mSOI}
	b = append(b, segment(mSOF0+2, []byte{8, 0, 32, 0, 48, 1, 1, 0x11, 0})...)
	b = append(b, segment(mDHT, make([]byte, 17))...)
	b = append(b, segment(mSOS, []byte{1, 1, 0, 0, 63, 0})...)
	b = append(b, 1, 2, 0xFF, 0x00, 3, 0xFF, mRST0, 4)
	b = append(b, segment(mDHT, make([]byte, 17))...)
	b = append(b, segment(mSOS, []byte{1, 1, 0, 1, 63, 0})...)
	b = append(b, 5, 6, 0xFF, 0xFF, 0x00, 7)
	return append(b, 0xFF, mEOI)
}

// multipart frames imgs as ffmpeg's mpjpeg muxer does.
func multipart(boundary string, withLength bool, imgs ...[]byte) []byte {
	var b bytes.Buffer
	for _, img := range imgs {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: image/jpeg\r\n", boundary)
		if withLength {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(img))
		}
		b.WriteString("\r\n")
		b.Write(img)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// pixels flattens a decoded picture for comparison.
func pixels(m image.Image) []byte {
	var out []byte
	b := m.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA)
			out = append(out, c.R, c.G, c.B)
		}
	}
	return out
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// result is what reading a whole stream gave.
type result struct {
	frames  [][]byte
	bad     []string
	err     error
	skipped uint64
}

// readAll reads frames until the reader fails, cloning each frame.
func readAll(t testing.TB, r *Reader) result {
	t.Helper()
	var res result
	for i := 0; i < 10000; i++ {
		f, info, err := r.Next()
		if err != nil {
			if bf, ok := err.(*BadFrameError); ok {
				res.bad = append(res.bad, bf.Reason)
				continue
			}
			res.err = err
			res.skipped = r.Skipped()
			return res
		}
		if info.Len != len(f) {
			t.Fatalf("frame %d: Info.Len %d, frame is %d bytes", len(res.frames), info.Len, len(f))
		}
		res.frames = append(res.frames, bytes.Clone(f))
	}
	t.Fatal("reader never ended")
	return res
}
