package motion

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
)

// Thumbnail encodes a 1/8-scale luma image (an Event's Peak) as a small
// greyscale JPEG for the control room: 240×135 for a 1080p camera, a few
// kilobytes. Images wider than maxWidth are first reduced by averaging
// (maxWidth 0 means 320). quality is the JPEG quality, 1-100 (0 means 60).
func Thumbnail(img *image.Gray, maxWidth, quality int) ([]byte, error) {
	if img == nil || img.Rect.Empty() {
		return nil, errors.New("motion: thumbnail of an empty image: pass an Event's Peak")
	}
	if maxWidth == 0 {
		maxWidth = 320
	}
	if quality == 0 {
		quality = 60
	}
	if maxWidth < 1 || quality < 1 || quality > 100 {
		return nil, fmt.Errorf("motion: thumbnail width %d or quality %d out of range: the width must be positive, the quality 1-100", maxWidth, quality)
	}
	src := img
	if f := (img.Rect.Dx() + maxWidth - 1) / maxWidth; f > 1 {
		src = shrink(img, f)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, src, &jpeg.Options{Quality: quality}); err != nil {
		return nil, fmt.Errorf("motion: thumbnail: %w", err)
	}
	return b.Bytes(), nil
}

// shrink reduces img by an integer factor f, averaging f×f pixels.
func shrink(img *image.Gray, f int) *image.Gray {
	w, h := img.Rect.Dx()/f, max(img.Rect.Dy()/f, 1)
	out := image.NewGray(image.Rect(0, 0, max(w, 1), h))
	for y := 0; y < out.Rect.Dy(); y++ {
		for x := 0; x < out.Rect.Dx(); x++ {
			sum, n := 0, 0
			for yy := y * f; yy < min(y*f+f, img.Rect.Dy()); yy++ {
				for xx := x * f; xx < min(x*f+f, img.Rect.Dx()); xx++ {
					sum += int(img.Pix[img.PixOffset(img.Rect.Min.X+xx, img.Rect.Min.Y+yy)])
					n++
				}
			}
			out.Pix[y*out.Stride+x] = uint8((sum + n/2) / max(n, 1))
		}
	}
	return out
}
