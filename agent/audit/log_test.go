package audit

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
)

var t0 = time.Date(2026, 11, 25, 3, 12, 0, 0, time.UTC)

func openT(t *testing.T, dir string, o Options) *Log {
	t.Helper()
	l, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func appendN(t *testing.T, l *Log, clk *clock.Fake, n int) []Entry {
	t.Helper()
	var out []Entry
	for i := range n {
		e, err := l.Append(Entry{
			Action: "clip.start", Requester: fmt.Sprintf("operator-%d (signed)", i), RequestID: fmt.Sprintf("req-%d", i),
			From: clk.Now().Add(-time.Hour), To: clk.Now().Add(-59 * time.Minute), Result: "ok",
			Recipient: "Metropolitan Police, PC 1234", Reason: "incident 55/25: theft",
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
		clk.Advance(time.Minute)
	}
	return out
}

func mustVerify(t *testing.T, l *Log) VerifyReport {
	t.Helper()
	rep, err := l.Verify()
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatalf("chain broken: %v", rep.Problems)
	}
	return rep
}

func TestAppendReopen(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(t0)
	l := openT(t, dir, Options{Clock: clk})
	wrote := appendN(t, l, clk, 20)
	if wrote[0].Seq != 1 || wrote[19].Seq != 20 {
		t.Fatalf("sequences %d..%d, want 1..20", wrote[0].Seq, wrote[19].Seq)
	}
	if wrote[0].PrevHash != strings.Repeat("0", 64) || wrote[1].PrevHash != wrote[0].Hash {
		t.Fatalf("chain of returned entries: %s -> %s, %s", wrote[0].PrevHash, wrote[0].Hash, wrote[1].PrevHash)
	}
	if !wrote[3].Time.Equal(t0.Add(3 * time.Minute)) {
		t.Errorf("time %v, want the clock's %v", wrote[3].Time, t0.Add(3*time.Minute))
	}
	l.Close()
	if _, err := l.Append(Entry{Action: "snapshot"}); err == nil {
		t.Fatal("append after close succeeded")
	}

	l2 := openT(t, dir, Options{Clock: clk})
	if n := l2.Notes(); len(n) != 0 {
		t.Errorf("clean reopen noted %v", n)
	}
	got, err := l2.Since(time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, wrote) {
		t.Fatalf("read back differs:\n got %+v\nwant %+v", got[0], wrote[0])
	}
	e, err := l2.Append(Entry{Action: "snapshot", Result: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 21 || e.PrevHash != wrote[19].Hash {
		t.Fatalf("after reopen: seq %d prev %s, want 21 chained to %s", e.Seq, e.PrevHash, wrote[19].Hash)
	}
	rep := mustVerify(t, l2)
	if rep.FirstSeq != 1 || rep.LastSeq != 21 || rep.Entries != 21 || rep.Head != e.Hash {
		t.Fatalf("report %+v", rep)
	}
	seq, head := l2.Head()
	if seq != 21 || head != e.Hash {
		t.Fatalf("Head() = %d %s", seq, head)
	}
}

func TestAppendRefusesAndClips(t *testing.T) {
	l := openT(t, t.TempDir(), Options{})
	if _, err := l.Append(Entry{Requester: "x"}); err == nil || !strings.Contains(err.Error(), "action") {
		t.Fatalf("entry without action: %v", err)
	}
	long := strings.Repeat("é", 5000) // 10000 bytes
	e, err := l.Append(Entry{Action: "config.set", Detail: long, Reason: long})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Detail) > maxDetail || !strings.HasSuffix(e.Detail, "…") || !utf8Valid(e.Detail) {
		t.Fatalf("detail of %d bytes not clipped cleanly", len(e.Detail))
	}
	if e.Time.IsZero() || e.Time.Location() != time.UTC {
		t.Errorf("time %v: want now, in UTC", e.Time)
	}
	got, _ := l.Since(time.Time{}, 0)
	if len(got) != 1 || got[0].Detail != e.Detail {
		t.Fatal("clipped entry not read back as returned")
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestConcurrentAppendAndRead(t *testing.T) {
	l := openT(t, t.TempDir(), Options{FileMaxBytes: 4096, MaxAge: -1, MaxTotalBytes: -1})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 4 {
		wg.Go(func() {
			for i := range 25 {
				if _, err := l.Append(Entry{Action: "snapshot", Requester: fmt.Sprintf("w%d", w), Detail: fmt.Sprint(i)}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Go(func() {
		for range 10 {
			if _, err := l.Verify(); err != nil {
				errs <- err
			}
			if _, err := l.Since(time.Time{}, 10); err != nil {
				errs <- err
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := l.Since(time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 100 {
		t.Fatalf("%d entries, want 100", len(got))
	}
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d", i, e.Seq)
		}
	}
	if rep := mustVerify(t, l); rep.Files < 2 {
		t.Errorf("%d files: the test meant to cross a rotation", rep.Files)
	}
}

func TestSinceAndLimit(t *testing.T) {
	clk := clock.NewFake(t0)
	l := openT(t, t.TempDir(), Options{Clock: clk, FileMaxBytes: 4096})
	wrote := appendN(t, l, clk, 30) // one a minute
	got, err := l.Since(t0.Add(10*time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 || got[0].Seq != 11 {
		t.Fatalf("since +10m: %d entries from %d, want 20 from 11", len(got), got[0].Seq)
	}
	got, _ = l.Since(t0.Add(10*time.Minute), 5)
	if len(got) != 5 || got[4].Seq != 15 {
		t.Fatalf("limit 5: %d entries", len(got))
	}
	page, more, err := l.list(time.Time{}, 25, 3)
	if err != nil || !more || len(page) != 3 || page[0].Seq != 26 {
		t.Fatalf("after 25 limit 3: %d entries, more %v, %v", len(page), more, err)
	}
	page, more, _ = l.list(time.Time{}, 28, 3)
	if more || len(page) != 2 || page[1] != wrote[29] {
		t.Fatalf("last page: %d entries, more %v", len(page), more)
	}
	// Done twice, the second time from the cached file times.
	for range 2 {
		if got, _ := l.Since(t0.Add(time.Hour), 0); len(got) != 0 {
			t.Fatalf("since after the last entry: %d entries", len(got))
		}
	}
}

// logFiles returns the log files of dir, oldest first.
func logFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*"+fileSuffix))
	slices.Sort(m)
	return m
}

// records returns the records of a file.
func records(t *testing.T, path string) (scanResult, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := scan(b)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func TestTornTailRecovered(t *testing.T) {
	cases := []struct {
		name string
		harm func(b []byte, last rawRecord) []byte
	}{
		{"cut in the last record's content", func(b []byte, last rawRecord) []byte { return b[:last.off+recHeaderSize+10] }},
		{"cut in the last record's header", func(b []byte, last rawRecord) []byte { return b[:last.off+5] }},
		{"garbage appended", func(b []byte, _ rawRecord) []byte { return append(b, bytes.Repeat([]byte{0xa5, 0x17, 0x33}, 100)...) }},
		{"zeros appended", func(b []byte, _ rawRecord) []byte { return append(b, make([]byte, 4096)...) }},
		{"last record's CRC wrong", func(b []byte, last rawRecord) []byte { b[last.off+recHeaderSize+3] ^= 1; return b }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			clk := clock.NewFake(t0)
			l := openT(t, dir, Options{Clock: clk})
			wrote := appendN(t, l, clk, 10)
			l.Close()
			path := logFiles(t, dir)[0]
			res, b := records(t, path)
			harmed := c.harm(slices.Clone(b), res.recs[len(res.recs)-1])
			if err := os.WriteFile(path, harmed, 0o640); err != nil {
				t.Fatal(err)
			}
			res2, _ := records(t, path)
			keep := wrote
			if len(res2.recs) < len(wrote) {
				keep = wrote[:9]
			}

			l2 := openT(t, dir, Options{Clock: clk})
			notes := l2.Notes()
			if len(notes) != 1 || !strings.Contains(notes[0], "torn tail") {
				t.Fatalf("notes %q, want one about the torn tail", notes)
			}
			sides, _ := filepath.Glob(path + tornSuffix + ".*")
			if len(sides) != 1 {
				t.Fatalf("side files %v, want one", sides)
			}
			cut, _ := os.ReadFile(sides[0])
			if !bytes.Equal(cut, harmed[res2.dataEnd:]) {
				t.Errorf("side file holds %d bytes, want the %d cut", len(cut), len(harmed)-int(res2.dataEnd))
			}
			got, err := l2.Since(time.Time{}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got[:len(keep)], keep) {
				t.Fatal("entries before the tear changed")
			}
			// The repair is itself recorded, chained after the last intact entry.
			rec := got[len(keep)]
			if len(got) != len(keep)+1 || rec.Action != "audit.recovery" || rec.Seq != keep[len(keep)-1].Seq+1 || !strings.Contains(rec.Detail, "torn tail") {
				t.Fatalf("recovery entry %+v", rec)
			}
			if _, err := l2.Append(Entry{Action: "snapshot"}); err != nil {
				t.Fatal(err)
			}
			mustVerify(t, l2)
		})
	}
}

// rewrite replaces the canonical bytes of record r in b (same length) and
// fixes its CRC, as someone covering their tracks would.
func rewrite(b []byte, r rawRecord, canon []byte) {
	copy(b[r.off+recHeaderSize:], canon)
	n := binary.LittleEndian.Uint32(b[r.off:])
	binary.LittleEndian.PutUint32(b[r.off+4:], crc32.Checksum(b[r.off+8:r.off+recHeaderSize+int64(n)], castagnoli))
}

func TestVerifyFindsTampering(t *testing.T) {
	cases := []struct {
		name    string
		harm    func(b []byte, recs []rawRecord) []byte
		wantSeq uint64
		want    string
	}{
		{"content altered, CRC fixed", func(b []byte, recs []rawRecord) []byte {
			r := recs[6]
			c := bytes.Replace(slices.Clone(r.canon), []byte("operator-6"), []byte("operator-X"), 1)
			rewrite(b, r, c)
			return b
		}, 7, "hash does not match"},
		{"content and hash altered, CRC fixed", func(b []byte, recs []rawRecord) []byte {
			r := recs[6]
			c := bytes.Replace(slices.Clone(r.canon), []byte("operator-6"), []byte("operator-X"), 1)
			h := chainHash(recs[5].hash, c)
			copy(b[r.off+16:], h[:])
			rewrite(b, r, c)
			return b
		}, 8, "hash does not match"},
		{"record removed", func(b []byte, recs []rawRecord) []byte {
			return slices.Concat(b[:recs[4].off], b[recs[5].off:])
		}, 5, "entry 5 is missing"},
		{"record decayed", func(b []byte, recs []rawRecord) []byte {
			b[recs[3].off+recHeaderSize+20] ^= 0x40
			return b
		}, 4, "damaged bytes"},
		{"records swapped", func(b []byte, recs []rawRecord) []byte {
			a, c := b[recs[2].off:recs[3].off], b[recs[3].off:recs[4].off]
			return slices.Concat(b[:recs[2].off], c, a, b[recs[4].off:])
		}, 3, "missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			clk := clock.NewFake(t0)
			l := openT(t, dir, Options{Clock: clk})
			appendN(t, l, clk, 10)
			l.Close()
			path := logFiles(t, dir)[0]
			res, b := records(t, path)
			if err := os.WriteFile(path, c.harm(b, res.recs), 0o640); err != nil {
				t.Fatal(err)
			}
			l2 := openT(t, dir, Options{Clock: clk})
			rep, err := l2.Verify()
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || len(rep.Problems) == 0 {
				t.Fatal("tampering not found")
			}
			p := rep.Problems[0]
			if p.Seq != c.wantSeq || !strings.Contains(p.What, c.want) || p.File != filepath.Base(path) {
				t.Fatalf("first problem %v; want entry %d, %q (all: %v)", p, c.wantSeq, c.want, rep.Problems)
			}
			// Nothing was cut: the evidence stays for inspection.
			if sides, _ := filepath.Glob(path + tornSuffix + ".*"); len(sides) != 0 {
				t.Errorf("recovery set bytes aside: %v", sides)
			}
		})
	}
}

func TestRotationAndRetention(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(t0)
	o := Options{Clock: clk, FileMaxBytes: 4096, MaxAge: 30 * 24 * time.Hour, MaxTotalBytes: -1}
	l := openT(t, dir, o)
	var all []Entry
	for range 90 { // one entry a day
		all = append(all, appendN(t, l, clk, 1)...)
		clk.Advance(24 * time.Hour)
	}
	rep := mustVerify(t, l)
	if rep.FirstSeq == 1 || rep.Anchor == strings.Repeat("0", 64) {
		t.Fatalf("nothing removed by age: %+v", rep)
	}
	if rep.LastSeq != 90 {
		t.Fatalf("last seq %d", rep.LastSeq)
	}
	first := all[rep.FirstSeq-1]
	if rep.Anchor != first.PrevHash {
		t.Fatalf("anchor %s, want the removed entry's hash %s", rep.Anchor, first.PrevHash)
	}
	// Whole files only: the oldest entry kept is at most a file's worth
	// past the age limit, and none kept is past it by more than that.
	got, _ := l.Since(time.Time{}, 0)
	if got[0].Seq != rep.FirstSeq || len(got) != int(90-rep.FirstSeq+1) {
		t.Fatalf("since: %d entries from %d", len(got), got[0].Seq)
	}
	limit := clk.Now().Add(-o.MaxAge)
	files := logFiles(t, dir)
	res, _ := records(t, files[0])
	newest := newestTime(res.recs)
	if newest.Before(limit) {
		t.Errorf("oldest kept file's newest entry %v is past the age limit %v", newest, limit)
	}
	l.Close()

	// Reopened with a size bound, the oldest files go until it holds.
	o.MaxAge, o.MaxTotalBytes = -1, 2*4096
	l2 := openT(t, dir, o)
	var total int64
	for _, f := range logFiles(t, dir) {
		st, _ := os.Stat(f)
		total += st.Size()
	}
	if total > 2*4096 || len(logFiles(t, dir)) < 1 {
		t.Fatalf("%d bytes in %d files, want at most %d", total, len(logFiles(t, dir)), 2*4096)
	}
	rep2 := mustVerify(t, l2)
	if rep2.FirstSeq <= rep.FirstSeq || rep2.LastSeq != 90 {
		t.Fatalf("after the size bound: %+v", rep2)
	}
}

func TestDamagedHeaderSetAside(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(t0)
	l := openT(t, dir, Options{Clock: clk, FileMaxBytes: 4096})
	appendN(t, l, clk, 30)
	l.Close()
	files := logFiles(t, dir)
	if len(files) < 2 {
		t.Fatal("want a rotation")
	}
	last := files[len(files)-1]
	b, _ := os.ReadFile(last)
	b[3] = 'X'
	os.WriteFile(last, b, 0o640)

	l2 := openT(t, dir, Options{Clock: clk, FileMaxBytes: 4096})
	if n := l2.Notes(); len(n) != 1 || !strings.Contains(n[0], "damaged header") {
		t.Fatalf("notes %q", n)
	}
	if side, err := os.ReadFile(last + tornSuffix + ".0"); err != nil || !bytes.Equal(side, b) {
		t.Fatalf("the damaged file was not kept whole: %v", err)
	}
	rep, err := l2.Verify()
	if err != nil {
		t.Fatal(err)
	}
	// The chain continues from the last readable entry; the entries of
	// the set-aside file are gone from it, and said so in the log.
	if !rep.OK {
		t.Fatalf("problems %v", rep.Problems)
	}
	got, _ := l2.Since(time.Time{}, 0)
	if e := got[len(got)-1]; e.Action != "audit.recovery" || !strings.Contains(e.Detail, "set aside") {
		t.Fatalf("last entry %+v", e)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{{FileMaxBytes: 100}, {FileMaxBytes: 1 << 20, MaxTotalBytes: 1 << 20}} {
		if _, err := Open(t.TempDir(), o); err == nil {
			t.Errorf("Open accepted %+v", o)
		}
	}
}

func TestVerifyRechecksAChangedSealedFile(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(t0)
	l := openT(t, dir, Options{Clock: clk, FileMaxBytes: 4096})
	appendN(t, l, clk, 30)
	if rep := mustVerify(t, l); rep.Files < 2 {
		t.Fatalf("%d files, want a rotation", rep.Files)
	}
	path := logFiles(t, dir)[0]
	res, b := records(t, path)
	r := res.recs[2]
	rewrite(b, r, bytes.Replace(slices.Clone(r.canon), []byte("operator-2"), []byte("operator-Z"), 1))
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify()
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Problems[0].Seq != 3 {
		t.Fatalf("a sealed file changed after a verification: problems %v, want entry 3", rep.Problems)
	}
}

func TestAppendReturnsWhatIsStored(t *testing.T) {
	l := openT(t, t.TempDir(), Options{})
	e, err := l.Append(Entry{Action: "snapshot", Requester: "bad \xff utf-8", Detail: "<html> & \"quotes\" \u2028"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := l.Since(time.Time{}, 0)
	if len(got) != 1 || got[0] != e {
		t.Fatalf("stored %+v, returned %+v", got, e)
	}
}
