package footage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/footage/footagetest"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// chainStore records ten seconds at 10 fps in 2 s segments (five sealed
// segments after close) into dir, with the signer if given, and closes.
func chainStore(t *testing.T, dir string, sg footage.Signer) {
	t.Helper()
	o := smallOpts()
	o.Signer = sg
	s, err := footage.Open(dir, o, testLog(t), clock.NewFake(t0))
	if err != nil {
		t.Fatal(err)
	}
	record(t, s, t0, 10, 100)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func verifyDir(t *testing.T, dir string, o footage.Options, pub []byte) footage.VerifyReport {
	t.Helper()
	s, err := footage.Open(dir, o, testLog(t), clock.NewFake(t0.Add(time.Hour)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	rep, err := s.VerifyWith(context.Background(), pub)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	sort.Strings(m)
	return m
}

// hasProblem reports whether a problem names the segment and says what.
func hasProblem(rep footage.VerifyReport, seg, what string) bool {
	for _, p := range rep.Problems {
		if (seg == "" || p.Segment == seg) && strings.Contains(p.What, what) {
			return true
		}
	}
	return false
}

func TestChainIntact(t *testing.T) {
	dir := t.TempDir()
	key := footagetest.NewSigner(1)
	chainStore(t, dir, key)
	rep := verifyDir(t, dir, smallOpts(), key.PublicKey())
	if !rep.OK() {
		t.Fatalf("problems: %+v", rep.Problems)
	}
	c := rep.Chain
	if !c.Present || c.Links != 5 || c.Unsigned || c.Heads == 0 || len(c.Keys) != 1 || !c.KeyGiven || c.Latest == nil || c.Latest.Count != 5 || c.AfterHead != 0 {
		t.Fatalf("chain report %+v", c)
	}
	if c.FirstSegment != "0000000000000001.seg" {
		t.Fatalf("first segment %s", c.FirstSegment)
	}
}

func TestChainUnsigned(t *testing.T) {
	dir := t.TempDir()
	chainStore(t, dir, nil)
	rep := verifyDir(t, dir, smallOpts(), nil)
	if !rep.OK() || !rep.Chain.Unsigned || rep.Chain.Links != 5 {
		t.Fatalf("report %+v", rep)
	}
}

// TestChainAlteredSegment: a byte changed in a sealed segment is caught
// by its SHA-256, even when the record's CRC is fixed up to match, as
// someone altering footage on purpose would.
func TestChainAlteredSegment(t *testing.T) {
	for _, fixCRC := range []bool{false, true} {
		dir := t.TempDir()
		chainStore(t, dir, footagetest.NewSigner(1))
		segs := segFiles(t, dir)
		target := segs[2]
		b, err := os.ReadFile(target)
		if err != nil {
			t.Fatal(err)
		}
		// The first record starts at 40, its payload at 80.
		b[80+30] ^= 0x01
		if fixCRC {
			n := binary.LittleEndian.Uint32(b[40:])
			c := crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), b[48:80])
			c = crc32.Update(c, crc32.MakeTable(crc32.Castagnoli), b[80:80+n])
			binary.LittleEndian.PutUint32(b[44:], c)
		}
		if err := os.WriteFile(target, b, 0o640); err != nil {
			t.Fatal(err)
		}
		o := smallOpts()
		o.ReadOnly = true
		rep := verifyDir(t, dir, o, footagetest.NewSigner(1).PublicKey())
		if !hasProblem(rep, filepath.Base(target), "altered since it was sealed") {
			t.Fatalf("fixCRC=%v: altered segment not reported: %+v", fixCRC, rep.Problems)
		}
		crcProblem := hasProblem(rep, filepath.Base(target), "damaged bytes")
		if crcProblem == fixCRC {
			t.Fatalf("fixCRC=%v: CRC problem reported %v: %+v", fixCRC, crcProblem, rep.Problems)
		}
	}
}

func TestChainMiddleSegmentRemoved(t *testing.T) {
	dir := t.TempDir()
	chainStore(t, dir, footagetest.NewSigner(1))
	segs := segFiles(t, dir)
	if err := os.Remove(segs[2]); err != nil {
		t.Fatal(err)
	}
	// Opened for writing, as the agent would: the store forgets the
	// segment, the chain does not.
	rep := verifyDir(t, dir, smallOpts(), nil)
	if !hasProblem(rep, filepath.Base(segs[2]), "no deletion was recorded") {
		t.Fatalf("removed segment not reported: %+v", rep.Problems)
	}
	if len(rep.Problems) != 1 {
		t.Fatalf("want one problem, got %+v", rep.Problems)
	}
}

// TestChainRetention: retention deletes the oldest segments; what is
// left verifies, and the deletions are noted, not reported as damage,
// also after the journal is compacted.
func TestChainRetention(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(t0)
	key := footagetest.NewSigner(3)
	s, _ := retentionStore(t, dir, clk, 1<<40, 1<<39, func(o *footage.Options) { o.Signer = key })
	daily(t, s, 40)
	rep, err := s.Maintain(context.Background())
	if err != nil || rep.ByAge != 12 {
		t.Fatalf("maintain: %+v %v", rep, err)
	}
	vr, err := s.Verify(context.Background())
	if err != nil || !vr.OK() {
		t.Fatalf("verify after retention: %v %+v", err, vr.Problems)
	}
	if vr.Chain.Deleted != 12 || !strings.Contains(strings.Join(vr.Notes, "\n"), "deleted by retention (max_age) at ") {
		t.Fatalf("deletions not noted: %+v %q", vr.Chain, vr.Notes)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	vr = verifyDir(t, dir, smallOpts(), key.PublicKey())
	if !vr.OK() || vr.Chain.Links != 29 {
		t.Fatalf("verify after reopening: %+v %+v", vr.Chain, vr.Problems)
	}
}

func TestChainForgedHead(t *testing.T) {
	dir := t.TempDir()
	unit, other := footagetest.NewSigner(1), footagetest.NewSigner(2)
	// Footage whose heads were signed by another key (as after someone
	// rewrote the chain and re-signed it with a key of their own).
	chainStore(t, dir, other)
	rep := verifyDir(t, dir, smallOpts(), unit.PublicKey())
	if !hasProblem(rep, "chain.log", "does not verify with key") {
		t.Fatalf("forged head not reported: %+v", rep.Problems)
	}
	// Without the unit's key, the heads only show they were not altered.
	if rep := verifyDir(t, dir, smallOpts(), nil); !rep.OK() || rep.Chain.KeyGiven {
		t.Fatalf("self-consistent heads: %+v %+v", rep.Chain, rep.Problems)
	}
}

// chainRecords splits chain.log into its header and framed records.
func chainRecords(t *testing.T, b []byte) (hdr []byte, recs [][]byte) {
	t.Helper()
	hdr, b = b[:16], b[16:]
	for len(b) >= 12 {
		n := 12 + int(binary.LittleEndian.Uint32(b))
		recs = append(recs, b[:n])
		b = b[n:]
	}
	return hdr, recs
}

func TestChainReorderedEntries(t *testing.T) {
	dir := t.TempDir()
	chainStore(t, dir, nil)
	p := filepath.Join(dir, "chain.log")
	b, _ := os.ReadFile(p)
	hdr, recs := chainRecords(t, b)
	// Records: base, then links; swap the second and third links.
	if recs[2][8] != 'L' || recs[3][8] != 'L' {
		t.Fatalf("unexpected record kinds %c %c", recs[2][8], recs[3][8])
	}
	recs[2], recs[3] = recs[3], recs[2]
	os.WriteFile(p, append(hdr, bytes.Join(recs, nil)...), 0o640)
	rep := verifyDir(t, dir, smallOpts(), nil)
	if !hasProblem(rep, "", "chain broken at entry") {
		t.Fatalf("reordered entries not reported: %+v", rep.Problems)
	}
}

func TestChainTruncatedAfterSignedHead(t *testing.T) {
	dir := t.TempDir()
	chainStore(t, dir, footagetest.NewSigner(1))
	p := filepath.Join(dir, "chain.log")
	b, _ := os.ReadFile(p)
	hdr, recs := chainRecords(t, b)
	// Drop the last link and the last segment, keep the head: as if the
	// newest footage were removed along with its link.
	var kept [][]byte
	lastLink := -1
	for i, r := range recs {
		if r[8] == 'L' {
			lastLink = i
		}
	}
	for i, r := range recs {
		if i != lastLink {
			kept = append(kept, r)
		}
	}
	os.WriteFile(p, append(hdr, bytes.Join(kept, nil)...), 0o640)
	segs := segFiles(t, dir)
	os.Remove(segs[len(segs)-1])
	o := smallOpts()
	o.ReadOnly = true
	rep := verifyDir(t, dir, o, footagetest.NewSigner(1).PublicKey())
	if !hasProblem(rep, "chain.log", "entries were cut from its end") {
		t.Fatalf("cut chain not reported: %+v", rep.Problems)
	}
}

// TestChainTornTail: a record half written when the power went is cut on
// open (and kept aside); a sealed segment whose link was lost is linked
// again, the same way every time.
func TestChainTornTail(t *testing.T) {
	dir := t.TempDir()
	chainStore(t, dir, nil)
	p := filepath.Join(dir, "chain.log")
	b, _ := os.ReadFile(p)
	hdr, recs := chainRecords(t, b)
	last := recs[len(recs)-1]
	if last[8] != 'L' {
		t.Fatalf("last record %c", last[8])
	}
	// The last link half written: the segment it links is sealed but
	// its link is torn.
	torn := append(append(append([]byte(nil), hdr...), bytes.Join(recs[:len(recs)-1], nil)...), last[:len(last)/2]...)

	var results [][]byte
	for i := 0; i < 2; i++ {
		d := t.TempDir()
		for _, f := range segFiles(t, dir) {
			c, _ := os.ReadFile(f)
			os.WriteFile(filepath.Join(d, filepath.Base(f)), c, 0o640)
		}
		os.WriteFile(filepath.Join(d, "chain.log"), torn, 0o640)
		rep := verifyDir(t, d, smallOpts(), nil)
		if !rep.OK() || rep.Chain.Links != 5 {
			t.Fatalf("verify after a torn chain: %+v %+v", rep.Chain, rep.Problems)
		}
		notes := strings.Join(rep.Notes, "\n")
		if !strings.Contains(notes, "cut a torn tail") || !strings.Contains(notes, "linked into the chain when the store was reopened") {
			t.Fatalf("notes: %q", notes)
		}
		if side, _ := filepath.Glob(filepath.Join(d, "chain.log.torn.*")); len(side) != 1 {
			t.Fatalf("torn tail not kept aside: %v", side)
		}
		c, _ := os.ReadFile(filepath.Join(d, "chain.log"))
		results = append(results, c)
	}
	if !bytes.Equal(results[0], results[1]) {
		t.Fatal("recovery of the same torn chain gave two different chains")
	}
}

func TestChainFor(t *testing.T) {
	dir := t.TempDir()
	key := footagetest.NewSigner(1)
	o := smallOpts()
	o.Signer = key
	s := openStore(t, dir, o, clock.NewFake(t0))
	record(t, s, t0, 10, 55) // segments of 2 s: two sealed, one open
	p, err := s.ChainFor(context.Background(), t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Links) != 2 || !p.Unsealed || p.Head == nil || p.Head.Count < p.Links[1].Index || !p.Head.Verify(key.PublicKey()) {
		t.Fatalf("proof %+v", p)
	}
	if p.Links[0].Segment != "0000000000000001.seg" || p.Links[1].Prev != p.Links[0].Hash {
		t.Fatalf("links %+v", p.Links)
	}
	// Only the first segment's time.
	p, err = s.ChainFor(context.Background(), t0, t0.Add(time.Second))
	if err != nil || len(p.Links) != 1 || p.Unsealed {
		t.Fatalf("proof of the first second: %+v %v", p, err)
	}
	// The hash in the link is the file's.
	b, _ := os.ReadFile(filepath.Join(dir, p.Links[0].Segment))
	if footage.Hash(sha256Sum(b)) != p.Links[0].SHA256 {
		t.Fatal("link's SHA-256 is not the segment file's")
	}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// TestChainHeadEvery: retention signs a new head once HeadEvery has
// passed and the chain has grown, not otherwise.
func TestChainHeadEvery(t *testing.T) {
	dir := t.TempDir()
	key := footagetest.NewSigner(1)
	clk := clock.NewFake(t0)
	o := smallOpts()
	o.Signer = key
	o.HeadEvery = 10 * time.Minute
	s := openStore(t, dir, o, clk)
	heads := func() int {
		rep, err := s.Verify(context.Background())
		if err != nil || !rep.OK() {
			t.Fatalf("verify: %v %+v", err, rep.Problems)
		}
		return rep.Chain.Heads
	}
	maintain := func() {
		if _, err := s.Maintain(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	record(t, s, t0, 10, 25) // one sealed segment
	maintain()
	if n := heads(); n != 1 {
		t.Fatalf("%d heads after the first pass, want 1", n)
	}
	clk.Advance(5 * time.Minute)
	record(t, s, clk.Now(), 10, 25)
	maintain()
	if n := heads(); n != 1 {
		t.Fatalf("%d heads before HeadEvery, want 1", n)
	}
	clk.Advance(6 * time.Minute)
	maintain()
	if n := heads(); n != 2 {
		t.Fatalf("%d heads after HeadEvery, want 2", n)
	}
	clk.Advance(11 * time.Minute)
	maintain()
	if n := heads(); n != 2 {
		t.Fatalf("%d heads with nothing new, want 2", n)
	}
}

// TestChainWriteFails: when chain.log cannot be written (the card is
// full), recording goes on; the segments sealed meanwhile are linked at
// the next open, flagged as linked at recovery, and everything verifies.
func TestChainWriteFails(t *testing.T) {
	dir := t.TempDir()
	ffs := &footagetest.FaultFS{}
	var failing atomic.Bool
	ffs.SetFail(func(op footagetest.Op, name string) error {
		if failing.Load() && name == "chain.log" && (op == footagetest.OpWrite || op == footagetest.OpSync) {
			return footagetest.ErrNoSpace
		}
		return nil
	})
	o := smallOpts()
	o.FS = ffs
	clk := clock.NewFake(t0)
	s := openStore(t, dir, o, clk)
	record(t, s, t0, 10, 25)
	failing.Store(true)
	record(t, s, t0.Add(3*time.Second), 10, 60) // seals segments whose links fail
	rep, err := s.Verify(context.Background())
	if err != nil || !hasProblem(rep, "", "sealed but not in the chain: its link could not be written") {
		t.Fatalf("unlinked segments not reported: %v %+v", err, rep.Problems)
	}
	failing.Store(false)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep = verifyDir(t, dir, o, nil)
	if !rep.OK() || rep.Chain.Links != rep.Segments {
		t.Fatalf("after reopening: %+v %+v", rep.Chain, rep.Problems)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "linked into the chain when the store was reopened") {
		t.Fatalf("relinked segments not noted: %q", rep.Notes)
	}
}

// TestChainConcurrent: ChainFor (signing heads), Verify and retention run
// while frames are written and segments sealed; the race detector
// watches, and the chain verifies at the end.
func TestChainConcurrent(t *testing.T) {
	dir := t.TempDir()
	key := footagetest.NewSigner(1)
	o := smallOpts()
	o.Signer = key
	o.SegmentDuration = 200 * time.Millisecond
	s := openStore(t, dir, o, clock.Real{})
	ctx := context.Background()
	done := make(chan struct{})
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	for _, fn := range []func() error{
		func() error { _, err := s.ChainFor(ctx, t0, t0.Add(time.Hour)); return err },
		func() error {
			rep, err := s.Verify(ctx)
			if err == nil && !rep.OK() {
				err = fmt.Errorf("verify while recording: %+v", rep.Problems)
			}
			return err
		},
		func() error { _, err := s.SignHead(); return err },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if err := fn(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for _, f := range footagetest.Frames(t0, 25, 200, testPics, 64, 48) {
		if _, err := s.Append(f, 0); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep := verifyDir(t, dir, o, key.PublicKey())
	if !rep.OK() || rep.Chain.Links != rep.Segments || rep.Chain.AfterHead != 0 {
		t.Fatalf("%+v %+v", rep.Chain, rep.Problems)
	}
}

// TestChainDamagedHeader: a chain journal whose header is damaged is set
// aside, a new chain started, and verify keeps reporting it.
func TestChainDamagedHeader(t *testing.T) {
	dir := t.TempDir()
	chainStore(t, dir, nil)
	p := filepath.Join(dir, "chain.log")
	b, _ := os.ReadFile(p)
	b[3] ^= 0xff
	os.WriteFile(p, b, 0o640)
	for i := 0; i < 2; i++ {
		rep := verifyDir(t, dir, smallOpts(), nil)
		if !hasProblem(rep, "", "header was damaged") || rep.Chain.Unchained != 5 {
			t.Fatalf("round %d: %+v %+v", i, rep.Chain, rep.Problems)
		}
	}
}
