package v4l2

import (
	"image"
	"image/jpeg"
)

// yuyvQuality is the JPEG quality YUYV frames are encoded at.
const yuyvQuality = 80

// yuyvEncoder turns packed YUYV 4:2:2 frames into JPEG, reusing its
// picture between frames.
type yuyvEncoder struct {
	img  *image.YCbCr
	opts jpeg.Options
}

func newYUYVEncoder(w, h int) *yuyvEncoder {
	return &yuyvEncoder{
		img:  image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio422),
		opts: jpeg.Options{Quality: yuyvQuality},
	}
}

// encode appends the JPEG of a YUYV frame (rows of stride bytes) to dst.
// The frame must hold at least stride*height bytes, stride >= 2*width.
func (e *yuyvEncoder) encode(dst []byte, frame []byte, stride int) ([]byte, error) {
	deinterleave(e.img, frame, stride)
	w := appendWriter{b: dst}
	if err := jpeg.Encode(&w, e.img, &e.opts); err != nil {
		return dst, err
	}
	return w.b, nil
}

// deinterleave splits packed YUYV (Y0 U Y1 V per pair of pixels) into the
// planes of a 4:2:2 picture.
func deinterleave(m *image.YCbCr, frame []byte, stride int) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	for y := range h {
		row := frame[y*stride : y*stride+2*w]
		ys := m.Y[y*m.YStride : y*m.YStride+w]
		cb := m.Cb[y*m.CStride : y*m.CStride+w/2]
		cr := m.Cr[y*m.CStride : y*m.CStride+w/2]
		for x := 0; x+1 < w; x += 2 {
			p := row[2*x : 2*x+4]
			ys[x], cb[x/2], ys[x+1], cr[x/2] = p[0], p[1], p[2], p[3]
		}
	}
}

// appendWriter collects the encoder's output in a slice. It has the
// Flush and WriteByte methods image/jpeg looks for, so the encoder writes
// to it directly instead of through a bufio.Writer of its own.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

func (w *appendWriter) Flush() error { return nil }
