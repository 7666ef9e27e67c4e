package ota

// The "bsdiff-zstd" delta payload.
//
// A bsdiff delta (delta_diff.go) is a list of records (add, copy, seek)
// over three streams: add bytes of the diff stream are added, byte by byte
// modulo 256, to the base binary from the current base position; copy
// bytes of the extra stream follow; the base position then moves by seek.
// The diff stream is mostly zeros, with a byte here and there where code
// that did not change refers to an address that moved. Classic bsdiff
// compresses it with bzip2, which on two builds of the agent for arm64
// does better than zstd on the same streams (the whole delta 36.8 kB with
// zstd, 19.5 kB for bsdiff).
// Here it is split instead into where its non-zero runs are and what they
// hold, which zstd compresses to less than bzip2 does:
//
//   - gaps: for each maximal run of non-zero diff bytes, where it starts.
//     Runs are placed by 4-byte word (arm64 instructions are words):
//     normally a uvarint, the run's word minus the previous run's word
//     (the first counts from word 0). When the payload names candidate
//     opcodes, a uvarint v > 0 says instead that the run is in the v-th
//     candidate word starting at or after the end of the previous run,
//     and 0 is followed by the word gap as above. A candidate word is
//     one that lies within one add segment and whose last byte, in the
//     base, is a candidate opcode (on arm64, 0x91 is ADD (immediate),
//     whose immediates are what a moved address changes): counting those
//     takes far fewer bits than counting words.
//   - shapes: for each run, a uvarint, its start modulo 4 plus 4 times
//     its length minus one;
//   - values: the runs' bytes, one after the other.
//
// The payload is a version byte (1), the number k (at most 16) of
// candidate opcodes and the k opcodes, five uvarints, the compressed
// lengths of the streams ctrl, gaps, shapes, values and extra in that
// order, then the streams, each either empty (length 0: the stream holds
// nothing) or a zstd frame with a window of at most 4 MiB. ctrl holds the
// records: uvarint add, uvarint copy, zigzag varint seek. The encoder
// picks the candidate set (none, or the 1 to 16 opcodes most frequent under
// the runs) that makes the gaps stream smallest.
//
// A unit applies a delta streaming: the base binary is in memory, the five
// streams are decompressed side by side in small chunks and the new binary
// is written as it is produced. Every record is checked before use: it
// must move at least one byte (the first may only seek), stay within the
// manifest's size, and read the base only within its bounds; runs must lie
// within the diff stream in increasing order; and every stream must end
// exactly where the records say. A delta that breaks any of these is
// refused (ErrBinaryHash), and the SHA-256 of the result is checked against
// the manifest as always.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/klauspost/compress/zstd"
)

const (
	bsdiffVersion = 1
	bsdiffStreams = 5 // ctrl, gaps, shapes, values, extra
	// bsdiffEncWindow is the zstd window the streams are written with:
	// larger windows made the agent's delta no smaller.
	bsdiffEncWindow = 1 << 20
	// bsdiffMaxWindow bounds what a unit accepts, so that decoding costs
	// at most five windows of memory whatever the payload says.
	bsdiffMaxWindow = 4 << 20
	// bsdiffMaxBuffered bounds a payload read into memory when it is not
	// given as an io.ReaderAt.
	bsdiffMaxBuffered = 64 << 20
	// maxCandidates bounds the set of candidate opcode bytes.
	maxCandidates = 16
)

var streamNames = [bsdiffStreams]string{"ctrl", "gaps", "shapes", "values", "extra"}

// EncodeBsdiff makes a "bsdiff-zstd" payload: the delta from base to
// bin (Percival's bsdiff, its streams compressed with zstd). Building it
// sorts the suffixes of base: some 20 bytes of memory per byte of base
// (about 240 MB for a 12 MB agent) and a few seconds. Only the control
// room builds deltas.
func EncodeBsdiff(base, bin []byte) ([]byte, error) {
	if len(base) > math.MaxInt32 || len(bin) > maxBinarySize {
		return nil, fmt.Errorf("ota: bsdiff: base of %d bytes or binary of %d bytes too large (at most %d)", len(base), len(bin), maxBinarySize)
	}
	// One encoder for all: zstd's best level allocates some 30 MB of
	// tables for each.
	enc, err := newStreamEncoder()
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	return encodeBsdiff(enc, base, bin), nil
}

// encodeBsdiff makes the delta with enc compressing the streams.
func encodeBsdiff(enc *zstd.Encoder, base, bin []byte) []byte {
	d := diffBsdiff(base, bin)
	set, gaps, shapes, values := chooseCandidates(enc, d, base)
	return packBsdiff(enc, set, [bsdiffStreams][]byte{d.ctrl, gaps, shapes, values, d.extra})
}

// chooseCandidates picks the set of opcode bytes that makes the gaps
// stream smallest (by compressing it), trying the most frequent under the
// diff's runs first, and returns it with the split diff stream.
func chooseCandidates(enc *zstd.Encoder, d deltaStreams, base []byte) (set, gaps, shapes, values []byte) {
	op := opcodes(d, base)
	var hist [256]int
	gaps, shapes, values = splitDiff(d.diff, nil, func(start int) {
		if o := op[start>>2]; o >= 0 {
			hist[o]++
		}
	})
	byCount := make([]byte, 256)
	for i := range byCount {
		byCount[i] = byte(i)
	}
	slices.SortStableFunc(byCount, func(a, b byte) int { return hist[b] - hist[a] })
	best := len(enc.EncodeAll(gaps, nil))
	cand := make([]bool, len(op))
	for _, k := range []int{1, 2, 3, 4, 6, 8, 12, maxCandidates} {
		if hist[byCount[k-1]] == 0 {
			break
		}
		candidates(op, byCount[:k], cand)
		g, _, _ := splitDiff(d.diff, cand, nil)
		if n := len(enc.EncodeAll(g, nil)); n < best {
			best, gaps, set = n, g, slices.Clone(byCount[:k])
		}
	}
	return set, gaps, shapes, values
}

// opcodes returns, for each 4-byte word of the diff stream, the base byte
// under its last byte (on arm64, the opcode of an instruction), or -1 when
// the word is not within one add segment: what the decoder sees when it
// counts candidate words.
func opcodes(d deltaStreams, base []byte) []int16 {
	op := make([]int16, (len(d.diff)+3)/4)
	for i := range op {
		op[i] = -1
	}
	for _, sg := range d.segs {
		for q := (sg.diff + 3) &^ 3; q+3 < sg.diff+sg.n; q += 4 {
			op[q>>2] = int16(base[sg.base+q+3-sg.diff])
		}
	}
	return op
}

// candidates sets cand[w] for the words whose opcode is in set.
func candidates(op []int16, set []byte, cand []bool) {
	var in [256]bool
	for _, c := range set {
		in[c] = true
	}
	for w, o := range op {
		cand[w] = o >= 0 && in[o]
	}
}

// newStreamEncoder is the zstd encoder of the payload's streams.
func newStreamEncoder() (*zstd.Encoder, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), // the binary's SHA-256 is checked
		zstd.WithWindowSize(bsdiffEncWindow))
	if err != nil {
		return nil, fmt.Errorf("ota: zstd: %w", err)
	}
	return enc, nil
}

// packBsdiff compresses the five streams into a payload, with the set of
// candidate opcode bytes.
func packBsdiff(enc *zstd.Encoder, set []byte, raw [bsdiffStreams][]byte) []byte {
	var frames [bsdiffStreams][]byte
	for i, s := range raw {
		if len(s) > 0 {
			// A frame of at most the window is written as a single
			// segment: its window is its size.
			frames[i] = enc.EncodeAll(s, nil)
		}
	}
	out := append([]byte{bsdiffVersion, byte(len(set))}, set...)
	for _, f := range frames {
		out = binary.AppendUvarint(out, uint64(len(f)))
	}
	for _, f := range frames {
		out = append(out, f...)
	}
	return out
}

// splitDiff splits a diff stream into its gaps, shapes and values. With
// cand (the candidate words of the diff stream) a run whose word is a
// candidate past the previous run's end is placed by counting candidates;
// saw, when set, is called with the start of every run.
func splitDiff(diff []byte, cand []bool, saw func(start int)) (gaps, shapes, values []byte) {
	var pre []int32 // pre[w]: candidate words before word w
	if cand != nil {
		pre = make([]int32, len(cand)+1)
		for w, c := range cand {
			pre[w+1] = pre[w]
			if c {
				pre[w+1]++
			}
		}
	}
	prevWord, prevEnd := 0, 0
	for i := 0; i < len(diff); {
		if diff[i] == 0 {
			i++
			continue
		}
		start := i
		for i < len(diff) && diff[i] != 0 {
			i++
		}
		if saw != nil {
			saw(start)
		}
		w := start >> 2
		switch {
		case cand == nil:
			gaps = binary.AppendUvarint(gaps, uint64(w-prevWord))
		case cand[w] && w<<2 >= prevEnd:
			gaps = binary.AppendUvarint(gaps, uint64(pre[w+1]-pre[(prevEnd+3)>>2]))
		default:
			gaps = binary.AppendUvarint(gaps, 0)
			gaps = binary.AppendUvarint(gaps, uint64(w-prevWord))
		}
		shapes = binary.AppendUvarint(shapes, uint64(start&3)|uint64(i-start-1)<<2)
		values = append(values, diff[start:i]...)
		prevWord, prevEnd = w, i
	}
	return gaps, shapes, values
}

// badDelta is the refusal of a delta that does not hold together.
func badDelta(format string, a ...any) error {
	return refuse(ErrBinaryHash, "bsdiff delta: "+fmt.Sprintf(format, a...)+": the bundle is damaged or was built wrong; build it again, or send a full bundle")
}

// applyBsdiff writes to w the binary of size bytes that payload rebuilds
// from base, checking every record. Errors of w come back as *writeError.
func applyBsdiff(ctx context.Context, base []byte, payload io.Reader, size int64, w io.Writer) error {
	ra, plen, err := readerAt(payload)
	if err != nil {
		return err
	}
	if plen == 0 {
		return badDelta("the payload is empty")
	}
	var hdr [2 + maxCandidates + bsdiffStreams*binary.MaxVarintLen64]byte
	n, err := ra.ReadAt(hdr[:min(int64(len(hdr)), plen)], 0)
	if n < len(hdr) && err != nil && err != io.EOF {
		return fmt.Errorf("ota: reading the delta: %w", err)
	}
	if hdr[0] != bsdiffVersion {
		return badDelta("format version %d, this agent reads %d", hdr[0], bsdiffVersion)
	}
	a := applier{base: base, size: size}
	k := 0
	if n > 1 {
		k = int(hdr[1])
	}
	if n < 2+k || k > maxCandidates {
		return badDelta("header: %d candidate opcodes, at most %d", k, maxCandidates)
	}
	for _, c := range hdr[2 : 2+k] {
		a.inSet[c] = true
	}
	a.cand = k > 0
	off := 2 + k
	var lens [bsdiffStreams]int64
	for i := range lens {
		v, k := binary.Uvarint(hdr[off:n])
		if k <= 0 {
			return badDelta("header: the length of the %s stream is unreadable", streamNames[i])
		}
		off += k
		if v > uint64(plen) {
			return badDelta("header: the %s stream has %d bytes, the payload %d", streamNames[i], v, plen)
		}
		lens[i] = int64(v)
	}
	total := int64(off)
	for _, l := range lens {
		total += l
	}
	if total != plen {
		return badDelta("header: the streams add up to %d bytes, the payload has %d", total, plen)
	}
	var streams [bsdiffStreams]*bufio.Reader
	pos := int64(off)
	for i, l := range lens {
		sec := io.NewSectionReader(ra, pos, l)
		pos += l
		if l == 0 {
			streams[i] = bufio.NewReaderSize(sec, 16)
			continue
		}
		dec, err := zstd.NewReader(sec,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(bsdiffMaxWindow),
			zstd.WithDecoderMaxWindow(bsdiffMaxWindow))
		if err != nil {
			return badDelta("the %s stream: %v", streamNames[i], err)
		}
		defer dec.Close()
		streams[i] = bufio.NewReaderSize(dec, 32<<10)
	}
	a.ctrl, a.gaps, a.shapes, a.values, a.extra = streams[0], streams[1], streams[2], streams[3], streams[4]
	out := bufio.NewWriterSize(&errWriter{w}, 64<<10)
	if err := a.run(ctx, out); err != nil {
		return err
	}
	if err := out.Flush(); err != nil {
		return err
	}
	for i, s := range streams {
		if _, err := s.ReadByte(); err != io.EOF {
			if err != nil {
				return badDelta("the %s stream: %v", streamNames[i], err)
			}
			return badDelta("the %s stream holds more than its records use", streamNames[i])
		}
	}
	return nil
}

// readerAt returns payload as an io.ReaderAt with its length, reading it
// into memory (up to bsdiffMaxBuffered) when it is not one already.
func readerAt(payload io.Reader) (io.ReaderAt, int64, error) {
	if s, ok := payload.(interface {
		io.ReaderAt
		Size() int64
	}); ok {
		return s, s.Size(), nil
	}
	b, err := io.ReadAll(io.LimitReader(payload, bsdiffMaxBuffered+1))
	if err != nil {
		return nil, 0, fmt.Errorf("ota: reading the delta: %w", err)
	}
	if len(b) > bsdiffMaxBuffered {
		return nil, 0, badDelta("the payload has more than %d bytes", bsdiffMaxBuffered)
	}
	return bytes.NewReader(b), int64(len(b)), nil
}

// errWriter marks the errors of the destination, to tell them from a bad
// payload.
type errWriter struct{ w io.Writer }

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		return n, &writeError{err}
	}
	return n, nil
}

// applier holds the state of a delta being applied.
type applier struct {
	base                              []byte
	size                              int64
	ctrl, gaps, shapes, values, extra *bufio.Reader
	cand                              bool      // runs may be placed by counting candidate words
	inSet                             [256]bool // the candidate opcode bytes

	// The diff stream: diffPos bytes produced so far; the next run,
	// when loaded, is either at runStart..runEnd or (searching) in the
	// searchLeft-th candidate word from here, at lane, runLen bytes.
	diffPos          int64
	loaded           bool
	state            int
	runStart, runEnd int64
	searchLeft       uint64
	lane, runLen     int64
	prevWord         int64

	buf  [32 << 10]byte
	vals [4 << 10]byte
}

// States of the next run of the diff stream, once loaded.
const (
	runNone   = iota // no more runs: zeros
	runAt            // at runStart..runEnd
	runSearch        // in a candidate word ahead
)

func (a *applier) run(ctx context.Context, out *bufio.Writer) error {
	var newPos, oldPos int64
	oldSize := int64(len(a.base))
	for records := 0; newPos < a.size; records++ {
		if records%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		add, err1 := binary.ReadUvarint(a.ctrl)
		cp, err2 := binary.ReadUvarint(a.ctrl)
		seek, err3 := binary.ReadVarint(a.ctrl)
		if err := errors.Join(err1, err2, err3); err != nil {
			return badDelta("record %d unreadable after %d of %d bytes (%v)", records, newPos, a.size, err)
		}
		left := uint64(a.size - newPos)
		switch {
		case add == 0 && cp == 0 && records > 0:
			// Only the first record may just move the base position.
			return badDelta("record %d moves no byte", records)
		case add > left || cp > left-add:
			return badDelta("record %d writes %d+%d bytes at %d, beyond the binary's %d", records, add, cp, newPos, a.size)
		case add > uint64(oldSize-oldPos):
			return badDelta("record %d reads %d bytes of the base at %d, beyond its %d", records, add, oldPos, oldSize)
		}
		if err := a.addDiff(ctx, out, a.base[oldPos:oldPos+int64(add)]); err != nil {
			return err
		}
		if err := a.copyExtra(ctx, out, int64(cp)); err != nil {
			return err
		}
		newPos += int64(add + cp)
		oldPos += int64(add)
		if seek < -oldPos || seek > oldSize-oldPos {
			return badDelta("record %d moves the base position from %d by %d, outside the base's %d bytes", records, oldPos, seek, oldSize)
		}
		oldPos += seek
	}
	if a.loaded && a.state != runNone {
		return badDelta("the diff stream has runs beyond the %d bytes the records use", a.diffPos)
	}
	return nil
}

// addDiff writes old plus the next len(old) bytes of the diff stream: the
// segment of the diff stream that meets old.
func (a *applier) addDiff(ctx context.Context, out *bufio.Writer, old []byte) error {
	segStart := a.diffPos
	segEnd := segStart + int64(len(old))
	for off := 0; off < len(old); {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := a.buf[:min(len(old)-off, len(a.buf))]
		copy(chunk, old[off:])
		chunkStart := a.diffPos
		chunkEnd := chunkStart + int64(len(chunk))
		for a.diffPos < chunkEnd {
			if !a.loaded {
				if err := a.loadRun(); err != nil {
					return err
				}
			}
			switch a.state {
			case runNone:
				a.diffPos = chunkEnd
			case runSearch:
				// Count the candidate words that start from here:
				// those within the segment whose last byte's base
				// byte is in the set.
				q := (a.diffPos + 3) &^ 3
				for ; q < chunkEnd; q += 4 {
					if q+3 < segEnd && a.inSet[old[q+3-segStart]] {
						if a.searchLeft--; a.searchLeft == 0 {
							break
						}
					}
				}
				if q >= chunkEnd {
					a.diffPos = chunkEnd
					break
				}
				a.runStart = q + a.lane
				a.runEnd = a.runStart + a.runLen
				if a.runEnd > a.size {
					return badDelta("a run of the diff stream at %d..%d lies beyond the binary's %d bytes", a.runStart, a.runEnd, a.size)
				}
				a.prevWord, a.state = q>>2, runAt
			case runAt:
				if a.runStart >= chunkEnd {
					a.diffPos = chunkEnd
					break
				}
				a.diffPos = max(a.diffPos, a.runStart)
				k := min(chunkEnd, a.runEnd) - a.diffPos
				at := a.diffPos - chunkStart
				for done := int64(0); done < k; {
					vals := a.vals[:min(k-done, int64(len(a.vals)))]
					if _, err := io.ReadFull(a.values, vals); err != nil {
						return badDelta("the values stream ends early (%v)", err)
					}
					for j, v := range vals {
						chunk[at+done+int64(j)] += v
					}
					done += int64(len(vals))
				}
				a.diffPos += k
				if a.diffPos == a.runEnd {
					a.loaded = false
				}
			}
		}
		if _, err := out.Write(chunk); err != nil {
			return err
		}
		off += len(chunk)
	}
	return nil
}

// loadRun reads the next run of the diff stream: its place (now, or the
// candidate word to search for) and its shape.
func (a *applier) loadRun() error {
	a.loaded, a.state = true, runNone
	gap, err := binary.ReadUvarint(a.gaps)
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return badDelta("the gaps stream: %v", err)
	}
	shape, err := binary.ReadUvarint(a.shapes)
	if err != nil {
		return badDelta("the shapes stream: %v", err)
	}
	if shape>>2 >= uint64(a.size) {
		return badDelta("a run of %d bytes in the diff stream, longer than the binary's %d", shape>>2+1, a.size)
	}
	a.lane, a.runLen = int64(shape&3), int64(shape>>2)+1
	if a.cand {
		if gap != 0 {
			if gap > uint64(a.size) {
				return badDelta("a run of the diff stream %d candidates ahead, beyond the binary's %d bytes", gap, a.size)
			}
			a.state, a.searchLeft = runSearch, gap
			return nil
		}
		if gap, err = binary.ReadUvarint(a.gaps); err != nil {
			return badDelta("the gaps stream: %v", err)
		}
	}
	if gap > uint64(a.size) {
		return badDelta("a run of the diff stream %d words ahead, beyond the binary's %d bytes", gap, a.size)
	}
	word := a.prevWord + int64(gap)
	start := word<<2 | a.lane
	end := start + a.runLen
	if start < a.diffPos || end > a.size {
		return badDelta("a run of the diff stream at %d..%d overlaps the previous one or lies beyond the binary's %d bytes", start, end, a.size)
	}
	a.prevWord, a.state, a.runStart, a.runEnd = word, runAt, start, end
	return nil
}

// copyExtra writes the next n bytes of the extra stream.
func (a *applier) copyExtra(ctx context.Context, out *bufio.Writer, n int64) error {
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := a.buf[:min(n, int64(len(a.buf)))]
		if _, err := io.ReadFull(a.extra, chunk); err != nil {
			return badDelta("the extra stream ends early (%v)", err)
		}
		if _, err := out.Write(chunk); err != nil {
			return err
		}
		n -= int64(len(chunk))
	}
	return nil
}
