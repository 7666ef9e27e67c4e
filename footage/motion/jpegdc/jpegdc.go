// Package jpegdc decodes the DC coefficients of baseline JPEG images: the
// mean of every 8×8 luma block, as a 1/8-scale grey image, without inverse
// DCT, without colour conversion and without decoding chroma more than it
// must be to skip it. Motion detection and thumbnails need no more, and on a
// Pi-class board a full decode of every 1080p frame costs more than a core.
//
// Supported: baseline and extended sequential Huffman JPEG (SOF0, SOF1),
// 8-bit samples, grayscale and YCbCr with any sampling factors (4:4:4,
// 4:2:2, 4:2:0, ...), interleaved or separate scans, restart intervals
// (DRI, RSTn) and byte stuffing. Frames without Huffman tables, as UVC
// cameras send them, are decoded with the standard tables of ITU-T T.81
// Annex K.3 (via mjpeg.WithHuffmanTables). Progressive (SOF2), lossless
// and arithmetic-coded images are refused with an error.
//
// Each output pixel is the block's dequantised DC coefficient divided by
// 8, plus 128, clamped to 0-255: the mean of the block's decoded pixels up
// to rounding. Output pixel (x, y) covers input pixels 8x..8x+7, 8y..8y+7 of
// the luma plane; the image is ceil(w/8) × ceil(h/8) for the usual case
// where luma has the highest sampling factor.
//
// Malformed input never panics and never loops without consuming input:
// the work done is bounded by the size of the input.
package jpegdc

import (
	"errors"
	"fmt"
	"image"

	"github.com/outpost-cctv/outpost/hal/camera/mjpeg"
)

// MaxSide is the largest width or height accepted, so a damaged header
// cannot make the decoder allocate without bound.
const MaxSide = 16384

// ErrProgressive is returned for progressive JPEG (SOF2). Cameras do not
// send it; a file that is progressive must be re-encoded as baseline.
var ErrProgressive = errors.New("jpegdc: progressive JPEG (SOF2) is not supported: re-encode the image as baseline")

// errNoTables is returned internally when a scan uses a Huffman table the
// image does not define; Decode then retries with the standard tables.
var errNoTables = errors.New("jpegdc: scan uses a Huffman table the image does not define")

const (
	mSOF0 = 0xC0
	mSOF1 = 0xC1
	mSOF2 = 0xC2
	mDHT  = 0xC4
	mDAC  = 0xCC
	mRST0 = 0xD0
	mRST7 = 0xD7
	mSOI  = 0xD8
	mEOI  = 0xD9
	mSOS  = 0xDA
	mDQT  = 0xDB
	mDNL  = 0xDC
	mDRI  = 0xDD
	mTEM  = 0x01
)

type component struct {
	id     byte
	h, v   int
	tq     int
	td, ta int // Huffman tables of the current scan
	pred   int32
}

// Decoder decodes images one after another, reusing its tables and
// buffers: in steady state Decode allocates nothing. A Decoder is not safe
// for concurrent use.
type Decoder struct {
	// Per-image state, reset by every Decode.
	width, height int
	comps         [4]component
	ncomp         int
	hmax, vmax    int
	haveFrame     bool
	qdc           [4]int32
	haveQ         [4]bool
	dc, ac        [4]*huffTable // nil where the image defines no table
	restart       int
	lumaDone      bool

	dcTab, acTab [4]huffTable
	// std holds the standard tables once a frame without tables has been
	// seen; stdDC/stdAC index into it.
	std       [2][2]huffTable // [class][id]
	haveStd   bool
	learnStd  bool
	br        bitReader
	scanComps [4]int
	scanNcomp int
}

// Decode returns the 1/8-scale luma image of data. It allocates a new
// Decoder; use a Decoder to decode many frames without allocating.
func Decode(data []byte) (*image.Gray, error) {
	var d Decoder
	return d.Decode(data, nil)
}

// Decode decodes data into dst, reusing dst's pixels when its size is
// right (otherwise a new image is allocated), and returns the image.
func (d *Decoder) Decode(data []byte, dst *image.Gray) (*image.Gray, error) {
	out, err := d.decode(data, dst)
	if errors.Is(err, errNoTables) && !d.haveStd {
		fixed, ferr := mjpeg.WithHuffmanTables(data)
		if ferr != nil || len(fixed) == len(data) {
			return nil, err
		}
		d.learnStd = true
		out, err = d.decode(fixed, dst)
		d.learnStd = false
	}
	return out, err
}

func (d *Decoder) reset() {
	d.width, d.height, d.ncomp, d.hmax, d.vmax = 0, 0, 0, 0, 0
	d.haveFrame, d.lumaDone = false, false
	d.haveQ = [4]bool{}
	d.dc, d.ac = [4]*huffTable{}, [4]*huffTable{}
	d.restart = 0
}

func (d *Decoder) decode(data []byte, dst *image.Gray) (*image.Gray, error) {
	d.reset()
	if len(data) < 2 || data[0] != 0xFF || data[1] != mSOI {
		return nil, errors.New("jpegdc: not a JPEG image (no SOI marker at the start)")
	}
	i := 2
	for {
		// Find the next marker, skipping fill bytes.
		if i+1 >= len(data) {
			return nil, errTruncated("before the end of the image")
		}
		if data[i] != 0xFF {
			return nil, fmt.Errorf("jpegdc: offset %d: expected a marker, found 0x%02x: the image is damaged", i, data[i])
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
			return nil, errTruncated("in a marker segment")
		}
		n := int(data[i])<<8 | int(data[i+1])
		if n < 2 || i+n > len(data) {
			return nil, errTruncated(fmt.Sprintf("in marker 0x%02x's segment", m))
		}
		seg := data[i+2 : i+n]
		i += n
		var err error
		switch {
		case m == mSOF0 || m == mSOF1:
			err = d.parseSOF(seg)
		case m == mSOF2:
			return nil, ErrProgressive
		case m >= 0xC3 && m <= 0xCF && m != mDHT && m != mDAC:
			return nil, fmt.Errorf("jpegdc: frame type SOF%d is not supported (only baseline and extended sequential Huffman): the camera must send baseline JPEG", m-0xC0)
		case m == mDAC:
			return nil, errors.New("jpegdc: arithmetic coding is not supported: the camera must send baseline JPEG")
		case m == mDHT:
			err = d.parseDHT(seg)
		case m == mDQT:
			err = d.parseDQT(seg)
		case m == mDRI:
			if len(seg) != 2 {
				return nil, errors.New("jpegdc: DRI segment of the wrong length: the image is damaged")
			}
			d.restart = int(seg[0])<<8 | int(seg[1])
		case m == mSOS:
			if !d.haveFrame {
				return nil, errors.New("jpegdc: scan before the frame header (SOF): the image is damaged")
			}
			if dst == nil || dst.Rect.Dx() != d.outW() || dst.Rect.Dy() != d.outH() {
				dst = image.NewGray(image.Rect(0, 0, d.outW(), d.outH()))
			}
			i, err = d.scan(data, i, seg, dst)
			if err == nil && d.lumaDone {
				// Luma is all we need; the rest of the image is not read.
				return dst, nil
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, errors.New("jpegdc: image has no scan holding luma: the image is damaged")
}

func errTruncated(where string) error {
	return fmt.Errorf("jpegdc: image truncated %s: the frame was cut short in transfer; skip it", where)
}

func (d *Decoder) outW() int {
	c := d.comps[0]
	return ((d.width*c.h+d.hmax-1)/d.hmax + 7) / 8
}

func (d *Decoder) outH() int {
	c := d.comps[0]
	return ((d.height*c.v+d.vmax-1)/d.vmax + 7) / 8
}

func (d *Decoder) parseSOF(seg []byte) error {
	if d.haveFrame {
		return errors.New("jpegdc: two frame headers (SOF) in one image: the image is damaged")
	}
	if len(seg) < 6 {
		return errors.New("jpegdc: frame header (SOF) too short: the image is damaged")
	}
	if seg[0] != 8 {
		return fmt.Errorf("jpegdc: %d-bit samples are not supported: the camera must send 8-bit JPEG", seg[0])
	}
	d.height = int(seg[1])<<8 | int(seg[2])
	d.width = int(seg[3])<<8 | int(seg[4])
	n := int(seg[5])
	if d.width == 0 || d.height == 0 {
		return fmt.Errorf("jpegdc: image size %dx%d: zero height (DNL) is not supported", d.width, d.height)
	}
	if d.width > MaxSide || d.height > MaxSide {
		return fmt.Errorf("jpegdc: image size %dx%d is larger than %dx%d", d.width, d.height, MaxSide, MaxSide)
	}
	if n != 1 && n != 3 {
		return fmt.Errorf("jpegdc: %d components: only grayscale (1) and YCbCr (3) are supported", n)
	}
	if len(seg) != 6+3*n {
		return errors.New("jpegdc: frame header (SOF) of the wrong length: the image is damaged")
	}
	d.ncomp = n
	d.hmax, d.vmax = 1, 1
	for k := 0; k < n; k++ {
		p := seg[6+3*k:]
		c := component{id: p[0], h: int(p[1] >> 4), v: int(p[1] & 15), tq: int(p[2])}
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.tq > 3 {
			return fmt.Errorf("jpegdc: component %d: sampling %dx%d or table %d out of range: the image is damaged", k, c.h, c.v, c.tq)
		}
		for j := 0; j < k; j++ {
			if d.comps[j].id == c.id {
				return errors.New("jpegdc: two components with the same id: the image is damaged")
			}
		}
		if n == 1 {
			// A single-component scan is never interleaved: blocks
			// follow each other whatever the sampling factors say.
			c.h, c.v = 1, 1
		}
		d.comps[k] = c
		d.hmax, d.vmax = max(d.hmax, c.h), max(d.vmax, c.v)
	}
	d.haveFrame = true
	return nil
}

func (d *Decoder) parseDQT(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, int(seg[0]&15)
		if tq > 3 || pq > 1 {
			return errors.New("jpegdc: quantisation table (DQT) header out of range: the image is damaged")
		}
		size := 1 + 64*(1+int(pq))
		if len(seg) < size {
			return errors.New("jpegdc: quantisation table (DQT) too short: the image is damaged")
		}
		if pq == 0 {
			d.qdc[tq] = int32(seg[1])
		} else {
			d.qdc[tq] = int32(seg[1])<<8 | int32(seg[2])
		}
		d.haveQ[tq] = true
		seg = seg[size:]
	}
	return nil
}

func (d *Decoder) parseDHT(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return errors.New("jpegdc: Huffman table (DHT) too short: the image is damaged")
		}
		class, id := seg[0]>>4, int(seg[0]&15)
		if class > 1 || id > 3 {
			return errors.New("jpegdc: Huffman table (DHT) header out of range: the image is damaged")
		}
		var counts [16]byte
		copy(counts[:], seg[1:17])
		total := 0
		for _, c := range counts {
			total += int(c)
		}
		if total > 256 || len(seg) < 17+total {
			return errors.New("jpegdc: Huffman table (DHT) too short: the image is damaged")
		}
		t := &d.dcTab[id]
		if class == 1 {
			t = &d.acTab[id]
		}
		if err := t.build(&counts, seg[17:17+total]); err != nil {
			return err
		}
		if class == 0 {
			d.dc[id] = t
		} else {
			d.ac[id] = t
		}
		if d.learnStd && id < 2 {
			d.std[class][id] = *t
		}
		seg = seg[17+total:]
	}
	if d.learnStd {
		d.haveStd = true
	}
	return nil
}

// scan decodes the scan whose header is seg and whose entropy-coded data
// starts at data[i]. It returns the offset of the marker that ends it.
// scanSetup reads the scan header seg and readies the scan's tables; it
// returns the scan's MCU grid, or skip true and the offset of the marker
// after the scan when the scan holds no luma. Decoder and EnergyDecoder
// share it.
func (d *Decoder) scanSetup(data []byte, i int, seg []byte) (mcuW, mcuH, next int, skip bool, err error) {
	if len(seg) < 1 {
		return 0, 0, 0, false, errors.New("jpegdc: scan header (SOS) too short: the image is damaged")
	}
	ns := int(seg[0])
	if ns < 1 || ns > d.ncomp || len(seg) != 4+2*ns {
		return 0, 0, 0, false, errors.New("jpegdc: scan header (SOS) of the wrong length: the image is damaged")
	}
	if seg[1+2*ns] != 0 || seg[2+2*ns] != 63 || seg[3+2*ns] != 0 {
		return 0, 0, 0, false, errors.New("jpegdc: scan is not sequential (spectral selection or approximation set): progressive images are not supported")
	}
	hasLuma := false
	blocks := 0
	for k := 0; k < ns; k++ {
		id, tables := seg[1+2*k], seg[2+2*k]
		ci := -1
		for j := 0; j < d.ncomp; j++ {
			if d.comps[j].id == id {
				ci = j
			}
		}
		if ci < 0 {
			return 0, 0, 0, false, fmt.Errorf("jpegdc: scan names component %d, which the frame does not have: the image is damaged", id)
		}
		c := &d.comps[ci]
		c.td, c.ta = int(tables>>4), int(tables&15)
		if c.td > 3 || c.ta > 3 {
			return 0, 0, 0, false, errors.New("jpegdc: scan uses a Huffman table number above 3: the image is damaged")
		}
		d.scanComps[k] = ci
		if ci == 0 {
			hasLuma = true
		}
		blocks += c.h * c.v
	}
	if ns > 1 && blocks > 10 {
		return 0, 0, 0, false, errors.New("jpegdc: more than 10 blocks per MCU: the image is damaged")
	}
	d.scanNcomp = ns
	if !hasLuma {
		// Only luma is wanted: skip the entropy-coded data unread.
		return 0, 0, skipScan(data, i), true, nil
	}
	for k := 0; k < ns; k++ {
		c := &d.comps[d.scanComps[k]]
		if d.dc[c.td] == nil || d.ac[c.ta] == nil {
			if !d.haveStd || c.td > 1 || c.ta > 1 {
				return 0, 0, 0, false, errNoTables
			}
			if d.dc[c.td] == nil {
				d.dc[c.td] = &d.std[0][c.td]
			}
			if d.ac[c.ta] == nil {
				d.ac[c.ta] = &d.std[1][c.ta]
			}
		}
		c.pred = 0
	}
	if !d.haveQ[d.comps[0].tq] {
		return 0, 0, 0, false, errors.New("jpegdc: luma quantisation table missing: the image is damaged")
	}

	if ns == 1 {
		// Non-interleaved: one block per MCU over the component's own
		// block grid.
		mcuW, mcuH = d.outW(), d.outH()
	} else {
		mcuW = (d.width + 8*d.hmax - 1) / (8 * d.hmax)
		mcuH = (d.height + 8*d.vmax - 1) / (8 * d.vmax)
	}
	return mcuW, mcuH, 0, false, nil
}

func (d *Decoder) scan(data []byte, i int, seg []byte, dst *image.Gray) (int, error) {
	mcuW, mcuH, next, skip, err := d.scanSetup(data, i, seg)
	if err != nil || skip {
		return next, err
	}
	ns := d.scanNcomp
	q := d.comps[0].tq
	qdc := d.qdc[q]
	ow, oh := dst.Rect.Dx(), dst.Rect.Dy()
	br := &d.br
	br.reset(data, i)
	todo := d.restart
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
						if err := br.skipAC(ac); err != nil {
							return 0, err
						}
						if ci != 0 {
							continue
						}
						bx, by := mx*bh+h, my*bv+v
						if bx < ow && by < oh {
							val := (c.pred*qdc+4)>>3 + 128
							dst.Pix[by*dst.Stride+bx] = clamp(val)
						}
					}
				}
			}
			if br.pad > maxPad {
				return 0, errTruncated("in the entropy-coded data")
			}
		}
	}
	if !br.marker {
		// The data ran out before a marker: the image was cut short.
		if br.pos >= len(data) {
			return 0, errTruncated("after the last block")
		}
	}
	d.lumaDone = true
	return skipScan(data, br.pos), nil
}

func clamp(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// extend turns the s-bit value v into the signed difference it codes
// (T.81 F.2.2.1).
func extend(v int32, s uint) int32 {
	if s == 0 {
		return 0
	}
	if v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return v
}

// skipScan returns the offset of the first marker at or after i that is
// neither a stuffed 0xFF nor a restart marker: the end of a scan's
// entropy-coded data (or len(data)).
func skipScan(data []byte, i int) int {
	for i+1 < len(data) {
		if data[i] == 0xFF {
			m := data[i+1]
			if m != 0 && m != 0xFF && (m < mRST0 || m > mRST7) {
				return i
			}
			if m == 0xFF {
				i++
				continue
			}
			i += 2
			continue
		}
		i++
	}
	return len(data)
}
