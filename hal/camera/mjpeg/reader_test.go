package mjpeg

import (
	"bytes"
	"errors"
	"image/jpeg"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestCheck(t *testing.T) {
	img := testJPEG(t, 64, 48, 1)
	noDHT := withoutHuffman(t, img)
	for _, tc := range []struct {
		name       string
		b          []byte
		wantLen    int
		wantReason string
		huffman    bool
	}{
		{"whole", img, len(img), "", true},
		{"padded by the driver", concat(img, make([]byte, 100)), len(img), "", true},
		{"exif thumbnail in a header", withThumbnail(t, img), len(withThumbnail(t, img)), "", true},
		{"without Huffman tables", noDHT, len(noDHT), "", false},
		{"two scans", multiScan(), len(multiScan()), "", true},
		{"cut in the entropy data", img[:len(img)-10], 0, ReasonTruncated, false},
		{"cut in a header", img[:30], 0, ReasonTruncated, false},
		{"cut before EOI's second byte", img[:len(img)-1], 0, ReasonTruncated, false},
		{"next image starts inside", concat(img[:len(img)/2], img), 0, ReasonTruncated, false},
		{"html", []byte("<html><body>login</body></html>"), 0, ReasonNotJPEG, false},
		{"empty", nil, 0, ReasonTruncated, false},
		{"bad segment length", concat([]byte{0xFF, mSOI, 0xFF, 0xE0, 0, 1}, img[2:]), 0, ReasonMalformed, false},
		{"EOI before any scan", []byte{0xFF, mSOI, 0xFF, mEOI}, 0, ReasonMalformed, false},
		{"scan before frame header", concat([]byte{0xFF, mSOI}, segment(mSOS, []byte{1, 1, 0, 0, 63, 0}), []byte{0xFF, mEOI}), 0, ReasonMalformed, false},
		{"junk between segments", concat(img[:20], []byte{0x42}, img[20:]), 0, ReasonMalformed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := Check(tc.b)
			if tc.wantReason != "" {
				var bf *BadFrameError
				if !errors.As(err, &bf) || bf.Reason != tc.wantReason {
					t.Fatalf("Check = %+v, %v; want a %q BadFrameError", info, err, tc.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Len != tc.wantLen || info.HasHuffman != tc.huffman {
				t.Fatalf("Check = %+v, want Len %d, HasHuffman %v", info, tc.wantLen, tc.huffman)
			}
		})
	}
}

func TestCheckSize(t *testing.T) {
	info, err := Check(testJPEG(t, 64, 48, 1))
	if err != nil || info.Width != 64 || info.Height != 48 {
		t.Fatalf("Check = %+v, %v; want 64x48", info, err)
	}
	info, err = Check(multiScan())
	if err != nil || info.Width != 48 || info.Height != 32 {
		t.Fatalf("multi-scan: Check = %+v, %v; want 48x32", info, err)
	}
}

// TestScannerChunking feeds images a byte at a time and in odd chunks: the
// result must not depend on how the bytes arrive.
func TestScannerChunking(t *testing.T) {
	for _, img := range [][]byte{testJPEG(t, 64, 48, 2), withThumbnail(t, testJPEG(t, 32, 32, 3)), multiScan()} {
		whole, _ := Check(img)
		for _, size := range []int{1, 2, 3, 7, 64, 1000} {
			var s scanner
			pos := 0
			var st status
			for pos < len(img) && st == more {
				end := min(pos+size, len(img))
				var used int
				used, st = s.feed(img[pos:end])
				pos += used
			}
			if st != done || pos != whole.Len || s.width != whole.Width || s.height != whole.Height {
				t.Errorf("chunks of %d: status %d at %d (%dx%d), want done at %d (%dx%d)", size, st, pos, s.width, s.height, whole.Len, whole.Width, whole.Height)
			}
		}
	}
}

func TestWithHuffmanTables(t *testing.T) {
	img := testJPEG(t, 64, 48, 4)
	stripped := withoutHuffman(t, img)
	if _, err := jpeg.Decode(bytes.NewReader(stripped)); err == nil {
		t.Fatal("Go's decoder read a frame without Huffman tables: the test proves nothing")
	}
	fixed, err := WithHuffmanTables(stripped)
	if err != nil {
		t.Fatal(err)
	}
	// image/jpeg encodes with the standard tables, so the fixed frame
	// decodes to exactly the original picture.
	want, err := jpeg.Decode(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	got, err := jpeg.Decode(bytes.NewReader(fixed))
	if err != nil {
		t.Fatalf("decoding the frame with tables inserted: %v", err)
	}
	if !bytes.Equal(pixels(want), pixels(got)) {
		t.Fatal("the frame with standard tables decodes to a different picture")
	}
	same, err := WithHuffmanTables(img)
	if err != nil || &same[0] != &img[0] {
		t.Fatalf("a frame with tables was not returned as is (err %v)", err)
	}
	if _, err := WithHuffmanTables(img[:100]); err == nil {
		t.Fatal("a truncated frame was accepted")
	}
}

func TestReader(t *testing.T) {
	a, b, c := testJPEG(t, 64, 48, 1), testJPEG(t, 64, 48, 2), testJPEG(t, 64, 48, 3)
	big := testJPEG(t, 320, 240, 4)
	noDHT := withoutHuffman(t, b)
	garbage := []byte("\x00\x01 some bytes that are not a frame \xff\x00\xff")
	for _, tc := range []struct {
		name     string
		stream   []byte
		opt      Options
		want     [][]byte
		bad      []string
		err      error
		skipped  uint64
		errMatch string
	}{
		{name: "raw", stream: concat(a, b, c), want: [][]byte{a, b, c}, err: io.EOF},
		{name: "raw with garbage between frames", stream: concat(garbage, a, garbage, b, c), opt: Options{Mode: Raw}, want: [][]byte{a, b, c}, err: io.EOF, skipped: 2 * uint64(len(garbage))},
		{name: "raw truncated frame then a good one", stream: concat(a, b[:len(b)/2], c), want: [][]byte{a, c}, bad: []string{ReasonTruncated}, err: io.EOF},
		{name: "raw truncated at the end", stream: concat(a, b[:len(b)-3]), want: [][]byte{a}, bad: []string{ReasonTruncated}, err: io.EOF},
		{name: "raw frame over the cap", stream: concat(a, big, c), opt: Options{MaxFrame: len(big) - 1}, want: [][]byte{a, c}, bad: []string{ReasonOversize}, err: io.EOF},
		{name: "raw malformed frame", stream: concat(a, b[:2], []byte{0x42}, b[2:], c), want: [][]byte{a, c}, bad: []string{ReasonMalformed}, err: io.EOF, skipped: uint64(len(b) - 2)},
		{name: "raw frames without Huffman tables", stream: concat(noDHT, a), want: [][]byte{noDHT, a}, err: io.EOF},
		{name: "raw with thumbnails", stream: concat(withThumbnail(t, a), b), want: [][]byte{withThumbnail(t, a), b}, err: io.EOF},
		{name: "multipart with lengths", stream: multipart("ffmpeg", true, a, b, c), want: [][]byte{a, b, c}, err: io.EOF},
		{name: "multipart without lengths", stream: multipart("ffmpeg", false, a, b, c), want: [][]byte{a, b, c}, err: io.EOF},
		{name: "multipart with declared boundary", stream: multipart("myboundary", true, a, b), opt: Options{Boundary: "myboundary"}, want: [][]byte{a, b}, err: io.EOF},
		{name: "multipart boundary declared with dashes", stream: concat([]byte("--myb\r\nContent-Length: "+itoa(len(a))+"\r\n\r\n"), a, []byte("\r\n----myb\r\n\r\n"), b), opt: Options{Boundary: "--myb"}, want: [][]byte{a, b}, err: io.EOF},
		{name: "multipart closing boundary", stream: concat(multipart("x", true, a), []byte("--x--\r\n"), multipart("x", true, b)), want: [][]byte{a}, err: io.EOF},
		{name: "multipart length too short", stream: multipart2("b", a, len(a)-100, b), want: [][]byte{b}, bad: []string{ReasonTruncated}, err: io.EOF},
		{name: "multipart length too long eats the next part", stream: multipart2("b", a, len(a)+60, b, c), want: [][]byte{a, c}, err: io.EOF},
		{name: "multipart padded part", stream: multipart("b", true, concat(a, []byte("\r\n\r\n")), b), want: [][]byte{a, b}, err: io.EOF},
		{name: "multipart html part", stream: concat(multipart("b", true, a), []byte("--b\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n<html></html>\r\n"), multipart("b", true, b)), want: [][]byte{a, b}, bad: []string{ReasonNotJPEG}, err: io.EOF},
		{name: "multipart html part without length", stream: concat(multipart("b", true, a), []byte("--b\r\nContent-Type: text/html\r\n\r\n<html>\r\n<body>\r\n</html>\r\n"), multipart("b", true, b)), want: [][]byte{a, b}, bad: []string{ReasonNotJPEG}, err: io.EOF},
		{name: "multipart part over the cap", stream: multipart("b", true, a, big, c), opt: Options{MaxFrame: len(big) - 1}, want: [][]byte{a, c}, bad: []string{ReasonOversize}, err: io.EOF},
		{name: "multipart garbage between parts", stream: concat(multipart("b", true, a), garbage, []byte("\r\n"), multipart("b", true, b)), want: [][]byte{a, b}, err: io.EOF},
		{name: "multipart truncated at the end", stream: multipart("b", true, a, b)[:len(multipart("b", true, a, b))-50], want: [][]byte{a}, bad: []string{ReasonTruncated}, err: io.EOF},
		{name: "html page", stream: []byte("<!DOCTYPE html>\n<html><title>Login</title></html>"), errMatch: `neither multipart MJPEG nor a raw JPEG stream: it starts with "<!DOCTYPE html>"`},
		{name: "empty", stream: nil, err: io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, wrap := range []struct {
				name string
				r    func(io.Reader) io.Reader
			}{
				{"whole", func(r io.Reader) io.Reader { return r }},
				{"one byte at a time", iotest.OneByteReader},
				{"half reads", iotest.HalfReader},
			} {
				opt := tc.opt
				opt.BufferSize = 256 // small, so frames span many reads
				res := readAll(t, NewReader(wrap.r(bytes.NewReader(tc.stream)), opt))
				if tc.errMatch != "" {
					if res.err == nil || !strings.Contains(res.err.Error(), tc.errMatch) {
						t.Fatalf("%s: error %v, want one containing %q", wrap.name, res.err, tc.errMatch)
					}
					continue
				}
				if !errors.Is(res.err, tc.err) {
					t.Errorf("%s: ended with %v, want %v", wrap.name, res.err, tc.err)
				}
				if len(res.frames) != len(tc.want) {
					t.Fatalf("%s: %d frames, want %d (dropped: %v)", wrap.name, len(res.frames), len(tc.want), res.bad)
				}
				for i := range tc.want {
					if !bytes.Equal(res.frames[i], tc.want[i]) {
						t.Errorf("%s: frame %d differs (%d bytes, want %d)", wrap.name, i, len(res.frames[i]), len(tc.want[i]))
					}
				}
				if strings.Join(res.bad, ",") != strings.Join(tc.bad, ",") {
					t.Errorf("%s: dropped %v, want %v", wrap.name, res.bad, tc.bad)
				}
				if tc.skipped != 0 && res.skipped != tc.skipped {
					t.Errorf("%s: skipped %d bytes, want %d", wrap.name, res.skipped, tc.skipped)
				}
			}
		})
	}
}

// multipart2 frames first with a wrong Content-Length, then rest with
// right ones.
func multipart2(boundary string, first []byte, length int, rest ...[]byte) []byte {
	head := "--" + boundary + "\r\nContent-Type: image/jpeg\r\nContent-Length: " + itoa(length) + "\r\n\r\n"
	return concat([]byte(head), first, []byte("\r\n"), multipart(boundary, true, rest...))
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

// TestReaderUnderlyingError: a failing connection is reported as itself,
// not as a bad frame.
func TestReaderUnderlyingError(t *testing.T) {
	a := testJPEG(t, 64, 48, 1)
	boom := errors.New("connection reset")
	r := NewReader(io.MultiReader(bytes.NewReader(multipart("b", true, a)), iotest.ErrReader(boom)), Options{})
	if _, _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next = %v, want %v", err, boom)
	}
	if _, _, err := r.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next after the error = %v, want %v again", err, boom)
	}
}

// TestReaderReusesBuffers checks the Alloc contract: frames land in the
// buffers Alloc hands out, and a dropped frame's buffer is reused rather
// than asking again.
func TestReaderReusesBuffers(t *testing.T) {
	a, b := testJPEG(t, 64, 48, 1), testJPEG(t, 64, 48, 2)
	calls := 0
	alloc := func(n int) []byte {
		calls++
		return make([]byte, 0, max(n, 64<<10))
	}
	for _, mode := range []Mode{Raw, Multipart} {
		calls = 0
		var stream []byte
		if mode == Raw {
			stream = concat(a, a[:len(a)/2], b)
		} else {
			stream = concat(multipart("b", true, a), multipart2("b", a, len(a)-9, b))
		}
		r := NewReader(bytes.NewReader(stream), Options{Mode: mode, Alloc: alloc})
		res := readAll(t, r)
		if len(res.frames) != 2 || len(res.bad) != 1 {
			t.Fatalf("mode %d: %d frames, %v dropped; want 2 and 1", mode, len(res.frames), res.bad)
		}
		if calls != 2 { // a, and the dropped one's, reused for b
			t.Errorf("mode %d: Alloc called %d times, want 2", mode, calls)
		}
	}
}

func FuzzReader(f *testing.F) {
	for _, seed := range seeds(f) {
		f.Add(seed, uint8(0))
	}
	f.Fuzz(func(t *testing.T, stream []byte, mode uint8) {
		opt := Options{Mode: Mode(mode % 3), MaxFrame: 64 << 10, BufferSize: 64}
		whole := readAll(t, NewReader(bytes.NewReader(stream), opt))
		total := 0
		for _, fr := range whole.frames {
			info, err := Check(fr)
			if err != nil || info.Len != len(fr) {
				t.Fatalf("a delivered frame does not check: %+v, %v", info, err)
			}
			if len(fr) > opt.MaxFrame {
				t.Fatalf("a %d-byte frame passed the %d cap", len(fr), opt.MaxFrame)
			}
			total += len(fr)
		}
		if total > len(stream) {
			t.Fatalf("%d bytes of frames out of a %d-byte stream", total, len(stream))
		}
		// How the bytes arrive must not change what is read.
		bytewise := readAll(t, NewReader(iotest.OneByteReader(bytes.NewReader(stream)), opt))
		if len(bytewise.frames) != len(whole.frames) || strings.Join(bytewise.bad, ",") != strings.Join(whole.bad, ",") {
			t.Fatalf("byte at a time: %d frames, dropped %v; whole: %d frames, dropped %v", len(bytewise.frames), bytewise.bad, len(whole.frames), whole.bad)
		}
		for i := range whole.frames {
			if !bytes.Equal(whole.frames[i], bytewise.frames[i]) {
				t.Fatalf("frame %d differs when read a byte at a time", i)
			}
		}
	})
}

func FuzzCheck(f *testing.F) {
	for _, seed := range seeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := Check(b)
		if err != nil {
			return
		}
		if info.Len < 4 || info.Len > len(b) || b[info.Len-2] != 0xFF || b[info.Len-1] != mEOI {
			t.Fatalf("Check = %+v for %d bytes not ending in EOI", info, len(b))
		}
		// The same image fed in two pieces gives the same answer.
		var s scanner
		cut := len(b) / 3
		u1, st := s.feed(b[:cut])
		if st == more {
			var u2 int
			u2, st = s.feed(b[cut:])
			u1 += u2
		}
		if st != done || u1 != info.Len {
			t.Fatalf("in two pieces: status %d after %d bytes, whole: done after %d", st, u1, info.Len)
		}
		if fixed, err := WithHuffmanTables(b[:info.Len]); err == nil {
			if fi, err := Check(fixed); err != nil || !fi.HasHuffman {
				t.Fatalf("WithHuffmanTables gave %+v, %v", fi, err)
			}
		}
	})
}

// TestReaderAllocatesNothing: in steady state, with buffers handed back,
// splitting a stream allocates nothing per frame, in any framing.
func TestReaderAllocatesNothing(t *testing.T) {
	frames := [][]byte{testJPEG(t, 64, 48, 1), testJPEG(t, 64, 48, 2), testJPEG(t, 64, 48, 3)}
	for _, tc := range []struct {
		name   string
		stream []byte
		mode   Mode
	}{
		{"raw", concat(frames...), Raw},
		{"multipart with lengths", multipart("b", true, frames...), Multipart},
		{"multipart without lengths", multipart("b", false, frames...), Multipart},
	} {
		var free [][]byte
		alloc := func(n int) []byte {
			for i, b := range free {
				if cap(b) >= n {
					free = append(free[:i], free[i+1:]...)
					return b[:0]
				}
			}
			return make([]byte, 0, 64<<10)
		}
		r := NewReader(&loopReader{b: tc.stream}, Options{Mode: tc.mode, Alloc: alloc})
		free = make([][]byte, 0, 4)
		allocs := testing.AllocsPerRun(200, func() {
			f, _, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			free = append(free, f)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations a frame, want 0", tc.name, allocs)
		}
	}
}
