package mask

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	mbits "math/bits"
	"slices"
)

// Huffman selects the Huffman tables a Masker codes masked frames with.
type Huffman int

const (
	// HuffmanOptimal builds optimal tables from the statistics of the
	// masked frame (T.81 Annex K.2) and writes them in a DHT segment. It
	// is the default: see the package documentation for why.
	HuffmanOptimal Huffman = iota
	// HuffmanOwn keeps each of the frame's own tables (the standard
	// tables when the frame has no DHT) when it has a code for every
	// symbol the masked frame needs, and falls back to the standard table
	// otherwise.
	HuffmanOwn
	// HuffmanStandard always codes with the standard tables of T.81
	// Annex K.3.
	HuffmanStandard
)

func (h Huffman) String() string {
	switch h {
	case HuffmanOptimal:
		return "optimal"
	case HuffmanOwn:
		return "own"
	case HuffmanStandard:
		return "standard"
	}
	return fmt.Sprintf("Huffman(%d)", int(h))
}

// Stats describes the last frame a Masker applied its mask to.
type Stats struct {
	Geometry   Geometry
	MCUs       int  // MCUs in the frame
	MaskedMCUs int  // MCUs blanked
	Changed    bool // false when the frame was returned unchanged
	// DroppedSegments counts APPn segments left out because they hold
	// a thumbnail or preview image (JFIF, JFXX or an embedded JPEG such
	// as an Exif thumbnail), which would show what the mask hides.
	DroppedSegments int
}

// ErrProgressive is returned for progressive JPEG (SOF2), which cameras
// do not send as MJPEG.
var ErrProgressive = errors.New("mask: progressive JPEG (SOF2) is not supported: configure the camera for baseline MJPEG")

// Masker applies a Mask to JPEG frames. It keeps its buffers from frame
// to frame, so that in the steady state Apply allocates nothing. A Masker
// is not safe for concurrent use: give each goroutine its own.
type Masker struct {
	mask    *Mask
	huffman Huffman
	stats   Stats

	// Per frame.
	haveFrame            bool
	width, height        int
	ncomp, hmax, vmax    int
	comps                [4]comp
	restart              int
	inSpec               [2][4]huffSpec
	inDefined            [2][4]bool
	outSpec              [2][4]huffSpec
	outDefined           [2][4]bool
	drops                [][2]int // ranges of the frame left out of the output
	scanComps            [4]int
	ns                   int
	cellsGeom            Geometry
	cells                []bool
	cellsOK              bool
	anyMasked            bool
	dec                  [2][4]decTable
	enc                  [2][4]encTable
	freq                 [2][4][256]int32
	used                 [2][4]bool
	raw                  []byte // entropy-coded data of a scan, unstuffed
	ivEnd                []int  // end of each restart interval in raw
	ent                  []uint32
	br                   bitReader
	bw                   bitWriter
	opt                  optScratch
	chosen               huffSpec
	nxMCU, nyMCU         int
	scanMCUsX, scanMCUsY int
}

type comp struct {
	id              byte
	h, v            int
	bw, bh          int // blocks of the component per row and column
	td, ta          int
	predIn, predOut int32
	coded           bool
}

// NewMasker returns a Masker applying m (which must not be nil) with the
// default Huffman tables (HuffmanOptimal).
func NewMasker(m *Mask) *Masker {
	return &Masker{mask: m}
}

// SetHuffman selects the Huffman tables of masked frames.
func (mk *Masker) SetHuffman(h Huffman) { mk.huffman = h }

// Stats returns what the last successful Apply did.
func (mk *Masker) Stats() Stats { return mk.stats }

// Apply appends to dst[:0] frame with the mask applied and returns it;
// dst must not overlap frame. A frame of which the mask covers no MCU is
// returned unchanged (copied).
//
// On an error the frame could not be masked and nil is returned: the
// caller must not store or send the unmasked frame. It drops it, or
// stores Blank of the frame's size in its place. The error says what is
// wrong with the frame (truncated, damaged, progressive, not 8-bit, ...).
func (mk *Masker) Apply(dst, frame []byte) ([]byte, error) {
	out, err := mk.apply(dst[:0], frame)
	if err != nil {
		mk.stats = Stats{}
		return nil, err
	}
	return out, nil
}

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
	mDRI  = 0xDD
	mAPP0 = 0xE0
	mAPPF = 0xEF
	mTEM  = 0x01
)

func errTruncated(where string) error {
	return fmt.Errorf("mask: frame truncated %s: it was cut short in transfer; drop it", where)
}

func (mk *Masker) reset() {
	mk.haveFrame = false
	mk.width, mk.height, mk.ncomp, mk.hmax, mk.vmax = 0, 0, 0, 0, 0
	mk.restart = 0
	mk.inDefined = [2][4]bool{}
	mk.outDefined = [2][4]bool{}
	mk.drops = mk.drops[:0]
	mk.stats = Stats{}
}

func (mk *Masker) apply(out, frame []byte) ([]byte, error) {
	mk.reset()
	if len(frame) < 2 || frame[0] != 0xFF || frame[1] != mSOI {
		return nil, errors.New("mask: not a JPEG image (no SOI marker at the start)")
	}
	copied := 0 // frame[:copied] is in out
	i := 2
	for {
		if i+1 >= len(frame) {
			return nil, errTruncated("before the end-of-image marker")
		}
		if frame[i] != 0xFF {
			return nil, fmt.Errorf("mask: offset %d: expected a marker, found 0x%02x: the image is damaged", i, frame[i])
		}
		m := frame[i+1]
		if m == 0xFF { // fill byte
			i++
			continue
		}
		start := i
		i += 2
		if m == mEOI {
			return mk.finish(out, frame, copied, i)
		}
		if m == mTEM || (m >= mRST0 && m <= mRST7) {
			continue
		}
		if m == 0 || m == mSOI {
			return nil, fmt.Errorf("mask: offset %d: marker 0x%02x out of place: the image is damaged", start, m)
		}
		if i+2 > len(frame) {
			return nil, errTruncated("in a marker segment")
		}
		n := int(frame[i])<<8 | int(frame[i+1])
		if n < 2 || i+n > len(frame) {
			return nil, errTruncated(fmt.Sprintf("in marker 0x%02x's segment", m))
		}
		seg := frame[i+2 : i+n]
		end := i + n
		i = end
		switch {
		case m == mSOF0 || m == mSOF1:
			if err := mk.parseSOF(seg); err != nil {
				return nil, err
			}
			if !mk.anyMasked {
				mk.stats.Changed, mk.stats.DroppedSegments = false, 0
				return append(out, frame...), nil
			}
		case m == mSOF2:
			return nil, ErrProgressive
		case m == mDAC:
			return nil, errors.New("mask: arithmetic-coded JPEG is not supported: configure the camera for baseline MJPEG")
		case m >= 0xC3 && m <= 0xCF && m != mDHT:
			return nil, fmt.Errorf("mask: JPEG frame type SOF%d is not supported, only baseline: configure the camera for baseline MJPEG", m-0xC0)
		case m == mDHT:
			if err := mk.parseDHT(seg); err != nil {
				return nil, err
			}
			mk.drops = append(mk.drops, [2]int{start, end})
		case m == mDRI:
			if len(seg) != 2 {
				return nil, errors.New("mask: restart interval (DRI) segment of the wrong length: the image is damaged")
			}
			mk.restart = int(seg[0])<<8 | int(seg[1])
		case m >= mAPP0 && m <= mAPPF:
			if hasPicture(m, seg) {
				mk.drops = append(mk.drops, [2]int{start, end})
				mk.stats.DroppedSegments++
			}
		case m == mSOS:
			var err error
			out, i, err = mk.scan(out, frame, copied, start, end, seg)
			if err != nil {
				return nil, err
			}
			copied = i
		}
	}
}

// finish appends the rest of the frame up to and including the EOI marker
// that ends at eoi, after checking the frame was whole.
func (mk *Masker) finish(out, frame []byte, copied, eoi int) ([]byte, error) {
	if !mk.haveFrame {
		return nil, errors.New("mask: image has no frame header (SOF): the image is damaged")
	}
	for k := 0; k < mk.ncomp; k++ {
		if !mk.comps[k].coded {
			return nil, fmt.Errorf("mask: component %d is in no scan: the image is incomplete; drop it", mk.comps[k].id)
		}
	}
	out = mk.appendHeaders(out, frame, copied, eoi)
	mk.stats.Changed = true
	return out, nil
}

// appendHeaders appends frame[from:to] less the ranges in mk.drops.
func (mk *Masker) appendHeaders(out, frame []byte, from, to int) []byte {
	for _, d := range mk.drops {
		if d[0] >= from && d[1] <= to {
			out = append(out, frame[from:d[0]]...)
			from = d[1]
		}
	}
	mk.drops = mk.drops[:0]
	return append(out, frame[from:to]...)
}

// hasPicture reports whether APPn segment seg carries a picture: a JFIF
// thumbnail, a JFXX extension, or an embedded JPEG (an Exif thumbnail, an
// MPF preview).
func hasPicture(m byte, seg []byte) bool {
	if m == mAPP0 {
		if bytes.HasPrefix(seg, []byte("JFXX\x00")) {
			return true
		}
		if bytes.HasPrefix(seg, []byte("JFIF\x00")) {
			return len(seg) > 14 || (len(seg) >= 14 && (seg[12] != 0 || seg[13] != 0))
		}
	}
	return bytes.Contains(seg, []byte{0xFF, mSOI, 0xFF})
}

func (mk *Masker) parseSOF(seg []byte) error {
	if mk.haveFrame {
		return errors.New("mask: two frame headers (SOF) in one image: the image is damaged")
	}
	if len(seg) < 6 {
		return errors.New("mask: frame header (SOF) too short: the image is damaged")
	}
	if seg[0] != 8 {
		return fmt.Errorf("mask: %d-bit samples are not supported: configure the camera for 8-bit baseline MJPEG", seg[0])
	}
	h := int(seg[1])<<8 | int(seg[2])
	w := int(seg[3])<<8 | int(seg[4])
	n := int(seg[5])
	if w == 0 || h == 0 {
		return fmt.Errorf("mask: image size %dx%d: a zero size (height given later by DNL) is not supported", w, h)
	}
	if w > MaxSide || h > MaxSide {
		return fmt.Errorf("mask: image size %dx%d is larger than %dx%d", w, h, MaxSide, MaxSide)
	}
	if n != 1 && n != 3 {
		return fmt.Errorf("mask: %d components: only grayscale (1) and YCbCr (3) are supported", n)
	}
	if len(seg) != 6+3*n {
		return errors.New("mask: frame header (SOF) of the wrong length: the image is damaged")
	}
	mk.width, mk.height, mk.ncomp = w, h, n
	mk.hmax, mk.vmax = 1, 1
	for k := range n {
		p := seg[6+3*k:]
		c := comp{id: p[0], h: int(p[1] >> 4), v: int(p[1] & 15)}
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || p[2] > 3 {
			return fmt.Errorf("mask: component %d: sampling %dx%d or quantisation table %d out of range: the image is damaged", k, c.h, c.v, p[2])
		}
		for j := range k {
			if mk.comps[j].id == c.id {
				return errors.New("mask: two components with the same id: the image is damaged")
			}
		}
		if n == 1 {
			// A single component is never interleaved: its MCU is one
			// block whatever its sampling factors say.
			c.h, c.v = 1, 1
		}
		mk.comps[k] = c
		mk.hmax, mk.vmax = max(mk.hmax, c.h), max(mk.vmax, c.v)
	}
	if n > 1 {
		blocks := 0
		for k := range n {
			blocks += mk.comps[k].h * mk.comps[k].v
		}
		if blocks > 10 {
			return fmt.Errorf("mask: sampling factors give %d blocks per MCU, more than the 10 allowed: the image is damaged", blocks)
		}
	}
	for k := range n {
		c := &mk.comps[k]
		cw := (w*c.h + mk.hmax - 1) / mk.hmax
		ch := (h*c.v + mk.vmax - 1) / mk.vmax
		c.bw, c.bh = (cw+7)/8, (ch+7)/8
	}
	g := Geometry{Width: w, Height: h, MCUWidth: 8 * mk.hmax, MCUHeight: 8 * mk.vmax}
	mk.nxMCU, mk.nyMCU = g.mcus()
	if !mk.cellsOK || g != mk.cellsGeom {
		mk.cells = mk.mask.cells(g, mk.cells)
		mk.cellsGeom, mk.cellsOK = g, true
	}
	masked := 0
	for _, c := range mk.cells {
		if c {
			masked++
		}
	}
	mk.anyMasked = masked > 0
	mk.stats.Geometry = g
	mk.stats.MCUs = len(mk.cells)
	mk.stats.MaskedMCUs = masked
	mk.haveFrame = true
	return nil
}

func (mk *Masker) parseDHT(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return errors.New("mask: Huffman table (DHT) too short: the image is damaged")
		}
		class, id := int(seg[0]>>4), int(seg[0]&15)
		if class > 1 || id > 3 {
			return errors.New("mask: Huffman table (DHT) class or number out of range: the image is damaged")
		}
		s := &mk.inSpec[class][id]
		*s = huffSpec{}
		copy(s.counts[:], seg[1:17])
		for _, c := range s.counts {
			s.n += int(c)
		}
		if s.n > 256 || len(seg) < 17+s.n {
			return errors.New("mask: Huffman table (DHT) too short: the image is damaged")
		}
		copy(s.vals[:], seg[17:17+s.n])
		if err := s.check(); err != nil {
			return err
		}
		mk.inDefined[class][id] = true
		seg = seg[17+s.n:]
	}
	return nil
}

// scan masks the scan whose SOS segment is frame[start:end] (body seg). It
// appends the headers since copied, the DHT segment the scan needs, the
// SOS segment and the re-coded data to out, and returns the offset of the
// marker after the scan's data.
func (mk *Masker) scan(out, frame []byte, copied, start, end int, seg []byte) ([]byte, int, error) {
	if !mk.haveFrame {
		return nil, 0, errNoFrame
	}
	if err := mk.scanHeader(seg); err != nil {
		return nil, 0, err
	}
	next, err := mk.unstuff(frame, end)
	if err != nil {
		return nil, 0, err
	}
	if err := mk.decodeScan(); err != nil {
		return nil, 0, err
	}
	out = mk.appendHeaders(out, frame, copied, start)
	out = mk.chooseTables(out)
	out = append(out, frame[start:end]...)
	out = mk.encodeScan(out)
	return out, next, nil
}

func (mk *Masker) scanHeader(seg []byte) error {
	if len(seg) < 1 {
		return errors.New("mask: scan header (SOS) too short: the image is damaged")
	}
	ns := int(seg[0])
	if ns < 1 || ns > mk.ncomp || len(seg) != 4+2*ns {
		return errors.New("mask: scan header (SOS) of the wrong length: the image is damaged")
	}
	if seg[1+2*ns] != 0 || seg[2+2*ns] != 63 || seg[3+2*ns] != 0 {
		return errors.New("mask: scan is not sequential (spectral selection or successive approximation set): progressive JPEG is not supported; configure the camera for baseline MJPEG")
	}
	mk.used = [2][4]bool{}
	for k := range ns {
		id, tables := seg[1+2*k], seg[2+2*k]
		ci := -1
		for j := range mk.ncomp {
			if mk.comps[j].id == id {
				ci = j
			}
		}
		if ci < 0 {
			return fmt.Errorf("mask: scan names component %d, which the frame does not have: the image is damaged", id)
		}
		for j := range k {
			if mk.scanComps[j] == ci {
				return errors.New("mask: scan names a component twice: the image is damaged")
			}
		}
		c := &mk.comps[ci]
		if c.coded {
			return fmt.Errorf("mask: component %d is coded by two scans: the image is damaged", id)
		}
		c.coded = true
		c.td, c.ta = int(tables>>4), int(tables&15)
		if c.td > 3 || c.ta > 3 {
			return errors.New("mask: scan uses a Huffman table number above 3: the image is damaged")
		}
		c.predIn, c.predOut = 0, 0
		mk.scanComps[k] = ci
		mk.used[0][c.td], mk.used[1][c.ta] = true, true
	}
	mk.ns = ns
	if ns == 1 {
		c := &mk.comps[mk.scanComps[0]]
		mk.scanMCUsX, mk.scanMCUsY = c.bw, c.bh
	} else {
		mk.scanMCUsX, mk.scanMCUsY = mk.nxMCU, mk.nyMCU
	}
	for class := range 2 {
		for id := range 4 {
			if !mk.used[class][id] {
				continue
			}
			var s *huffSpec
			switch {
			case mk.inDefined[class][id]:
				s = &mk.inSpec[class][id]
			case id < 2:
				// MJPEG without DHT: the standard tables.
				s = &stdSpecs[class][id]
			default:
				return fmt.Errorf("mask: scan uses Huffman table %d, which the image does not define: the image is damaged", id)
			}
			mk.dec[class][id].build(s)
		}
	}
	return nil
}

// unstuff copies the scan's entropy-coded data, starting at frame[p],
// into mk.raw without byte stuffing, noting where each restart interval
// ends; it returns the offset of the marker that ends the scan.
func (mk *Masker) unstuff(frame []byte, p int) (int, error) {
	raw := mk.raw[:0]
	ivEnd := mk.ivEnd[:0]
	next := -1
	for next < 0 {
		j := bytes.IndexByte(frame[p:], 0xFF)
		if j < 0 || p+j+1 >= len(frame) {
			return 0, errTruncated("in the entropy-coded data")
		}
		raw = append(raw, frame[p:p+j]...)
		p += j
		switch b := frame[p+1]; {
		case b == 0:
			raw = append(raw, 0xFF)
			p += 2
		case b == 0xFF:
			p++ // fill byte before a marker
		case b >= mRST0 && b <= mRST7:
			ivEnd = append(ivEnd, len(raw))
			p += 2
		default:
			ivEnd = append(ivEnd, len(raw))
			next = p
		}
	}
	n := len(raw)
	raw = slices.Grow(raw, readPad)[:n+readPad]
	clear(raw[n:])
	mk.raw, mk.ivEnd = raw, ivEnd
	units := mk.scanMCUsX * mk.scanMCUsY
	want := 1
	if mk.restart > 0 {
		want = (units + mk.restart - 1) / mk.restart
	}
	if len(ivEnd) < want {
		if mk.restart == 0 {
			return 0, errors.New("mask: restart marker in a scan without restart interval (DRI): the image is damaged")
		}
		return 0, errTruncated(fmt.Sprintf("in the entropy-coded data (%d of %d restart intervals)", len(ivEnd), want))
	}
	if mk.restart == 0 && len(ivEnd) > 1 {
		return 0, errors.New("mask: restart marker in a scan without restart interval (DRI): the image is damaged")
	}
	return next, nil
}

// noEOB ends a block whose last coefficient is the 63rd: no EOB follows.
const noEOB = 0xFFFFFFFF

// category returns the size category of v and its additional bits (T.81
// F.1.2.1.1).
func category(v int32) (uint32, uint32) {
	if v == 0 {
		return 0, 0
	}
	a := v
	if v < 0 {
		a = -v
		v--
	}
	s := uint32(mbits.Len32(uint32(a)))
	return s, uint32(v) & (1<<s - 1)
}

var (
	errDCRange  = errors.New("mask: DC coefficient out of range: the image is damaged")
	errACSymbol = errors.New("mask: invalid AC code in the entropy-coded data: the image is damaged")
	errACIndex  = errors.New("mask: AC coefficients run past the end of a block: the image is damaged")
	errOverrun  = errors.New("mask: restart interval holds fewer blocks than it should: the image is damaged or truncated; drop it")
)

// decodeScan decodes every block of the scan into mk.ent: per block one
// DC entry (category<<16 | bits, of the difference to the previous
// output DC value) then its AC entries (run/size<<16 | bits) ending with
// an EOB entry (0) or noEOB. Blocks of masked MCUs get DC 0 and no AC
// coefficients. Symbol frequencies go to mk.freq.
func (mk *Masker) decodeScan() error {
	mk.freq = [2][4][256]int32{}
	ent := mk.ent[:0]
	br := &mk.br
	br.buf = mk.raw
	br.pos = 0
	iv := 0
	limit := uint(mk.ivEnd[0]) * 8
	todo := mk.restart
	ns := mk.ns
	nx := mk.nxMCU
	cells := mk.cells
	for my := range mk.scanMCUsY {
		for mx := range mk.scanMCUsX {
			if mk.restart > 0 {
				if todo == 0 {
					br.pos = limit
					iv++
					limit = uint(mk.ivEnd[iv]) * 8
					for k := range ns {
						c := &mk.comps[mk.scanComps[k]]
						c.predIn, c.predOut = 0, 0
					}
					todo = mk.restart
				}
				todo--
			}
			for k := range ns {
				c := &mk.comps[mk.scanComps[k]]
				dcT, acT := &mk.dec[0][c.td], &mk.dec[1][c.ta]
				dcF, acF := &mk.freq[0][c.td], &mk.freq[1][c.ta]
				bh, bv := c.h, c.v
				if ns == 1 {
					bh, bv = 1, 1
				}
				for range bv {
					for range bh {
						var masked bool
						if ns == 1 {
							masked = cells[(my/c.v)*nx+mx/c.h]
						} else {
							masked = cells[my*nx+mx]
						}
						s, w, err := br.decode(dcT)
						if err != nil {
							return err
						}
						if s > 11 {
							return errDCRange
						}
						if s > 0 {
							x := int32(w >> (64 - uint(s)))
							if x < 1<<(s-1) {
								x += -1<<s + 1
							}
							c.predIn += x
							br.pos += uint(s)
						}
						dc := c.predIn
						if masked {
							dc = 0
						}
						cat, bits := category(dc - c.predOut)
						if cat > 11 {
							return errDCRange
						}
						c.predOut = dc
						ent = append(ent, cat<<16|bits)
						dcF[cat]++
						if masked {
							if err := skipAC(br, acT); err != nil {
								return err
							}
							ent = append(ent, 0)
							acF[0]++
						} else {
							var err error
							ent, err = readAC(br, acT, acF, ent)
							if err != nil {
								return err
							}
						}
						if br.pos > limit {
							return errOverrun
						}
					}
				}
			}
		}
	}
	mk.ent = ent
	return nil
}

// readAC decodes a block's AC coefficients into entries appended to ent.
// The fast path of bitReader.decode is written out here: this loop is
// where most of the time goes.
func readAC(br *bitReader, t *decTable, freq *[256]int32, ent []uint32) ([]uint32, error) {
	buf, pos := br.buf, br.pos
	// A block has at most 64 entries: each advances k, which ends at 64,
	// and the last is the terminator.
	n := len(ent)
	ent = slices.Grow(ent, 64)
	d := ent[n : n+64]
	j := 0
	for k := 1; k < 64; {
		w := binary.BigEndian.Uint64(buf[pos>>3:]) << (pos & 7)
		var rs byte
		if e := t.lut[w>>(64-lutBits)]; e != 0 {
			l := uint(e >> 8)
			pos += l
			w <<= l
			rs = byte(e)
		} else {
			br.pos = pos
			var err error
			if rs, w, err = br.decodeLong(t, w); err != nil {
				return ent[:n], err
			}
			pos = br.pos
		}
		s := uint(rs & 15)
		if s == 0 {
			if rs == 0 { // EOB
				freq[0]++
				br.pos = pos
				d[j&63] = 0
				return ent[:n+j+1], nil
			}
			if rs != 0xF0 {
				return ent[:n], errACSymbol
			}
			freq[0xF0]++
			d[j&63] = 0xF0 << 16
			j++
			k += 16
			continue
		}
		if s > 10 {
			return ent[:n], errACSymbol
		}
		k += int(rs >> 4)
		if k > 63 {
			return ent[:n], errACIndex
		}
		pos += s
		freq[rs]++
		d[j&63] = uint32(rs)<<16 | uint32(w>>(64-s))
		j++
		k++
	}
	br.pos = pos
	d[j&63] = noEOB
	return ent[:n+j+1], nil
}

// skipAC decodes a block's AC coefficients and discards them, as readAC
// does.
func skipAC(br *bitReader, t *decTable) error {
	buf, pos := br.buf, br.pos
	for k := 1; k < 64; {
		w := binary.BigEndian.Uint64(buf[pos>>3:]) << (pos & 7)
		var rs byte
		if e := t.lut[w>>(64-lutBits)]; e != 0 {
			pos += uint(e >> 8)
			rs = byte(e)
		} else {
			br.pos = pos
			var err error
			if rs, _, err = br.decodeLong(t, w); err != nil {
				return err
			}
			pos = br.pos
		}
		s := uint(rs & 15)
		if s == 0 {
			if rs == 0 {
				break
			}
			if rs != 0xF0 {
				return errACSymbol
			}
			k += 16
			continue
		}
		if s > 10 {
			return errACSymbol
		}
		k += int(rs>>4) + 1
		if k > 64 {
			return errACIndex
		}
		pos += s
	}
	br.pos = pos
	return nil
}

// chooseTables picks the Huffman tables the scan is coded with, builds
// their encoders, and appends a DHT segment for those the output does not
// define yet.
func (mk *Masker) chooseTables(out []byte) []byte {
	mark := -1
	for class := range 2 {
		for id := range 4 {
			if !mk.used[class][id] {
				continue
			}
			freq := &mk.freq[class][id]
			std := &stdSpecs[class][min(id, 1)]
			var s *huffSpec
			switch mk.huffman {
			case HuffmanOwn:
				if mk.inDefined[class][id] {
					s = &mk.inSpec[class][id]
				} else {
					s = std
				}
				mk.enc[class][id].build(s)
				if !mk.enc[class][id].covers(freq) {
					s = std
				}
			case HuffmanStandard:
				s = std
			default:
				optimal(&mk.chosen, freq, &mk.opt)
				s = &mk.chosen
			}
			mk.enc[class][id].build(s)
			if mk.outDefined[class][id] && mk.outSpec[class][id].equal(s) {
				continue
			}
			if mark < 0 {
				mark = len(out)
				out = append(out, 0xFF, mDHT, 0, 0)
			}
			out = s.appendDHT(out, class, id)
			mk.outSpec[class][id] = *s
			mk.outDefined[class][id] = true
		}
	}
	if mark >= 0 {
		n := len(out) - mark - 2
		out[mark+2], out[mark+3] = byte(n>>8), byte(n)
	}
	return out
}

// encodeScan appends the scan's entries, Huffman-coded with byte
// stuffing, restart markers where the frame had them. The bit writer is
// written out here, in locals, as this loop is hot.
func (mk *Masker) encodeScan(out []byte) []byte {
	bw := &mk.bw
	var acc uint64 // pending bits in the low n bits
	var n uint
	ent := mk.ent
	ei := 0
	todo := mk.restart
	rst := 0
	ns := mk.ns
	for range mk.scanMCUsY {
		for range mk.scanMCUsX {
			if mk.restart > 0 {
				if todo == 0 {
					bw.out, bw.acc, bw.n = out, acc, n
					bw.flush()
					out = append(bw.out, 0xFF, byte(mRST0+rst))
					acc, n = 0, 0
					rst = (rst + 1) & 7
					todo = mk.restart
				}
				todo--
			}
			for k := range ns {
				c := &mk.comps[mk.scanComps[k]]
				dcT, acT := &mk.enc[0][c.td], &mk.enc[1][c.ta]
				nb := c.h * c.v
				if ns == 1 {
					nb = 1
				}
				for range nb {
					t := dcT
					for {
						e := ent[ei]
						ei++
						if e == noEOB {
							break
						}
						sym := e >> 16
						s := uint(sym & 15)
						cs := t.cs[sym]
						size := uint(cs&0xFF) + s
						acc = acc<<size | uint64(cs>>8<<s|e&0xFFFF)
						n += size
						if n >= 32 {
							n -= 32
							x := uint32(acc >> n)
							// Some byte of x is 0xFF when some byte
							// of ^x is zero.
							if y := ^x; (y-0x01010101)&^y&0x80808080 == 0 {
								out = binary.BigEndian.AppendUint32(out, x)
							} else {
								out = appendStuffed(out, x)
							}
						}
						if sym == 0 && t == acT {
							break // EOB
						}
						t = acT
					}
				}
			}
		}
	}
	bw.out, bw.acc, bw.n = out, acc, n
	bw.flush()
	out = bw.out
	bw.out = nil
	return out
}
