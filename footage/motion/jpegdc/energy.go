package jpegdc

import (
	"errors"
	"fmt"
	"image"

	"github.com/outpost-cctv/outpost/hal/camera/mjpeg"
)

// Energy is how much fine detail the luma of an image holds: the sum of
// the absolute values of the dequantised AC coefficients of its blocks.
// A sharp picture has much more of it than the same picture out of focus,
// whose blocks are smooth; a brighter or more contrasted picture has more
// of it too, so compare it with a measure of the coarse contrast (the
// differences between neighbouring DC values) rather than on its own.
type Energy struct {
	// AC is the sum over the luma blocks of |AC coefficient| × its
	// quantiser, in the units of the coefficients (8 × grey levels).
	AC float64
	// Blocks is the number of luma blocks summed.
	Blocks int
}

// PerBlock returns the mean AC energy of a block, 0 for no blocks.
func (e Energy) PerBlock() float64 {
	if e.Blocks == 0 {
		return 0
	}
	return e.AC / float64(e.Blocks)
}

// EnergyDecoder decodes the same 1/8-scale luma image as Decoder and also
// measures its Energy. It must decode every AC coefficient of luma where
// Decoder only skips them, so it costs more than Decoder (see the package
// benchmarks) and is meant for the few frames a second a picture check
// looks at, not for every frame. It is not safe for concurrent use; in
// steady state Decode allocates nothing.
type EnergyDecoder struct {
	d   Decoder
	qac [4][64]int32 // quantisers in zig-zag order, as the coefficients come
}

// DecodeEnergy returns the 1/8-scale luma image of data and its Energy.
// It allocates a new EnergyDecoder.
func DecodeEnergy(data []byte) (*image.Gray, Energy, error) {
	var e EnergyDecoder
	return e.Decode(data, nil)
}

// Decode decodes data into dst as Decoder.Decode does and returns the
// image with the Energy of its luma.
func (e *EnergyDecoder) Decode(data []byte, dst *image.Gray) (*image.Gray, Energy, error) {
	out, en, err := e.decode(data, dst)
	d := &e.d
	if errors.Is(err, errNoTables) && !d.haveStd {
		fixed, ferr := mjpeg.WithHuffmanTables(data)
		if ferr != nil || len(fixed) == len(data) {
			return nil, Energy{}, err
		}
		d.learnStd = true
		out, en, err = e.decode(fixed, dst)
		d.learnStd = false
	}
	return out, en, err
}

// decode walks the markers as Decoder.decode does, keeping the whole
// quantisation tables and decoding luma scans with scanEnergy.
func (e *EnergyDecoder) decode(data []byte, dst *image.Gray) (*image.Gray, Energy, error) {
	d := &e.d
	d.reset()
	if len(data) < 2 || data[0] != 0xFF || data[1] != mSOI {
		return nil, Energy{}, errors.New("jpegdc: not a JPEG image (no SOI marker at the start)")
	}
	var en Energy
	i := 2
	for {
		if i+1 >= len(data) {
			return nil, Energy{}, errTruncated("before the end of the image")
		}
		if data[i] != 0xFF {
			return nil, Energy{}, fmt.Errorf("jpegdc: offset %d: expected a marker, found 0x%02x: the image is damaged", i, data[i])
		}
		m := data[i+1]
		if m == 0xFF {
			i++
			continue
		}
		i += 2
		if m == mEOI {
			break
		}
		if m == mTEM || (m >= mRST0 && m <= mRST7) || m == 0x00 {
			continue
		}
		if i+2 > len(data) {
			return nil, Energy{}, errTruncated("in a marker segment")
		}
		n := int(data[i])<<8 | int(data[i+1])
		if n < 2 || i+n > len(data) {
			return nil, Energy{}, errTruncated(fmt.Sprintf("in marker 0x%02x's segment", m))
		}
		seg := data[i+2 : i+n]
		i += n
		var err error
		switch {
		case m == mSOF0 || m == mSOF1:
			err = d.parseSOF(seg)
		case m == mSOF2:
			return nil, Energy{}, ErrProgressive
		case m >= 0xC3 && m <= 0xCF && m != mDHT && m != mDAC:
			return nil, Energy{}, fmt.Errorf("jpegdc: frame type SOF%d is not supported (only baseline and extended sequential Huffman): the camera must send baseline JPEG", m-0xC0)
		case m == mDAC:
			return nil, Energy{}, errors.New("jpegdc: arithmetic coding is not supported: the camera must send baseline JPEG")
		case m == mDHT:
			err = d.parseDHT(seg)
		case m == mDQT:
			if err = d.parseDQT(seg); err == nil {
				e.keepDQT(seg)
			}
		case m == mDRI:
			if len(seg) != 2 {
				return nil, Energy{}, errors.New("jpegdc: DRI segment of the wrong length: the image is damaged")
			}
			d.restart = int(seg[0])<<8 | int(seg[1])
		case m == mSOS:
			if !d.haveFrame {
				return nil, Energy{}, errors.New("jpegdc: scan before the frame header (SOF): the image is damaged")
			}
			if dst == nil || dst.Rect.Dx() != d.outW() || dst.Rect.Dy() != d.outH() {
				dst = image.NewGray(image.Rect(0, 0, d.outW(), d.outH()))
			}
			i, err = e.scan(data, i, seg, dst, &en)
			if err == nil && d.lumaDone {
				return dst, en, nil
			}
		}
		if err != nil {
			return nil, Energy{}, err
		}
	}
	return nil, Energy{}, errors.New("jpegdc: image has no scan holding luma: the image is damaged")
}

// keepDQT records the AC quantisers of a DQT segment parseDQT has
// already checked.
func (e *EnergyDecoder) keepDQT(seg []byte) {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, int(seg[0]&15)
		q := &e.qac[tq]
		for k := 0; k < 64; k++ {
			if pq == 0 {
				q[k] = int32(seg[1+k])
			} else {
				q[k] = int32(seg[1+2*k])<<8 | int32(seg[2+2*k])
			}
		}
		seg = seg[1+64*(1+int(pq)):]
	}
}

// scan is Decoder.scan with the luma's AC coefficients decoded and summed
// into en instead of skipped.
func (e *EnergyDecoder) scan(data []byte, i int, seg []byte, dst *image.Gray, en *Energy) (int, error) {
	d := &e.d
	mcuW, mcuH, next, skip, err := d.scanSetup(data, i, seg)
	if err != nil || skip {
		return next, err
	}
	ns := d.scanNcomp
	q := d.comps[0].tq
	qdc := d.qdc[q]
	qac := &e.qac[q]
	ow, oh := dst.Rect.Dx(), dst.Rect.Dy()
	br := &d.br
	br.reset(data, i)
	todo := d.restart
	var sum int64
	n := 0
	for my := 0; my < mcuH; my++ {
		for mx := 0; mx < mcuW; mx++ {
			if d.restart > 0 {
				if todo == 0 {
					if err := br.restartAt(); err != nil {
						return 0, err
					}
					todo = d.restart
					for k := 0; k < ns; k++ {
						d.comps[d.scanComps[k]].pred = 0
					}
				}
				todo--
			}
			for k := 0; k < ns; k++ {
				ci := d.scanComps[k]
				c := &d.comps[ci]
				dc, ac := d.dc[c.td], d.ac[c.ta]
				bh, bv := c.h, c.v
				if ns == 1 {
					bh, bv = 1, 1
				}
				for v := 0; v < bv; v++ {
					for h := 0; h < bh; h++ {
						s, err := br.decode(dc)
						if err != nil {
							return 0, err
						}
						if s > 11 {
							return 0, errors.New("jpegdc: DC difference category above 11: the image is damaged")
						}
						c.pred += extend(br.receive(uint(s)), uint(s))
						if ci != 0 {
							if err := br.skipAC(ac); err != nil {
								return 0, err
							}
							continue
						}
						bx, by := mx*bh+h, my*bv+v
						if bx >= ow || by >= oh {
							// Padding blocks of a partial MCU: not
							// part of the picture.
							if err := br.skipAC(ac); err != nil {
								return 0, err
							}
							continue
						}
						a, err := br.sumAC(ac, qac)
						if err != nil {
							return 0, err
						}
						sum += a
						n++
						val := (c.pred*qdc+4)>>3 + 128
						dst.Pix[by*dst.Stride+bx] = clamp(val)
					}
				}
			}
			if br.pad > maxPad {
				return 0, errTruncated("in the entropy-coded data")
			}
		}
	}
	if !br.marker && br.pos >= len(data) {
		return 0, errTruncated("after the last block")
	}
	d.lumaDone = true
	en.AC, en.Blocks = float64(sum), n
	return skipScan(data, br.pos), nil
}

// sumAC reads a block's 63 AC coefficients and returns the sum of their
// dequantised absolute values.
func (b *bitReader) sumAC(t *huffTable, q *[64]int32) (int64, error) {
	var sum int64
	for k := 1; k < 64; {
		rs, err := b.decode(t)
		if err != nil {
			return 0, err
		}
		r, s := int(rs>>4), uint(rs&15)
		if s == 0 {
			if r != 15 {
				return sum, nil // end of block
			}
			k += 16
			continue
		}
		k += r
		v := extend(b.receive(s), s)
		if k < 64 {
			// Beyond the block (a damaged run) the value is read and
			// dropped, as Decoder does.
			sum += int64(max(v, -v)) * int64(q[k])
		}
		k++
	}
	return sum, nil
}
