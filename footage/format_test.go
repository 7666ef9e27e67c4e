package footage

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/clock"
)

var update = flag.Bool("update", false, "rewrite the segment files in testdata")

// memFile is an in-memory segment for scanner tests.
type memFile struct{ b []byte }

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, ioEOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, ioEOF
	}
	return n, nil
}

// buildSegment encodes a segment holding the given payloads as frames.
func buildSegment(firstSeq uint64, payloads [][]byte, start time.Time) []byte {
	b := segHeader{version: schemaVersion, run: 1, firstSeq: firstSeq, created: start.UnixNano()}.encode()
	for i, p := range payloads {
		h := recHeader{seq: firstSeq + uint64(i), time: start.Add(time.Duration(i) * 40 * time.Millisecond).UnixNano(),
			codec: codecFourCC[camera.MJPEG], width: 64, height: 48, kind: kindFrame}
		rec := make([]byte, recordSize(len(p)))
		encodeRecordHeader(h, p, rec)
		copy(rec[recHeaderSize:], p)
		b = append(b, rec...)
	}
	return b
}

func payloads(n int) [][]byte {
	var out [][]byte
	for i := 0; i < n; i++ {
		p := bytes.Repeat([]byte{byte(i), 0xd8, byte(i * 7)}, 10+i*13)
		out = append(out, p)
	}
	return out
}

func TestScanRoundTrip(t *testing.T) {
	ps := payloads(20)
	seg := buildSegment(100, ps, time.Unix(1700000000, 0))
	res, err := scanSegment(&memFile{seg}, int64(len(seg)))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.index) != len(ps) || res.tail != 0 || len(res.damaged) != 0 || res.dataEnd != int64(len(seg)) {
		t.Fatalf("scan: %d records, tail %d, damaged %v, end %d of %d", len(res.index), res.tail, res.damaged, res.dataEnd, len(seg))
	}
	for i, e := range res.index {
		b, _, err := readRecord(&memFile{seg}, e, nil)
		if err != nil || !bytes.Equal(b[recHeaderSize:recHeaderSize+int(e.length)], ps[i]) || e.seq != 100+uint64(i) {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	// Sealing appends a footer whose index matches the scan.
	sum := res.sum
	sum.dataEnd = res.dataEnd
	sealed := append(append([]byte(nil), seg...), footerBytes(&sum, res.index)...)
	fs, idx, ok, err := readFooter(&memFile{sealed}, int64(len(sealed)), true)
	if err != nil || !ok {
		t.Fatalf("readFooter: ok=%v err=%v", ok, err)
	}
	if fs.frames != 20 || fs.firstSeq != 100 || fs.lastSeq != 119 || len(idx) != 20 || idx[7] != res.index[7] {
		t.Fatalf("footer summary %+v", fs)
	}
	// A sealed segment scanned record by record stops at the footer.
	res2, err := scanSegment(&memFile{sealed}, int64(len(sealed)))
	if err != nil || !res2.footer || len(res2.index) != 20 || res2.tail != 0 {
		t.Fatalf("scan sealed: footer=%v records=%d tail=%d err=%v", res2.footer, len(res2.index), res2.tail, err)
	}
}

func TestScanDamage(t *testing.T) {
	ps := payloads(12)
	seg := buildSegment(1, ps, time.Unix(1700000000, 0))
	res, _ := scanSegment(&memFile{seg}, int64(len(seg)))
	offs := res.index
	garbage := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 'F', 0, 0, 0}, 300)
	cases := []struct {
		name       string
		mutate     func([]byte) []byte
		records    int
		damaged    int
		tornAtLast bool
	}{
		{"zero tail", func(b []byte) []byte { return append(b, make([]byte, 8192)...) }, 12, 0, true},
		{"garbage tail", func(b []byte) []byte { return append(b, garbage...) }, 12, 0, true},
		{"torn last record", func(b []byte) []byte { return b[:offs[11].off+recHeaderSize+5] }, 11, 0, true},
		{"torn header", func(b []byte) []byte { return b[:offs[11].off+17] }, 11, 0, true},
		{"missing padding", func(b []byte) []byte { return b[:offs[11].off+recHeaderSize+int64(offs[11].length)] }, 12, 0, false},
		{"bit flip mid", func(b []byte) []byte { b[offs[5].off+recHeaderSize+3] ^= 0x10; return b }, 11, 1, false},
		{"length flip mid", func(b []byte) []byte { b[offs[4].off+1] ^= 0x40; return b }, 11, 1, false},
		{"zeroed mid", func(b []byte) []byte { clear(b[offs[3].off:offs[5].off]); return b }, 10, 1, false},
		{"bit flip last", func(b []byte) []byte { b[offs[11].off+recHeaderSize] ^= 1; return b }, 11, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.mutate(append([]byte(nil), seg...))
			res, err := scanSegment(&memFile{b}, int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.index) != c.records || len(res.damaged) != c.damaged || (res.tail > 0) != c.tornAtLast {
				t.Fatalf("records %d (want %d), damaged %v (want %d), tail %d", len(res.index), c.records, res.damaged, c.damaged, res.tail)
			}
			for _, e := range res.index {
				if _, _, err := readRecord(&memFile{b}, e, nil); err != nil && c.name != "missing padding" {
					t.Fatalf("record %d served though damaged: %v", e.seq, err)
				}
			}
		})
	}
}

// TestWriteTestdata keeps the fuzz seeds in testdata: segments written by
// the store itself (sealed, torn, with a clock correction and an event).
// go test -run TestWriteTestdata -update rewrites them.
func TestWriteTestdata(t *testing.T) {
	files := map[string][]byte{}
	dir := t.TempDir()
	clk := clock.NewFake(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	o := Options{SegmentDuration: time.Hour, SegmentMaxSize: 1 << 20, MaxFrameSize: 1 << 16}
	s, err := Open(dir, o, nil, clk)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range payloads(6) {
		if _, err := s.Append(camera.Frame{Data: p, Codec: camera.MJPEG, Time: clk.Now().Add(time.Duration(i) * 40 * time.Millisecond), Width: 64, Height: 48}, FlagEvent); err != nil {
			t.Fatal(err)
		}
	}
	s.AppendEvent("motion", clk.Now())
	s.NoteClockStep(time.Hour, clk.Now())
	s.Append(camera.Frame{Data: []byte("after the step"), Codec: camera.MJPEG, Time: clk.Now(), Width: 64, Height: 48}, 0)
	s.Sync()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(names) != 2 {
		t.Fatalf("%d segments, want 2", len(names))
	}
	sealed, _ := os.ReadFile(names[0])
	files["sealed.seg"] = sealed
	files["torn.seg"] = sealed[:len(sealed)/2]
	files["unsealed.seg"] = buildSegment(9, payloads(3), time.Unix(0, 0))
	for name, b := range files {
		p := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		old, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%v (run go test -run TestWriteTestdata -update)", err)
		}
		// The structure must still read the same: same records found.
		a, err1 := scanSegment(&memFile{old}, int64(len(old)))
		c, err2 := scanSegment(&memFile{b}, int64(len(b)))
		if (err1 == nil) != (err2 == nil) || len(a.index) != len(c.index) || a.footer != c.footer {
			t.Errorf("%s no longer reads as it did: %d records (footer %v) vs %d now (footer %v); rerun with -update if the format changed on purpose",
				name, len(a.index), a.footer, len(c.index), c.footer)
		}
	}
}

// FuzzScanSegment feeds arbitrary bytes to the segment reader: it must not
// panic, must never return a record whose CRC does not check, and every
// record it returns must re-encode to the bytes it was read from.
func FuzzScanSegment(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.seg"))
	if len(seeds) == 0 {
		f.Fatal("no seeds in testdata (run go test -run TestWriteTestdata -update)")
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := &memFile{b}
		res, err := scanSegment(m, int64(len(b)))
		if err != nil {
			return
		}
		prev := uint64(0)
		for _, e := range res.index {
			rec, h, err := readRecord(m, e, nil)
			if err != nil {
				t.Fatalf("scan returned record %d at %d that does not read back: %v", e.seq, e.off, err)
			}
			if e.seq <= prev && prev != 0 {
				t.Fatalf("sequence %d after %d", e.seq, prev)
			}
			prev = e.seq
			again := make([]byte, recHeaderSize)
			encodeRecordHeader(h, rec[recHeaderSize:recHeaderSize+int(e.length)], again)
			if !bytes.Equal(again, rec[:recHeaderSize]) {
				t.Fatalf("record %d does not re-encode to its bytes", e.seq)
			}
		}
		if res.dataEnd < segHeaderSize || (res.tail > 0 && res.dataEnd+res.tail != int64(len(b))) {
			t.Fatalf("data end %d, tail %d, size %d", res.dataEnd, res.tail, len(b))
		}
		// A footer, if any, must decode without panicking.
		readFooter(m, int64(len(b)), true)
	})
}

var ioEOF = func() error { _, err := bytes.NewReader(nil).Read(make([]byte, 1)); return err }()
