package footage

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// maxRecord bounds the payload a reader accepts, so that a damaged length
// field never makes it allocate gigabytes. Frames are at most 64 MiB
// (config); footers of the largest segments stay far below this.
const maxRecord = 256 << 20

// span is a byte range of a segment that holds no valid record.
type span struct{ off, length int64 }

// scanResult is what reading a segment record by record found.
type scanResult struct {
	header  segHeader
	sum     summary
	index   []indexEntry
	damaged []span // corrupt ranges between valid records, skipped
	dataEnd int64  // end of the last valid record
	tail    int64  // bytes after dataEnd that are not valid records (torn tail)
	footer  bool   // a valid footer record follows dataEnd
}

// scanner reads a segment's records through a window buffer.
type scanner struct {
	r    io.ReaderAt
	size int64
	buf  []byte
}

func (sc *scanner) readAt(off int64, n int) ([]byte, error) {
	if n > cap(sc.buf) {
		sc.buf = make([]byte, n)
	}
	b := sc.buf[:n]
	if _, err := sc.r.ReadAt(b, off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// record reads and checks the record at off. It returns the header, the
// payload (valid until the next call) and whether the record is intact; an
// error is an I/O error, not damage.
func (sc *scanner) record(off int64, minSeq uint64) (recHeader, []byte, bool, error) {
	if off+recHeaderSize > sc.size {
		return recHeader{}, nil, false, nil
	}
	hb, err := sc.readAt(off, recHeaderSize)
	if err != nil {
		return recHeader{}, nil, false, err
	}
	h := getRecHeader(hb)
	if !h.plausible() || int64(h.length) > maxRecord || off+recHeaderSize+int64(h.length) > sc.size {
		return h, nil, false, nil
	}
	if h.kind != kindIndex && h.seq < minSeq {
		return h, nil, false, nil
	}
	b, err := sc.readAt(off, recHeaderSize+int(h.length))
	if err != nil {
		return h, nil, false, err
	}
	if recordCRC(b[:recHeaderSize], b[recHeaderSize:]) != h.crc {
		return h, nil, false, nil
	}
	return h, b[recHeaderSize:], true, nil
}

// resync looks for the next intact record after damage at off: the first
// 8-aligned offset holding a plausible header whose CRC checks and whose
// sequence is above minSeq. It returns -1 if there is none.
func (sc *scanner) resync(off int64, minSeq uint64) (int64, error) {
	window := min(int64(1<<20), max(sc.size-off, align))
	win := make([]byte, window+recHeaderSize)
	for base := off + align; base+recHeaderSize <= sc.size; base += window {
		n := min(int64(len(win)), sc.size-base)
		w := win[:n]
		if _, err := sc.r.ReadAt(w, base); err != nil && !errors.Is(err, io.EOF) {
			return -1, err
		}
		for i := int64(0); i+recHeaderSize <= n && i < window; i += align {
			h := getRecHeader(w[i:])
			if !h.plausible() || (h.kind != kindIndex && h.seq < minSeq) || int64(h.length) > maxRecord {
				continue
			}
			if _, _, ok, err := sc.record(base+i, minSeq); err != nil {
				return -1, err
			} else if ok {
				return base + i, nil
			}
		}
	}
	return -1, nil
}

// scanSegment reads every record of a segment, checking each CRC. A
// damaged record followed by intact ones is skipped and reported in
// damaged; damage running to the end of the file is the torn tail. A
// valid footer ends the data. It fails only on I/O errors or a bad header.
func scanSegment(r io.ReaderAt, size int64) (scanResult, error) {
	var res scanResult
	sc := &scanner{r: r, size: size}
	if size < segHeaderSize {
		return res, errBadSegHeader
	}
	hb, err := sc.readAt(0, segHeaderSize)
	if err != nil {
		return res, err
	}
	if res.header, err = decodeSegHeader(hb); err != nil {
		return res, err
	}
	res.sum = summary{firstSeq: res.header.firstSeq, lastSeq: res.header.firstSeq - 1, run: res.header.run}
	if res.header.encrypted() {
		res.sum.flags |= sumEncrypted
	}
	off := int64(segHeaderSize)
	minSeq := res.header.firstSeq
	for off < size {
		h, payload, ok, err := sc.record(off, minSeq)
		if err != nil {
			return res, err
		}
		if !ok {
			next, err := sc.resync(off, minSeq)
			if err != nil {
				return res, err
			}
			if next < 0 {
				res.dataEnd = off
				res.tail = size - off
				return res, nil
			}
			res.damaged = append(res.damaged, span{off, next - off})
			res.sum.corrupt++
			off = next
			continue
		}
		if h.kind == kindIndex {
			res.footer = true
			res.dataEnd = off
			return res, nil
		}
		e := indexEntry{seq: h.seq, time: h.time, off: off, length: h.length, kind: h.kind, flags: h.flags}
		res.index = append(res.index, e)
		res.sum.add(e, &h, payload)
		minSeq = h.seq + 1
		off += recordSize(int(h.length))
	}
	// off may pass size by the padding of the last record when a crash
	// came before the padding was written: the record is whole, and
	// sealing restores the padding.
	res.dataEnd = off
	return res, nil
}

// readFooter reads a sealed segment's trailer and footer. ok is false when
// the segment is not sealed or its footer is damaged; the caller then scans
// it.
func readFooter(r io.ReaderAt, size int64, withIndex bool) (summary, []indexEntry, bool, error) {
	if size < segHeaderSize+recHeaderSize+trailerSize {
		return summary{}, nil, false, nil
	}
	tb := make([]byte, trailerSize)
	if _, err := r.ReadAt(tb, size-trailerSize); err != nil {
		return summary{}, nil, false, err
	}
	foff, ok := decodeTrailer(tb)
	if !ok || foff < segHeaderSize || foff+recHeaderSize > size-trailerSize {
		return summary{}, nil, false, nil
	}
	hb := make([]byte, recHeaderSize)
	if _, err := r.ReadAt(hb, foff); err != nil {
		return summary{}, nil, false, err
	}
	h := getRecHeader(hb)
	if h.kind != kindIndex || foff+recHeaderSize+int64(h.length) > size-trailerSize {
		return summary{}, nil, false, nil
	}
	b := make([]byte, h.length)
	if _, err := r.ReadAt(b, foff+recHeaderSize); err != nil {
		return summary{}, nil, false, err
	}
	if recordCRC(hb, b) != h.crc {
		return summary{}, nil, false, nil
	}
	s, idx, err := decodeFooter(b, withIndex)
	if err != nil || s.dataEnd != foff {
		return summary{}, nil, false, nil
	}
	s.size = size
	return s, idx, true, nil
}

// footerBytes encodes the footer record and trailer that seal a segment
// whose records end at dataEnd.
func footerBytes(s *summary, idx []indexEntry) []byte {
	payload := encodeFooter(s, idx)
	b := make([]byte, recordSize(len(payload))+trailerSize)
	encodeRecordHeader(recHeader{kind: kindIndex}, payload, b)
	copy(b[recHeaderSize:], payload)
	copy(b[recordSize(len(payload)):], encodeTrailer(s.dataEnd))
	return b
}

// seal writes the footer and trailer at s.dataEnd, cutting anything after
// it, and syncs. s.size is set to the sealed size. It returns the bytes
// written.
func seal(f File, s *summary, idx []indexEntry) ([]byte, error) {
	b := footerBytes(s, idx)
	size := s.dataEnd + int64(len(b))
	if err := f.Truncate(s.dataEnd); err != nil {
		return nil, err
	}
	if err := writeFull(f, b, s.dataEnd); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	s.size = size
	return b, nil
}

func writeFull(f File, b []byte, off int64) error {
	n, err := f.WriteAt(b, off)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return err
}

// createFile writes a new file through a temporary name: write, sync,
// rename, sync the directory. It returns the file still open when keep is
// set.
func createFile(fsys FS, dir, name string, content []byte, keep bool) (File, error) {
	tmp := join(dir, name+tmpSuffix)
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (File, error) {
		f.Close()
		fsys.Remove(tmp)
		return nil, err
	}
	if err := writeFull(f, content, 0); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := fsys.Rename(tmp, join(dir, name)); err != nil {
		return fail(err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		// The file exists under its name; only its durability after a
		// power cut is in doubt. Report it but keep the file.
		if keep {
			return f, fmt.Errorf("sync directory: %w", err)
		}
		f.Close()
		return nil, fmt.Errorf("sync directory: %w", err)
	}
	if !keep {
		if err := f.Close(); err != nil {
			return nil, err
		}
		return nil, nil
	}
	return f, nil
}
