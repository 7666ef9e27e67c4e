package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sampleFile builds a log file of n entries, as Append writes it.
func sampleFile(n int) []byte {
	b := fileHeader{first: 1}.encode()
	var prev [32]byte
	for i := 1; i <= n; i++ {
		canon := []byte(`{"seq":` + string(rune('0'+i)) + `,"time":"2026-11-25T03:12:00Z","action":"snapshot","result":"ok"}`)
		h := chainHash(prev, canon)
		b = append(b, encodeRecord(uint64(i), h, canon)...)
		prev = h
	}
	return b
}

func seeds(f *testing.F) {
	good := sampleFile(5)
	f.Add([]byte{})
	f.Add(fileHeader{first: 1}.encode())
	f.Add(good)
	f.Add(good[:len(good)-13])
	f.Add(append(good[:200:200], good[260:]...))
	f.Add(append(append([]byte{}, good...), 0xff, 0xfe, 0x00, 0x01))
	bad := append([]byte{}, good...)
	bad[headerSize+60] ^= 0x10
	f.Add(bad)
	f.Add([]byte("OPAUDIT1 not really"))
}

// FuzzScan reads arbitrary bytes as a log file: scan must never panic,
// and what it takes for records must lie in order within the file, the
// damage between them, and re-encode to the very bytes read.
func FuzzScan(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := scan(data)
		if err != nil {
			return
		}
		if res.dataEnd < headerSize || res.dataEnd > int64(len(data)) {
			t.Fatalf("data end %d outside the file (%d bytes)", res.dataEnd, len(data))
		}
		end := int64(headerSize)
		for _, r := range res.recs {
			if r.off < end || r.off%8 != 0 {
				t.Fatalf("record at %d overlaps the one before (ending %d) or is unaligned", r.off, end)
			}
			enc := encodeRecord(r.seq, r.hash, r.canon)
			n := min(int64(len(enc)), int64(len(data))-r.off)
			if !bytes.Equal(enc[:recHeaderSize+len(r.canon)], data[r.off:r.off+recHeaderSize+int64(len(r.canon))]) {
				t.Fatalf("record at %d does not re-encode to its bytes", r.off)
			}
			end = r.off + n
		}
		if end > res.dataEnd {
			t.Fatalf("records end at %d, after the data end %d", end, res.dataEnd)
		}
	})
}

// FuzzOpen opens a log whose file holds arbitrary bytes: Open must never
// panic, and a log it opens must take an entry, verify without error and
// read the entry back after a reopen.
// Each run syncs files, so it is slow; FuzzScan covers the parser fast.
func FuzzOpen(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, fileName(1)), data, 0o640); err != nil {
			t.Fatal(err)
		}
		o := Options{FileMaxBytes: 4096, MaxAge: -1, MaxTotalBytes: -1}
		l, err := Open(dir, o)
		if err != nil {
			return
		}
		e, err := l.Append(Entry{Action: "fuzz", Time: time.Unix(1764040320, 0)})
		if err != nil {
			t.Fatalf("append to an opened log: %v", err)
		}
		if _, err := l.Verify(); err != nil {
			t.Fatalf("verify: %v", err)
		}
		l.Close()
		l, err = Open(dir, o)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer l.Close()
		got, err := l.Since(time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || got[len(got)-1] != e {
			t.Fatalf("the appended entry %d is not the last read back", e.Seq)
		}
	})
}
