package audit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkAppend measures a durable append against its floor, measured
// in the same run: writing and fsyncing a record of the same size to a
// plain file. The difference is the cost of the log itself (encoding,
// hashing, bookkeeping).
func BenchmarkAppend(b *testing.B) {
	e := Entry{Action: "clip.start", Requester: "alice (signed)", RequestID: "0123456789abcdef01234567",
		From: time.Unix(1764040320, 0), To: time.Unix(1764040380, 0), Result: "ok",
		Recipient: "Metropolitan Police, PC 1234", Reason: "crime reference 55/25: theft from a vehicle"}
	b.Run("baseline-write-fsync", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "plain"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		rec := make([]byte, 400)
		b.SetBytes(int64(len(rec)))
		b.ReportAllocs()
		var off int64
		for b.Loop() {
			if _, err := f.WriteAt(rec, off); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			off += int64(len(rec))
		}
	})
	b.Run("append", func(b *testing.B) {
		l, err := Open(b.TempDir(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		got, _ := l.Append(e)
		b.SetBytes(int64(len(encodeRecordOf(got))))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := l.Append(e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func encodeRecordOf(e Entry) []byte {
	e.Hash, e.PrevHash = "", ""
	canon, _ := json.Marshal(e)
	return encodeRecord(e.Seq, [32]byte{}, canon)
}

// writeLog writes n entries in files of about 1 MiB straight in the
// format, without a sync per entry, and returns their total size.
func writeLog(b *testing.B, dir string, n int) int64 {
	var head [32]byte
	var buf []byte
	var total int64
	flush := func() {
		if len(buf) == 0 {
			return
		}
		first, _ := parseHeader(buf)
		if err := os.WriteFile(filepath.Join(dir, fileName(first.first)), buf, 0o640); err != nil {
			b.Fatal(err)
		}
		total += int64(len(buf))
		buf = nil
	}
	for i := 1; i <= n; i++ {
		if len(buf) == 0 {
			buf = fileHeader{first: uint64(i), prev: head}.encode()
		}
		e := Entry{Seq: uint64(i), Time: time.Unix(1764040320+int64(i), 0).UTC(), Action: "snapshot", Requester: "alice (signed)", Result: "ok"}
		canon, _ := json.Marshal(e)
		head = chainHash(head, canon)
		buf = append(buf, encodeRecord(e.Seq, head, canon)...)
		if len(buf) > DefaultFileMaxBytes {
			flush()
		}
	}
	flush()
	return total
}

// BenchmarkVerify measures verifying a log of 10,000 entries (about 2 MB),
// against reading its files alone, in the same run.
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	size := writeLog(b, dir, 10000)
	l, err := Open(dir, Options{MaxAge: -1, MaxTotalBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.Run("baseline-read", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			for _, f := range mustGlob(b, dir) {
				if _, err := os.ReadFile(f); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("verify-cold", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			l.mu.Lock()
			l.verdicts = nil
			l.mu.Unlock()
			rep, err := l.Verify()
			if err != nil || !rep.OK {
				b.Fatalf("%v %v", err, rep.Problems)
			}
		}
	})
	// Again, with the files no longer written remembered, as audit.list
	// finds them.
	b.Run("verify-warm", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			rep, err := l.Verify()
			if err != nil || !rep.OK {
				b.Fatalf("%v %v", err, rep.Problems)
			}
		}
	})
}

func mustGlob(b *testing.B, dir string) []string {
	m, err := filepath.Glob(filepath.Join(dir, "*"+fileSuffix))
	if err != nil {
		b.Fatal(err)
	}
	return m
}
