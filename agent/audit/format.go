package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// File format constants; doc.go describes the layout.
const (
	fileMagic     = "OPAUDIT1"
	schemaVersion = 1
	headerSize    = 64
	recHeaderSize = 48
	// maxCanon bounds a record's canonical bytes when reading. Append clips
	// an entry's fields so that a record stays far below it.
	maxCanon = 64 << 10
	// maxSeqJump bounds how far a record's sequence may lie beyond the last
	// good one when looking for intact records after damage, so that
	// garbage is rarely taken for a record.
	maxSeqJump = 1 << 20
	// maxSeq is the highest sequence a file may hold: far beyond any
	// unit's life, and far from wrapping.
	maxSeq = 1 << 62

	fileSuffix = ".audit"
	tornSuffix = ".torn"
	tmpSuffix  = ".tmp"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadHeader is a file whose header is not an audit header.
var errBadHeader = errors.New("not an audit log file (bad header)")

// fileHeader is the start of every log file.
type fileHeader struct {
	first uint64   // sequence of the file's first record (its name)
	prev  [32]byte // hash of the record before first; zero at the log's start
}

func (h fileHeader) encode() []byte {
	b := make([]byte, headerSize)
	copy(b, fileMagic)
	binary.LittleEndian.PutUint32(b[8:], schemaVersion)
	binary.LittleEndian.PutUint64(b[16:], h.first)
	copy(b[24:56], h.prev[:])
	binary.LittleEndian.PutUint32(b[56:], crc32.Checksum(b[:56], castagnoli))
	return b
}

func parseHeader(b []byte) (fileHeader, error) {
	if len(b) < headerSize || string(b[:8]) != fileMagic {
		return fileHeader{}, errBadHeader
	}
	if crc32.Checksum(b[:56], castagnoli) != binary.LittleEndian.Uint32(b[56:]) {
		return fileHeader{}, fmt.Errorf("%w: CRC mismatch", errBadHeader)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != schemaVersion {
		return fileHeader{}, fmt.Errorf("audit: schema version %d is not known to this agent (it reads %d): was the agent downgraded?", v, schemaVersion)
	}
	var h fileHeader
	h.first = binary.LittleEndian.Uint64(b[16:])
	if h.first == 0 || h.first > maxSeq {
		return fileHeader{}, fmt.Errorf("%w: first sequence %d is out of range", errBadHeader, h.first)
	}
	copy(h.prev[:], b[24:56])
	return h, nil
}

// chainHash is a record's hash: SHA-256 of the previous record's hash
// followed by the record's canonical bytes.
func chainHash(prev [32]byte, canon []byte) [32]byte {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(canon)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func align8(n int64) int64 { return (n + 7) &^ 7 }

// encodeRecord frames one record, padded to a multiple of 8 bytes.
func encodeRecord(seq uint64, hash [32]byte, canon []byte) []byte {
	n := align8(int64(recHeaderSize + len(canon)))
	b := make([]byte, n)
	binary.LittleEndian.PutUint32(b[0:], uint32(len(canon)))
	binary.LittleEndian.PutUint64(b[8:], seq)
	copy(b[16:48], hash[:])
	copy(b[48:], canon)
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[8:recHeaderSize+len(canon)], castagnoli))
	return b
}

// rawRecord is a framed record as read, not yet checked against the chain.
type rawRecord struct {
	off   int64
	seq   uint64
	hash  [32]byte
	canon []byte
}

// damage is a stretch of a file that holds no intact record, followed by
// intact records.
type damage struct{ off, end int64 }

// scanResult is what a file holds.
type scanResult struct {
	hdr     fileHeader
	recs    []rawRecord
	damaged []damage
	dataEnd int64 // end of the last intact record (or of the header)
	size    int64
}

func (r scanResult) tail() int64 { return r.size - r.dataEnd }

// recordAt parses the record at off, reporting false when there is none
// intact there.
func recordAt(b []byte, off int64) (rawRecord, int64, bool) {
	if off < 0 || off+recHeaderSize > int64(len(b)) {
		return rawRecord{}, 0, false
	}
	n := int64(binary.LittleEndian.Uint32(b[off:]))
	if n < 2 || n > maxCanon || off+recHeaderSize+n > int64(len(b)) {
		return rawRecord{}, 0, false
	}
	body := b[off+8 : off+recHeaderSize+n]
	if b[off+recHeaderSize] != '{' || crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[off+4:]) {
		return rawRecord{}, 0, false
	}
	r := rawRecord{off: off, seq: binary.LittleEndian.Uint64(b[off+8:]), canon: b[off+recHeaderSize : off+recHeaderSize+n]}
	if r.seq == 0 || r.seq > maxSeq {
		return rawRecord{}, 0, false
	}
	copy(r.hash[:], b[off+16:off+48])
	end := min(align8(off+recHeaderSize+n), int64(len(b)))
	return r, end, true
}

// scan reads a whole file's bytes: its header, then records one by one,
// each CRC checked. A damaged stretch followed by an intact record (at a
// later 8-aligned offset, with a higher sequence) is reported in damaged;
// damage running to the end of the file is the tail, past dataEnd.
func scan(b []byte) (scanResult, error) {
	res := scanResult{size: int64(len(b)), dataEnd: min(headerSize, int64(len(b)))}
	h, err := parseHeader(b)
	if err != nil {
		return res, err
	}
	res.hdr = h
	last := h.first - 1 // highest sequence seen; wraps only for a first of 0
	off := int64(headerSize)
	for off < int64(len(b)) {
		if r, end, ok := recordAt(b, off); ok {
			res.recs = append(res.recs, r)
			last = max(last, r.seq)
			off = end
			continue
		}
		next := int64(-1)
		for o := off + 8; o+recHeaderSize <= int64(len(b)); o += 8 {
			seq := binary.LittleEndian.Uint64(b[o+8:])
			if seq <= last || seq-last > maxSeqJump {
				continue
			}
			if _, _, ok := recordAt(b, o); ok {
				next = o
				break
			}
		}
		if next < 0 {
			break
		}
		res.damaged = append(res.damaged, damage{off: off, end: next})
		off = next
	}
	res.dataEnd = min(off, int64(len(b)))
	return res, nil
}

// fileName is the name of the file whose first record is seq.
func fileName(first uint64) string { return fmt.Sprintf("%016x%s", first, fileSuffix) }

// parseFileName returns the first sequence a log file's name carries.
func parseFileName(name string) (uint64, bool) {
	hexPart, ok := strings.CutSuffix(name, fileSuffix)
	if !ok || len(hexPart) != 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(hexPart, 16, 64)
	return v, err == nil
}

// isZero reports whether h is all zero (the log's start).
func isZero(h [32]byte) bool { return h == [32]byte{} }

// hexHash formats a hash for people and JSON.
func hexHash(h [32]byte) string { return fmt.Sprintf("%x", h[:]) }
