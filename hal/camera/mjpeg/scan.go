package mjpeg

import "bytes"

// JPEG markers this package looks at.
const (
	mSOF0 = 0xC0
	mDHT  = 0xC4
	mJPG  = 0xC8
	mDAC  = 0xCC
	mRST0 = 0xD0
	mRST7 = 0xD7
	mSOI  = 0xD8
	mEOI  = 0xD9
	mSOS  = 0xDA
	mTEM  = 0x01
)

// isSOF reports whether m starts a frame header (SOF0-SOF15 less DHT, JPG
// and DAC, which share the range).
func isSOF(m byte) bool {
	return m >= mSOF0 && m <= 0xCF && m != mDHT && m != mJPG && m != mDAC
}

// status is what the scanner found after a feed.
type status uint8

const (
	more      status = iota // the image is not complete yet
	done                    // the image ended with EOI
	restart                 // an SOI where the image should have continued
	malformed               // bytes that cannot be part of a JPEG
)

// Scanner states.
const (
	stSOI0       = iota // expecting FF of SOI
	stSOI1              // expecting D8 of SOI
	stMarker            // expecting FF of the next marker
	stMarkerCode        // expecting a marker code (FF fill bytes allowed)
	stLen1              // first byte of a segment length
	stLen2              // second byte
	stPayload           // inside a segment
	stEntropy           // inside entropy-coded data
	stEntropyFF         // an FF inside entropy-coded data
)

// scanner walks a JPEG's structure as its bytes arrive, without decoding
// it, to find where the image ends: it follows marker segments by their
// lengths and scans entropy-coded data for a marker (an FF not followed by
// a stuffed 00 or a restart code). It notes the frame size from SOF and
// whether the image carries Huffman tables. The zero value expects the
// SOI.
type scanner struct {
	state  uint8
	marker byte // marker of the segment being read
	need   int  // payload bytes of the segment still to come
	segLen int  // payload length of the segment
	n      int  // bytes of the image consumed so far

	sof           [5]byte // precision, height, width of SOF
	sawSOF        bool
	sawSOS        bool
	hasDHT        bool
	width, height int
}

// reset makes s ready for a new image. If afterSOI, the SOI has already
// been seen (its 2 bytes are counted).
func (s *scanner) reset(afterSOI bool) {
	*s = scanner{}
	if afterSOI {
		s.state, s.n = stMarker, 2
	}
}

// feed consumes b, the next bytes of the image, and reports how many
// bytes belong to the image and what was found. On done, used counts the
// EOI; on restart, used counts the new SOI's D8 (its FF may have been in
// an earlier feed), and the new image starts with FF D8; on malformed,
// used counts the offending byte.
func (s *scanner) feed(b []byte) (used int, st status) {
	i := 0
	for i < len(b) {
		switch s.state {
		case stEntropy:
			j := bytes.IndexByte(b[i:], 0xFF)
			if j < 0 {
				s.n += len(b) - i
				return len(b), more
			}
			i += j + 1
			s.n += j + 1
			s.state = stEntropyFF
			continue
		case stPayload:
			k := min(s.need, len(b)-i)
			if isSOF(s.marker) {
				for p := s.segLen - s.need; p < len(s.sof) && p < s.segLen-s.need+k; p++ {
					s.sof[p] = b[i+p-(s.segLen-s.need)]
				}
			}
			i += k
			s.n += k
			s.need -= k
			if s.need == 0 {
				if st := s.endSegment(); st != more {
					return i, st
				}
			}
			continue
		}
		c := b[i]
		i++
		s.n++
		switch s.state {
		case stSOI0:
			if c != 0xFF {
				return i, malformed
			}
			s.state = stSOI1
		case stSOI1:
			if c != mSOI {
				return i, malformed
			}
			s.state = stMarker
		case stMarker:
			if c != 0xFF {
				return i, malformed
			}
			s.state = stMarkerCode
		case stMarkerCode:
			switch {
			case c == 0xFF: // fill byte
			case c == mSOI:
				return i, restart
			case c == mEOI:
				if !s.sawSOS {
					return i, malformed // no image before the end
				}
				return i, done
			case c == 0x00: // a stuffed byte outside entropy-coded data
				return i, malformed
			case c == mTEM || (c >= mRST0 && c <= mRST7):
				s.state = stMarker // standalone marker
			default:
				s.marker = c
				s.state = stLen1
			}
		case stEntropyFF:
			switch {
			case c == 0x00, c >= mRST0 && c <= mRST7, c == mTEM:
				s.state = stEntropy
			case c == 0xFF: // fill byte
			case c == mEOI:
				return i, done
			case c == mSOI:
				return i, restart
			default: // a marker between scans (DHT, SOS, DRI, ...)
				s.marker = c
				s.state = stLen1
			}
		case stLen1:
			s.segLen = int(c) << 8
			s.state = stLen2
		case stLen2:
			s.segLen |= int(c)
			if s.segLen < 2 {
				return i, malformed
			}
			s.segLen -= 2
			s.need = s.segLen
			if s.marker == mDHT {
				s.hasDHT = true
			}
			if isSOF(s.marker) && s.segLen < len(s.sof) {
				return i, malformed
			}
			if s.need == 0 {
				if st := s.endSegment(); st != more {
					return i, st
				}
				continue
			}
			s.state = stPayload
		}
	}
	return i, more
}

// endSegment is called at the end of a segment's payload.
func (s *scanner) endSegment() status {
	switch {
	case isSOF(s.marker):
		s.sawSOF = true
		s.height = int(s.sof[1])<<8 | int(s.sof[2])
		s.width = int(s.sof[3])<<8 | int(s.sof[4])
	case s.marker == mSOS:
		if !s.sawSOF {
			return malformed // a scan before the frame header
		}
		s.sawSOS = true
		s.state = stEntropy
		return more
	}
	s.state = stMarker
	return more
}

// Info describes a complete JPEG image.
type Info struct {
	// Len is the length of the image, SOI to EOI inclusive.
	Len int
	// Width and Height from the frame header.
	Width, Height int
	// HasHuffman reports whether the image carries Huffman tables (many
	// UVC cameras leave them out; see WithHuffmanTables).
	HasHuffman bool
}

// Check reports whether b begins with a complete JPEG image and describes
// it. Bytes after the image's EOI are allowed (drivers pad frames); Len
// says where the image ends.
func Check(b []byte) (Info, error) {
	var s scanner
	used, st := s.feed(b)
	switch st {
	case done:
		return Info{Len: used, Width: s.width, Height: s.height, HasHuffman: s.hasDHT}, nil
	case more:
		return Info{}, &BadFrameError{Reason: ReasonTruncated, Size: len(b)}
	case restart:
		return Info{}, &BadFrameError{Reason: ReasonTruncated, Size: used - 2}
	default:
		if used <= 2 {
			return Info{}, &BadFrameError{Reason: ReasonNotJPEG, Size: len(b)}
		}
		return Info{}, &BadFrameError{Reason: ReasonMalformed, Size: len(b)}
	}
}
