package footagetest

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
)

// JPEG encodes a w×h test picture whose content depends on n, so frames
// differ; quality is the JPEG quality (1-100).
func JPEG(w, h, n, quality int) []byte {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Y[y*img.YStride+x] = uint8((x*7 + y*3 + n*11 + (x*y)%17*n) & 0xff)
		}
	}
	for i := range img.Cb {
		img.Cb[i] = uint8(128 + n%32)
		img.Cr[i] = uint8(100 + i%64)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: quality}); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// Solid encodes a w×h picture of one colour.
func Solid(w, h int, c color.Color) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// Frames returns n MJPEG frames at fps from start, cycling through the
// pictures given.
func Frames(start time.Time, fps, n int, pics [][]byte, w, h int) []camera.Frame {
	out := make([]camera.Frame, n)
	step := time.Second / time.Duration(fps)
	for i := range out {
		out[i] = camera.Frame{Data: pics[i%len(pics)], Codec: camera.MJPEG, Time: start.Add(time.Duration(i) * step), Width: w, Height: h}
	}
	return out
}
