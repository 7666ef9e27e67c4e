package mjpeg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Reasons a frame is dropped. They are stable strings: they appear in
// health reports.
const (
	ReasonTruncated = "truncated"
	ReasonOversize  = "over the frame size cap"
	ReasonNotJPEG   = "not a JPEG"
	ReasonMalformed = "malformed JPEG"
)

// BadFrameError reports a frame that was dropped. The Reader stays usable:
// call Next again for the next frame.
type BadFrameError struct {
	// Reason is one of the Reason constants.
	Reason string
	// Size is how many bytes of the frame were seen.
	Size int
	// Detail adds what was found instead, e.g. a part's Content-Type.
	Detail string
}

func (e *BadFrameError) Error() string {
	s := fmt.Sprintf("mjpeg: dropped a frame: %s (%d bytes)", e.Reason, e.Size)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// ErrNotMJPEG is returned when a stream starts with neither a multipart
// boundary nor a JPEG image.
var ErrNotMJPEG = errors.New("mjpeg: the stream is neither multipart MJPEG nor a raw JPEG stream")

// Mode is the framing of a stream.
type Mode uint8

const (
	// Auto tells multipart from raw by the stream's first bytes.
	Auto Mode = iota
	// Raw is concatenated JPEG images, as ffmpeg -f mjpeg writes and as
	// some cameras serve.
	Raw
	// Multipart is multipart/x-mixed-replace: each image is a part after
	// a boundary line and headers, usually with a Content-Length.
	Multipart
)

// DefaultBufferSize is the read buffer of a Reader.
const DefaultBufferSize = 64 << 10

// maxHeaderLines bounds the header lines of one part.
const maxHeaderLines = 32

// Options configures a Reader.
type Options struct {
	// Mode is the framing; Auto by default.
	Mode Mode
	// Boundary is a multipart stream's boundary from its Content-Type,
	// without the leading "--". Empty: learnt from the first boundary
	// line.
	Boundary string
	// MaxFrame caps the size of a frame; larger frames are dropped
	// (ReasonOversize). Zero means 4 MiB.
	MaxFrame int
	// Alloc returns an empty buffer to hold a frame of about n bytes (a
	// hint). The Reader appends to it, growing it if it is too small, and
	// hands it to the caller with the frame. nil uses make.
	Alloc func(n int) []byte
	// BufferSize is the size of the read buffer; zero means
	// DefaultBufferSize.
	BufferSize int
}

// Reader splits a Motion JPEG stream into frames. Each frame is copied
// once, from the read buffer into a buffer from Options.Alloc; when a
// multipart part gives its Content-Length, most of the frame is read
// straight into that buffer and not copied at all. Damaged frames, frames
// over the cap and parts that are not JPEG are dropped and reported as a
// *BadFrameError, after which the Reader resynchronises on the next frame;
// bytes between frames that belong to no frame are skipped and counted.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	br    *bufio.Reader
	opt   Options
	mode  Mode
	delim []byte // "--boundary"; nil until known
	alt   []byte // the declared boundary itself, when it starts with "--"

	sc       scanner
	afterSOI bool   // the next raw frame's SOI was consumed by the last one
	spare    []byte // a buffer of a dropped frame, reused for the next
	lastLen  int    // length of the last frame, to size the next buffer
	skipped  uint64
	err      error // sticky error: the stream has ended
}

// NewReader returns a Reader of the stream r.
func NewReader(r io.Reader, o Options) *Reader {
	if o.MaxFrame <= 0 {
		o.MaxFrame = 4 << 20
	}
	if o.BufferSize <= 0 {
		o.BufferSize = DefaultBufferSize
	}
	rd := &Reader{br: bufio.NewReaderSize(r, o.BufferSize), opt: o}
	rd.Reset(r)
	return rd
}

// Reset makes the Reader read a new stream from r, keeping its buffers
// and options (a replayed file starting over, say). The skipped count is
// kept.
func (r *Reader) Reset(src io.Reader) {
	r.br.Reset(src)
	r.mode = r.opt.Mode
	r.delim, r.alt = nil, nil
	if b := r.opt.Boundary; b != "" {
		r.delim = append([]byte("--"), b...)
		if len(b) > 2 && b[:2] == "--" {
			r.alt = []byte(b)
		}
	}
	r.afterSOI, r.err = false, nil
}

// Skipped is the number of bytes skipped so far because they belonged to
// no frame (garbage between frames, lines that are not boundaries).
// Multipart headers are not counted.
func (r *Reader) Skipped() uint64 { return r.skipped }

// Next returns the next frame: the JPEG image (SOI to EOI; trailing bytes
// a camera padded it with are cut off) in a buffer from Options.Alloc,
// which now belongs to the caller, and its description. It returns a
// *BadFrameError for a dropped frame (call Next again), io.EOF at the end
// of the stream, ErrNotMJPEG for a stream that is not MJPEG at all, or
// the underlying reader's error.
func (r *Reader) Next() ([]byte, Info, error) {
	if r.err != nil {
		return nil, Info{}, r.err
	}
	if r.mode == Auto {
		if err := r.sniff(); err != nil {
			r.err = err
			return nil, Info{}, err
		}
	}
	if r.mode == Multipart {
		return r.nextPart()
	}
	return r.nextRaw()
}

// sniff decides the mode from the first bytes that are not white space.
func (r *Reader) sniff() error {
	for {
		b, err := r.br.Peek(1)
		if err != nil {
			return err
		}
		if c := b[0]; c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			r.br.Discard(1)
			continue
		}
		break
	}
	b, err := r.br.Peek(2)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	switch {
	case b[0] == '-' && b[1] == '-':
		r.mode = Multipart
	case b[0] == 0xFF && b[1] == mSOI:
		r.mode = Raw
	default:
		head, _ := r.br.Peek(64) // as much as there is, up to 64 bytes
		return fmt.Errorf("%w: it starts with %s", ErrNotMJPEG, quoteHead(head))
	}
	return nil
}

// quoteHead shows the start of a stream in an error, printable.
func quoteHead(b []byte) string {
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		b = b[:i]
	}
	return strconv.QuoteToASCII(string(b))
}

// buffer returns an empty buffer for a frame of about n bytes.
func (r *Reader) buffer(n int) []byte {
	if r.spare != nil && cap(r.spare) >= n {
		b := r.spare[:0]
		r.spare = nil
		return b
	}
	if r.opt.Alloc != nil {
		return r.opt.Alloc(n)[:0]
	}
	return make([]byte, 0, n)
}

// sizeHint is the buffer to ask for when a frame's length is unknown: a
// little more than the last frame.
func (r *Reader) sizeHint() int {
	return min(r.lastLen+r.lastLen/4+4096, r.opt.MaxFrame)
}

// chunk returns the buffered bytes, reading more if none are buffered.
func (r *Reader) chunk() ([]byte, error) {
	if r.br.Buffered() == 0 {
		if _, err := r.br.Peek(1); err != nil {
			return nil, err
		}
	}
	return r.br.Peek(r.br.Buffered())
}

// syncSOI skips to the next SOI (FF D8), counting what it skips.
func (r *Reader) syncSOI() error {
	for {
		b, err := r.chunk()
		if err != nil {
			return err
		}
		i := bytes.IndexByte(b, 0xFF)
		switch {
		case i < 0:
			r.skip(len(b))
		case i == len(b)-1:
			r.skip(i)
			// The FF is the last buffered byte: look at the next one.
			two, err := r.br.Peek(2)
			if err != nil {
				r.skip(1)
				return err
			}
			if two[1] == mSOI {
				return nil
			}
			r.skip(1)
		case b[i+1] == mSOI:
			r.skip(i)
			return nil
		default:
			r.skip(i + 1)
		}
	}
}

func (r *Reader) skip(n int) {
	r.br.Discard(n)
	r.skipped += uint64(n)
}

// nextRaw reads the next image of a raw stream.
func (r *Reader) nextRaw() ([]byte, Info, error) {
	if r.afterSOI {
		r.afterSOI = false
		r.sc.reset(true)
		return r.scanImage(append(r.buffer(r.sizeHint()), 0xFF, mSOI))
	}
	if err := r.syncSOI(); err != nil {
		r.err = err
		return nil, Info{}, err
	}
	r.sc.reset(false)
	return r.scanImage(r.buffer(r.sizeHint()))
}

// scanImage reads the rest of an image whose first bytes (if any) are in
// dst and whose scanner state is r.sc.
func (r *Reader) scanImage(dst []byte) ([]byte, Info, error) {
	over := false
	for {
		b, err := r.chunk()
		if err != nil {
			r.spare = dst
			r.err = err
			if err == io.EOF {
				return nil, Info{}, &BadFrameError{Reason: ReasonTruncated, Size: r.sc.n}
			}
			return nil, Info{}, err
		}
		used, st := r.sc.feed(b)
		if !over && len(dst)+used > r.opt.MaxFrame {
			over = true
		}
		if !over {
			dst = append(dst, b[:used]...)
		}
		r.br.Discard(used)
		switch st {
		case more:
			continue
		case done:
			if over {
				r.spare = dst
				return nil, Info{}, &BadFrameError{Reason: ReasonOversize, Size: r.sc.n}
			}
			r.lastLen = len(dst)
			return dst, Info{Len: len(dst), Width: r.sc.width, Height: r.sc.height, HasHuffman: r.sc.hasDHT}, nil
		case restart:
			r.afterSOI = true
			r.spare = dst
			return nil, Info{}, &BadFrameError{Reason: ReasonTruncated, Size: r.sc.n - 2}
		default:
			r.spare = dst
			return nil, Info{}, &BadFrameError{Reason: ReasonMalformed, Size: r.sc.n}
		}
	}
}

// line reads one line, without its line ending. A line longer than the
// read buffer is returned in pieces with long set.
func (r *Reader) line() (line []byte, long bool, err error) {
	b, err := r.br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return b, true, nil
	case err != nil && len(b) == 0:
		return nil, false, err
	}
	return bytes.TrimRight(b, "\r\n"), false, nil
}

// isDelim reports whether the trimmed line t is a boundary line, and
// whether it closes the stream.
func (r *Reader) isDelim(t []byte) (delim, closing bool) {
	for _, d := range [][]byte{r.delim, r.alt} {
		if d == nil || !bytes.HasPrefix(t, d) {
			continue
		}
		rest := t[len(d):]
		switch {
		case len(rest) == 0:
			return true, false
		case bytes.Equal(rest, []byte("--")):
			return true, true
		}
	}
	return false, false
}

// nextPart reads the next part of a multipart stream.
func (r *Reader) nextPart() ([]byte, Info, error) {
	// Find the boundary line.
	for {
		l, long, err := r.line()
		if err != nil {
			r.err = err
			return nil, Info{}, err
		}
		t := bytes.TrimSpace(l)
		if long {
			r.skipped += uint64(len(l))
			continue
		}
		if len(t) == 0 {
			continue
		}
		if r.delim == nil && len(t) > 2 && t[0] == '-' && t[1] == '-' {
			r.delim = bytes.Clone(t)
		}
		if ok, closing := r.isDelim(t); ok {
			if closing {
				r.err = io.EOF
				return nil, Info{}, io.EOF
			}
			break
		}
		r.skipped += uint64(len(l)) + 1
	}

	// The part's headers.
	length := -1
	notImage := "" // the Content-Type of a part that is not an image
	for n := 0; ; n++ {
		l, long, err := r.line()
		if err != nil {
			r.err = err
			return nil, Info{}, err
		}
		if long || n == maxHeaderLines {
			return nil, Info{}, &BadFrameError{Reason: ReasonMalformed, Detail: "part headers too long"}
		}
		t := bytes.TrimSpace(l)
		if len(t) == 0 {
			break
		}
		name, value, ok := bytes.Cut(t, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Length")):
			length = parseLength(value)
		case bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Type")):
			// value points into the read buffer: look at it now.
			if !isImage(value) {
				notImage = strconv.QuoteToASCII(string(value))
			}
		}
	}

	if notImage != "" {
		detail := "Content-Type " + notImage
		if length >= 0 {
			n, err := r.br.Discard(length)
			r.skipped += uint64(n)
			if err != nil {
				r.err = err
			}
		}
		return nil, Info{}, &BadFrameError{Reason: ReasonNotJPEG, Size: max(length, 0), Detail: detail}
	}

	if length < 0 {
		// No length: scan the image to its end.
		if err := r.syncSOI(); err != nil {
			r.err = err
			return nil, Info{}, err
		}
		r.sc.reset(false)
		return r.scanImage(r.buffer(r.sizeHint()))
	}

	if length > r.opt.MaxFrame {
		n, err := r.br.Discard(length)
		if err != nil {
			r.err = err
		}
		return nil, Info{}, &BadFrameError{Reason: ReasonOversize, Size: n}
	}
	dst := r.buffer(length)
	if cap(dst) < length {
		dst = make([]byte, 0, length)
	}
	dst = dst[:length]
	// bufio copies what it has buffered, then reads the rest straight
	// into dst.
	n, err := io.ReadFull(r.br, dst)
	if err != nil {
		r.spare = dst
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			r.err = io.EOF
			return nil, Info{}, &BadFrameError{Reason: ReasonTruncated, Size: n}
		}
		r.err = err
		return nil, Info{}, err
	}
	// Some cameras put a line ending before the image.
	off := 0
	for off < len(dst) && off < 4 && (dst[off] == '\r' || dst[off] == '\n') {
		off++
	}
	info, err := Check(dst[off:])
	if err != nil {
		r.spare = dst
		return nil, Info{}, err
	}
	r.lastLen = info.Len
	return dst[off : off+info.Len], info, nil
}

// isImage reports whether a part's Content-Type is an image type.
func isImage(ctype []byte) bool {
	const p = "image/"
	return len(ctype) >= len(p) && bytes.EqualFold(ctype[:len(p)], []byte(p))
}

// parseLength parses a Content-Length value; -1 if it is not a number.
func parseLength(b []byte) int {
	if len(b) == 0 || len(b) > 10 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}
