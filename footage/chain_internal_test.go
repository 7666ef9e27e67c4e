package footage

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// TestChainCompaction: the journal is rewritten without the entries of
// deleted segments; the chain still verifies from the hash kept in its
// base, before and after reopening.
func TestChainCompaction(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2025, 3, 4, 3, 12, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	o := DefaultOptions()
	o.SegmentDuration = time.Second
	o.MaxAge = time.Hour
	s, err := Open(dir, o, nil, clk)
	if err != nil {
		t.Fatal(err)
	}
	pic := []byte{0xff, 0xd8, 1, 2, 3, 0xff, 0xd9}
	for i := 0; i < 12; i++ {
		for j := 0; j < 3; j++ {
			if _, err := s.Append(camera.Frame{Data: pic, Codec: camera.MJPEG, Time: clk.Now()}, 0); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Second / 2)
		}
		if i == 9 {
			// Everything so far is past max_age.
			clk.Advance(2 * time.Hour)
			if _, err := s.Maintain(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := s.chain.compactablePrefix(); n < 10 {
		t.Fatalf("compactable prefix %d, want the links and deletions of the evicted segments", n)
	}
	before, _ := os.Stat(join(dir, chainFile))
	if err := s.chain.compact(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(join(dir, chainFile))
	if after.Size() >= before.Size() {
		t.Fatalf("compaction left %d bytes of %d", after.Size(), before.Size())
	}
	for i := 0; i < 2; i++ {
		rep, err := s.Verify(context.Background())
		if err != nil || !rep.OK() || rep.Chain.First < 10 || rep.Chain.Links < 2 {
			t.Fatalf("verify after compaction: %v %+v %+v", err, rep.Chain, rep.Problems)
		}
		if !strings.Contains(strings.Join(rep.Notes, "\n"), "segments deleted by retention before entry") {
			t.Fatalf("compacted deletions not noted: %q", rep.Notes)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = Open(dir, o, nil, clk); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
}

// FuzzParseChain: the chain journal is read from the card, which anyone
// holding it may have altered: parsing must never panic, and what it
// accepts must encode back to the same bytes.
func FuzzParseChain(f *testing.F) {
	b := chainHeader()
	b = append(b, encodeManifestRecord(cBase, (&chainBase{startSeq: 1, created: 5}).encode())...)
	e := chainEntry{kind: cLink, first: 1, last: 9, run: 1, size: 4096}
	e.hash = e.computeHash()
	b = append(b, encodeManifestRecord(cLink, e.encode())...)
	d := chainEntry{kind: cDelete, first: 1, last: 9, run: 1, digest: e.hash, at: 7, reason: "max_age", prev: e.hash}
	d.hash = d.computeHash()
	b = append(b, encodeManifestRecord(cDelete, d.encode())...)
	h := SignedHead{UnitID: "unit-7", Count: 2, Head: d.hash, LastSeq: 9, Time: time.Unix(9, 0), PublicKey: make([]byte, 32), Signature: make([]byte, 64)}
	b = append(b, encodeManifestRecord(cHead, encodeHead(&h))...)
	f.Add(b)
	f.Add(b[:len(b)-5])
	f.Add(chainHeader())
	f.Add([]byte("OPFTCHN1"))
	f.Fuzz(func(t *testing.T, in []byte) {
		st := parseChain(in)
		if st.end > int64(len(in)) {
			t.Fatalf("end %d past %d bytes", st.end, len(in))
		}
		if !st.valid {
			return
		}
		if b2, ok := decodeChainBase(st.base.encode()); !ok || b2 != st.base {
			t.Fatalf("base does not round-trip: %+v", st.base)
		}
		for _, e := range st.entries {
			if e.index == 0 {
				t.Fatal("entry without index")
			}
			if e2, ok := decodeChainEntry(e.kind, e.encode()); !ok || e2.hash != e.hash || e2.prev != e.prev || string(e2.fields()) != string(e.fields()) {
				t.Fatalf("entry does not round-trip: %+v", e)
			}
		}
		for i := range st.heads {
			if h2, ok := decodeHead(encodeHead(&st.heads[i])); !ok || string(h2.Message()) != string(st.heads[i].Message()) {
				t.Fatalf("head does not round-trip: %+v", st.heads[i])
			}
		}
	})
}
