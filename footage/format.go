package footage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
)

// The on-disk format is described in doc.go. This file holds its constants
// and the encoders and decoders of its fixed parts; every number is little
// endian.

const (
	// schemaVersion is written in every segment header and in the index
	// file. A reader refuses a version it does not know.
	schemaVersion = 1
	// schemaEncrypted is the segment schema version of a segment whose
	// frame and event payloads are encrypted (see doc.go, Encryption at
	// rest); its header holds the key id in place of the reserved word.
	schemaEncrypted = 2

	segHeaderSize  = 40
	recHeaderSize  = 40
	trailerSize    = 24
	indexEntrySize = 32
	clockEntrySize = 40
	align          = 8

	segSuffix  = ".seg"
	tmpSuffix  = ".tmp"
	tornSuffix = ".torn" // side file: <segment>.seg.torn.<offset>

	indexFile = "index.log"
	holdsFile = "holds.json"
	lockFile  = "LOCK"
)

var (
	segMagic     = [8]byte{'O', 'P', 'F', 'T', 'S', 'E', 'G', '1'}
	trailerMagic = [8]byte{'O', 'P', 'F', 'T', 'S', 'E', 'A', 'L'}
	indexMagic   = [8]byte{'O', 'P', 'F', 'T', 'I', 'D', 'X', '1'}
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record kinds. They are persisted, as single ASCII letters so that a hex
// dump of a segment reads.
const (
	kindFrame = 'F' // an encoded picture
	kindEvent = 'E' // a trigger (motion, PIR, manual): payload is its kind
	kindClock = 'C' // a clock correction: payload is a clockEntry
	kindIndex = 'I' // the footer of a sealed segment
)

// Frame flags, persisted as bits of the record's flags byte.
const (
	// FlagEvent marks a frame recorded because of a trigger (pre-roll,
	// the trigger itself or post-roll).
	FlagEvent = 1 << 0
	// FlagPreRoll marks a frame that waited in the pre-roll ring before a
	// trigger made it worth keeping.
	FlagPreRoll = 1 << 1
	// FlagTimelapse marks a frame kept by the timelapse schedule.
	FlagTimelapse = 1 << 2
)

// Codecs are persisted as four-character codes: stable, readable in a dump,
// and fixed-size in the record header.
var codecFourCC = map[camera.Codec][4]byte{
	camera.MJPEG: {'M', 'J', 'P', 'G'},
}

func fourCC(c camera.Codec) ([4]byte, error) {
	cc, ok := codecFourCC[c]
	if !ok {
		return [4]byte{}, fmt.Errorf("footage: codec %q cannot be stored: the store knows %s", c, camera.MJPEG)
	}
	return cc, nil
}

func codecOf(cc [4]byte) camera.Codec {
	for c, v := range codecFourCC {
		if v == cc {
			return c
		}
	}
	if cc == ([4]byte{}) {
		return ""
	}
	return camera.Codec("fourcc:" + string(cc[:]))
}

func pad8(n int64) int64 { return (n + align - 1) &^ (align - 1) }

// recHeader is the fixed part of a record.
type recHeader struct {
	length uint32 // payload bytes
	crc    uint32 // CRC-32C of bytes 8..40 of the header and the payload
	seq    uint64
	time   int64 // ns since the Unix epoch, as stamped (see doc.go, Time)
	codec  [4]byte
	width  uint16
	height uint16
	kind   byte
	flags  byte
	// reservedZero is set when decoding found the reserved bytes zero, as
	// every writer leaves them.
	reservedZero bool
}

func (h *recHeader) put(b []byte) {
	_ = b[recHeaderSize-1]
	binary.LittleEndian.PutUint32(b[0:], h.length)
	binary.LittleEndian.PutUint32(b[4:], h.crc)
	binary.LittleEndian.PutUint64(b[8:], h.seq)
	binary.LittleEndian.PutUint64(b[16:], uint64(h.time))
	copy(b[24:28], h.codec[:])
	binary.LittleEndian.PutUint16(b[28:], h.width)
	binary.LittleEndian.PutUint16(b[30:], h.height)
	b[32] = h.kind
	b[33] = h.flags
	clear(b[34:40])
}

func getRecHeader(b []byte) recHeader {
	_ = b[recHeaderSize-1]
	var h recHeader
	h.length = binary.LittleEndian.Uint32(b[0:])
	h.crc = binary.LittleEndian.Uint32(b[4:])
	h.seq = binary.LittleEndian.Uint64(b[8:])
	h.time = int64(binary.LittleEndian.Uint64(b[16:]))
	copy(h.codec[:], b[24:28])
	h.width = binary.LittleEndian.Uint16(b[28:])
	h.height = binary.LittleEndian.Uint16(b[30:])
	h.kind = b[32]
	h.flags = b[33]
	h.reservedZero = b[34]|b[35]|b[36]|b[37]|b[38]|b[39] == 0
	return h
}

// plausible reports whether a decoded header could be a record: a cheap
// filter before the CRC when looking for the next record after damage.
func (h *recHeader) plausible() bool {
	if !h.reservedZero {
		return false
	}
	switch h.kind {
	case kindFrame, kindEvent, kindClock, kindIndex:
	default:
		return false
	}
	return h.seq != 0 || h.kind == kindIndex
}

// recordCRC computes the CRC of an encoded header (bytes 8..40) and payload.
func recordCRC(hdr, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, hdr[8:recHeaderSize])
	return crc32.Update(c, castagnoli, payload)
}

// encodeRecord returns header and padding for a record; the payload is
// written between them.
func encodeRecordHeader(h recHeader, payload []byte, dst []byte) {
	h.length = uint32(len(payload))
	h.crc = 0
	h.put(dst)
	binary.LittleEndian.PutUint32(dst[4:], recordCRC(dst, payload))
}

// recordSize is the space a record with n payload bytes takes.
func recordSize(n int) int64 { return pad8(recHeaderSize + int64(n)) }

// segHeader is the first 40 bytes of a segment file.
type segHeader struct {
	version  uint32
	run      uint32
	firstSeq uint64
	created  int64
	keyID    uint32 // schemaEncrypted: id of the key (see keyID)
}

func (h segHeader) encrypted() bool { return h.version == schemaEncrypted }

func (h segHeader) encode() []byte {
	b := make([]byte, segHeaderSize)
	copy(b, segMagic[:])
	binary.LittleEndian.PutUint32(b[8:], h.version)
	binary.LittleEndian.PutUint32(b[12:], h.run)
	binary.LittleEndian.PutUint64(b[16:], h.firstSeq)
	binary.LittleEndian.PutUint64(b[24:], uint64(h.created))
	if h.encrypted() {
		binary.LittleEndian.PutUint32(b[32:], h.keyID)
	}
	binary.LittleEndian.PutUint32(b[36:], crc32.Checksum(b[:36], castagnoli))
	return b
}

var errBadSegHeader = errors.New("not a segment: bad magic or header CRC")

func decodeSegHeader(b []byte) (segHeader, error) {
	if len(b) < segHeaderSize || [8]byte(b[:8]) != segMagic ||
		binary.LittleEndian.Uint32(b[36:]) != crc32.Checksum(b[:36], castagnoli) {
		return segHeader{}, errBadSegHeader
	}
	h := segHeader{
		version:  binary.LittleEndian.Uint32(b[8:]),
		run:      binary.LittleEndian.Uint32(b[12:]),
		firstSeq: binary.LittleEndian.Uint64(b[16:]),
		created:  int64(binary.LittleEndian.Uint64(b[24:])),
	}
	switch h.version {
	case schemaVersion:
	case schemaEncrypted:
		h.keyID = binary.LittleEndian.Uint32(b[32:])
	default:
		return h, fmt.Errorf("segment schema version %d is not supported (this build reads %d and %d): use a newer outpost", h.version, schemaVersion, schemaEncrypted)
	}
	return h, nil
}

// trailer ends a sealed segment and points at its footer.
func encodeTrailer(footerOff int64) []byte {
	b := make([]byte, trailerSize)
	copy(b, trailerMagic[:])
	binary.LittleEndian.PutUint64(b[8:], uint64(footerOff))
	binary.LittleEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	return b
}

func decodeTrailer(b []byte) (int64, bool) {
	if len(b) != trailerSize || [8]byte(b[:8]) != trailerMagic ||
		binary.LittleEndian.Uint32(b[16:]) != crc32.Checksum(b[:16], castagnoli) {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(b[8:])), true
}

// indexEntry locates one record of a segment.
type indexEntry struct {
	seq    uint64
	time   int64
	off    int64 // offset of the record header
	length uint32
	kind   byte
	flags  byte
}

func (e indexEntry) put(b []byte) {
	binary.LittleEndian.PutUint64(b[0:], e.seq)
	binary.LittleEndian.PutUint64(b[8:], uint64(e.time))
	binary.LittleEndian.PutUint64(b[16:], uint64(e.off))
	binary.LittleEndian.PutUint32(b[24:], e.length)
	b[28] = e.kind
	b[29] = e.flags
	b[30], b[31] = 0, 0
}

func getIndexEntry(b []byte) indexEntry {
	return indexEntry{
		seq:    binary.LittleEndian.Uint64(b[0:]),
		time:   int64(binary.LittleEndian.Uint64(b[8:])),
		off:    int64(binary.LittleEndian.Uint64(b[16:])),
		length: binary.LittleEndian.Uint32(b[24:]),
		kind:   b[28],
		flags:  b[29],
	}
}

// clockEntry is a clock correction: at sequence seq of run, the wall clock
// was found to have stepped by delta. Every record of the same run with a
// lower sequence was stamped by the clock before the step, so its time is
// corrected by adding delta (see doc.go, Time).
type clockEntry struct {
	run   uint32
	seq   uint64
	delta int64 // ns
	at    int64 // wall time (new clock) when the step was noticed
}

func (c clockEntry) put(b []byte) {
	binary.LittleEndian.PutUint32(b[0:], c.run)
	binary.LittleEndian.PutUint32(b[4:], 0)
	binary.LittleEndian.PutUint64(b[8:], c.seq)
	binary.LittleEndian.PutUint64(b[16:], uint64(c.delta))
	binary.LittleEndian.PutUint64(b[24:], uint64(c.at))
	binary.LittleEndian.PutUint64(b[32:], 0)
}

func getClockEntry(b []byte) clockEntry {
	return clockEntry{
		run:   binary.LittleEndian.Uint32(b[0:]),
		seq:   binary.LittleEndian.Uint64(b[8:]),
		delta: int64(binary.LittleEndian.Uint64(b[16:])),
		at:    int64(binary.LittleEndian.Uint64(b[24:])),
	}
}

// summary describes a segment: it is the head of the footer and what the
// index file keeps per sealed segment, so that opening the store reads
// neither the records nor the footers of sealed segments.
type summary struct {
	firstSeq   uint64 // from the segment header (also its name)
	lastSeq    uint64 // highest sequence of a record in it (firstSeq-1 if none)
	run        uint32
	frames     uint32
	records    uint32 // frame, event and clock records
	events     uint32
	corrupt    uint32 // damaged records skipped in recovery
	codec      [4]byte
	width      uint16
	height     uint16
	firstTime  int64 // raw time of the first frame (by sequence)
	lastTime   int64 // raw time of the last frame
	minTime    int64 // lowest raw frame time
	maxTime    int64 // highest raw frame time
	dataEnd    int64 // end of the last record: the footer starts here
	size       int64 // file size when sealed
	frameBytes int64 // payload bytes of frames (as stored)
	flags      uint32
	clocks     []clockEntry
}

// Summary flags, persisted in the summary's flags word.
const (
	// sumEncrypted: the segment's frame and event payloads are encrypted
	// (its header has schema version schemaEncrypted).
	sumEncrypted = 1 << 0
)

func (s *summary) encrypted() bool { return s.flags&sumEncrypted != 0 }

const summaryFixedSize = 8 + 8 + 4 + 4 + 4 + 4 + 4 + 4 + 2 + 2 + 8*4 + 8 + 8 + 8 + 4 + 4

func (s *summary) encode(b []byte) []byte {
	var f [summaryFixedSize]byte
	le := binary.LittleEndian
	le.PutUint64(f[0:], s.firstSeq)
	le.PutUint64(f[8:], s.lastSeq)
	le.PutUint32(f[16:], s.run)
	le.PutUint32(f[20:], s.frames)
	le.PutUint32(f[24:], s.records)
	le.PutUint32(f[28:], s.events)
	le.PutUint32(f[32:], s.corrupt)
	copy(f[36:40], s.codec[:])
	le.PutUint16(f[40:], s.width)
	le.PutUint16(f[42:], s.height)
	le.PutUint64(f[44:], uint64(s.firstTime))
	le.PutUint64(f[52:], uint64(s.lastTime))
	le.PutUint64(f[60:], uint64(s.minTime))
	le.PutUint64(f[68:], uint64(s.maxTime))
	le.PutUint64(f[76:], uint64(s.dataEnd))
	le.PutUint64(f[84:], uint64(s.size))
	le.PutUint64(f[92:], uint64(s.frameBytes))
	le.PutUint32(f[100:], uint32(len(s.clocks)))
	le.PutUint32(f[104:], s.flags)
	b = append(b, f[:]...)
	var c [clockEntrySize]byte
	for _, e := range s.clocks {
		e.put(c[:])
		b = append(b, c[:]...)
	}
	return b
}

var errShort = errors.New("truncated")

func decodeSummary(b []byte) (summary, int, error) {
	if len(b) < summaryFixedSize {
		return summary{}, 0, errShort
	}
	le := binary.LittleEndian
	s := summary{
		firstSeq:   le.Uint64(b[0:]),
		lastSeq:    le.Uint64(b[8:]),
		run:        le.Uint32(b[16:]),
		frames:     le.Uint32(b[20:]),
		records:    le.Uint32(b[24:]),
		events:     le.Uint32(b[28:]),
		corrupt:    le.Uint32(b[32:]),
		width:      le.Uint16(b[40:]),
		height:     le.Uint16(b[42:]),
		firstTime:  int64(le.Uint64(b[44:])),
		lastTime:   int64(le.Uint64(b[52:])),
		minTime:    int64(le.Uint64(b[60:])),
		maxTime:    int64(le.Uint64(b[68:])),
		dataEnd:    int64(le.Uint64(b[76:])),
		size:       int64(le.Uint64(b[84:])),
		frameBytes: int64(le.Uint64(b[92:])),
		flags:      le.Uint32(b[104:]),
	}
	copy(s.codec[:], b[36:40])
	n := int(le.Uint32(b[100:]))
	off := summaryFixedSize
	if n < 0 || n > (len(b)-off)/clockEntrySize {
		return summary{}, 0, errShort
	}
	for i := 0; i < n; i++ {
		s.clocks = append(s.clocks, getClockEntry(b[off:]))
		off += clockEntrySize
	}
	return s, off, nil
}

// add accounts one record in the summary.
func (s *summary) add(e indexEntry, h *recHeader, payload []byte) {
	s.records++
	if e.seq > s.lastSeq {
		s.lastSeq = e.seq
	}
	switch e.kind {
	case kindFrame:
		if s.frames == 0 {
			s.firstTime, s.minTime, s.maxTime = e.time, e.time, e.time
			s.codec, s.width, s.height = h.codec, h.width, h.height
		}
		s.frames++
		s.lastTime = e.time
		s.minTime = min(s.minTime, e.time)
		s.maxTime = max(s.maxTime, e.time)
		s.frameBytes += int64(e.length)
	case kindEvent:
		s.events++
	case kindClock:
		if c, ok := decodeClockPayload(payload); ok {
			s.clocks = append(s.clocks, c)
		}
	}
}

func decodeClockPayload(p []byte) (clockEntry, bool) {
	if len(p) != clockEntrySize {
		return clockEntry{}, false
	}
	return getClockEntry(p), true
}

// encodeFooter builds the payload of the index record that seals a segment.
func encodeFooter(s *summary, idx []indexEntry) []byte {
	b := make([]byte, 0, summaryFixedSize+len(s.clocks)*clockEntrySize+4+len(idx)*indexEntrySize)
	b = s.encode(b)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(idx)))
	var e [indexEntrySize]byte
	for _, x := range idx {
		x.put(e[:])
		b = append(b, e[:]...)
	}
	return b
}

func decodeFooter(b []byte, withIndex bool) (summary, []indexEntry, error) {
	s, off, err := decodeSummary(b)
	if err != nil {
		return s, nil, err
	}
	if len(b) < off+4 {
		return s, nil, errShort
	}
	n := int(binary.LittleEndian.Uint32(b[off:]))
	off += 4
	if n < 0 || n > (len(b)-off)/indexEntrySize {
		return s, nil, errShort
	}
	if !withIndex {
		return s, nil, nil
	}
	idx := make([]indexEntry, n)
	for i := range idx {
		idx[i] = getIndexEntry(b[off:])
		off += indexEntrySize
	}
	return s, idx, nil
}

// segName is the file name of the segment whose first sequence is seq.
func segName(firstSeq uint64) string { return fmt.Sprintf("%016x%s", firstSeq, segSuffix) }

func parseSegName(name string) (uint64, bool) {
	if len(name) != 16+len(segSuffix) || name[16:] != segSuffix {
		return 0, false
	}
	var v uint64
	for _, c := range name[:16] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

func unixNano(t time.Time) int64 { return t.UnixNano() }

func fromNano(n int64) time.Time { return time.Unix(0, n) }
