package footage_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// crashedStore records n frames (synced) into a store and abandons it
// with its last segment unsealed. It returns the directory, the path of
// the unsealed segment and the frames' sequences.
func crashedStore(t *testing.T, n int) (string, string, []uint64) {
	t.Helper()
	dir := t.TempDir()
	o := smallOpts()
	o.SegmentDuration = time.Hour
	s := openStore(t, dir, o, clock.NewFake(t0))
	seqs := record(t, s, t0, 25, n)
	active := s.ActiveSegment()
	s.Abandon()
	return dir, filepath.Join(dir, active), seqs
}

func seqsOf(fs []footage.Frame) []uint64 {
	var out []uint64
	for _, f := range fs {
		out = append(out, f.Seq)
	}
	return out
}

func TestRecoverTails(t *testing.T) {
	garbage := make([]byte, 5000)
	rand.NewChaCha8([32]byte{1}).Read(garbage)
	cases := []struct {
		name string
		tail []byte
	}{
		{"zero-filled tail", make([]byte, 64<<10)},
		{"garbage tail", garbage},
		{"no tail", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, seg, seqs := crashedStore(t, 30)
			before, _ := os.ReadFile(seg)
			if err := os.WriteFile(seg, append(before, c.tail...), 0o644); err != nil {
				t.Fatal(err)
			}
			s := openStore(t, dir, smallOpts(), clock.NewFake(t0))
			got := seqsOf(allFrames(t, s))
			if !equalSeqs(got, seqs) {
				t.Fatalf("after recovery %v, want %v", got, seqs)
			}
			side, _ := filepath.Glob(seg + ".torn.*")
			if len(c.tail) == 0 {
				if len(side) != 0 || len(s.Recovered()) != 1 {
					t.Fatalf("nothing to cut, yet side files %v; recovered %v, want only the sealing", side, s.Recovered())
				}
			} else {
				if len(side) != 1 {
					t.Fatalf("side files %v, want one", side)
				}
				kept, _ := os.ReadFile(side[0])
				if !bytes.Equal(kept, c.tail) {
					t.Fatalf("side file holds %d bytes, want the %d cut", len(kept), len(c.tail))
				}
			}
			rep, err := s.Verify(context.Background())
			if err != nil || !rep.OK() {
				t.Fatalf("verify after recovery: %+v %v", rep, err)
			}
			// Recording goes on after the recovered footage.
			more := record(t, s, t0.Add(time.Minute), 25, 3)
			if more[0] <= seqs[len(seqs)-1] {
				t.Fatalf("sequence %d reused after %d", more[0], seqs[len(seqs)-1])
			}
		})
	}
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRecoverRandomTruncation cuts the unsealed segment at random places:
// every record that ends before the cut survives, none after it.
func TestRecoverRandomTruncation(t *testing.T) {
	dir0, seg0, seqs := crashedStore(t, 40)
	orig, _ := os.ReadFile(seg0)
	recs, err := footage.RecordOffsets(seg0)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 40; i++ {
		cut := rng.Int64N(int64(len(orig)) + 1)
		dir := t.TempDir()
		copyDir(t, dir0, dir)
		seg := filepath.Join(dir, filepath.Base(seg0))
		if err := os.WriteFile(seg, orig[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		// A record survives once its header and payload are whole: its
		// padding may be missing.
		want := 0
		for _, r := range recs {
			if cut >= payloadEnd(orig, r) {
				want++
			}
		}
		s, err := footage.Open(dir, smallOpts(), testLog(t), clock.NewFake(t0))
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		got := seqsOf(allFrames(t, s))
		if !equalSeqs(got, seqs[:want]) {
			t.Fatalf("cut at %d of %d: %d frames survive, want %d", cut, len(orig), len(got), want)
		}
		if rep, err := s.Verify(context.Background()); err != nil || !rep.OK() {
			t.Fatalf("cut at %d: verify %+v %v", cut, rep, err)
		}
		if _, err := s.Append(frame(t0.Add(time.Minute), testPics[0]), 0); err != nil {
			t.Fatalf("cut at %d: append after recovery: %v", cut, err)
		}
		s.Close()
	}
}

// payloadEnd is where a record's header and payload end.
func payloadEnd(seg []byte, r [2]int64) int64 {
	n := int64(seg[r[0]]) | int64(seg[r[0]+1])<<8 | int64(seg[r[0]+2])<<16 | int64(seg[r[0]+3])<<24
	return r[0] + footage.RecHeaderSize + n
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRecoverMidRecordDamage: a damaged record between good ones in the
// segment being written is skipped, reported and never served.
func TestRecoverMidRecordDamage(t *testing.T) {
	dir, seg, seqs := crashedStore(t, 20)
	recs, _ := footage.RecordOffsets(seg)
	b, _ := os.ReadFile(seg)
	b[recs[7][0]+footage.RecHeaderSize+10] ^= 0x04
	os.WriteFile(seg, b, 0o644)
	var faults []footage.Fault
	o := smallOpts()
	o.OnFault = func(f footage.Fault) { faults = append(faults, f) }
	s := openStore(t, dir, o, clock.NewFake(t0))
	got := seqsOf(allFrames(t, s))
	want := append(append([]uint64(nil), seqs[:7]...), seqs[8:]...)
	if !equalSeqs(got, want) {
		t.Fatalf("frames %v, want %v", got, want)
	}
	if len(s.Recovered()) != 2 || !strings.Contains(s.Recovered()[0].Action, "damaged") {
		t.Fatalf("recovery report %v", s.Recovered())
	}
	if len(faults) == 0 || faults[0].Code != footage.FaultDamaged {
		t.Fatalf("faults %v, want %s", faults, footage.FaultDamaged)
	}
	rep, _ := s.Verify(context.Background())
	if rep.OK() || len(rep.Problems) != 1 {
		t.Fatalf("verify must still report the lost record: %+v", rep)
	}
}

// TestBitFlipInSealedSegment: damage in a sealed segment is found by
// verify and by reads, which skip the frame and raise a fault.
func TestBitFlipInSealedSegment(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, smallOpts(), clock.NewFake(t0))
	seqs := record(t, s, t0, 25, 100)
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	recs, _ := footage.RecordOffsets(segs[1])
	b, _ := os.ReadFile(segs[1])
	victim := recs[3][0]
	b[victim+footage.RecHeaderSize+100] ^= 0x80
	os.WriteFile(segs[1], b, 0o644)

	s = openStore(t, dir, smallOpts(), clock.NewFake(t0))
	rep, err := s.Verify(context.Background())
	// Two problems: the record fails its CRC, and the segment no longer
	// matches its link in the chain.
	if err != nil || rep.OK() || len(rep.Problems) != 2 || rep.Problems[0].Segment != filepath.Base(segs[1]) || rep.Problems[0].Offset != victim ||
		rep.Problems[1].Segment != filepath.Base(segs[1]) || !strings.Contains(rep.Problems[1].What, "altered since it was sealed") {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	got := allFrames(t, s)
	if len(got) != len(seqs)-1 {
		t.Fatalf("%d frames read, want %d (one damaged)", len(got), len(seqs)-1)
	}
	var buf bytes.Buffer
	info, err := s.Export(context.Background(), &buf, t0, t0.Add(time.Hour))
	if err != nil || info.Frames != len(seqs)-1 || info.Skipped != 1 {
		t.Fatalf("export: %+v %v", info, err)
	}
	if !hasFault(s.Faults(), footage.FaultDamaged) {
		t.Fatalf("faults %v, want %s", s.Faults(), footage.FaultDamaged)
	}
	// The damaged frame itself is refused, not served.
	var missing uint64
	for _, q := range seqs {
		found := false
		for _, f := range got {
			found = found || f.Seq == q
		}
		if !found {
			missing = q
		}
	}
	if _, err := s.FrameBySeq(context.Background(), missing); err == nil || errors.Is(err, footage.ErrNoFootage) {
		t.Fatalf("damaged frame %d: %v", missing, err)
	}
}

func hasFault(fs []footage.Fault, code string) bool {
	for _, f := range fs {
		if f.Code == code {
			return true
		}
	}
	return false
}

// TestIndexFileLossAndDamage: index.log is a cache: lost, cut or with a
// garbage tail, the store opens with the same footage.
func TestIndexFileLossAndDamage(t *testing.T) {
	dir0 := t.TempDir()
	s := openStore(t, dir0, smallOpts(), clock.NewFake(t0))
	seqs := record(t, s, t0, 25, 300)
	s.Close()
	idx, _ := os.ReadFile(filepath.Join(dir0, "index.log"))
	cases := map[string]func(string){
		"deleted": func(p string) { os.Remove(p) },
		"cut":     func(p string) { os.WriteFile(p, idx[:len(idx)/2+3], 0o644) },
		"garbage tail": func(p string) {
			os.WriteFile(p, append(append([]byte(nil), idx...), "garbage!garbage!garbage!"...), 0o644)
		},
		"header damage": func(p string) { b := append([]byte(nil), idx...); b[2] ^= 1; os.WriteFile(p, b, 0o644) },
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, dir0, dir)
			damage(filepath.Join(dir, "index.log"))
			for round := 0; round < 2; round++ { // and again once repaired
				s := openStore(t, dir, smallOpts(), clock.NewFake(t0))
				if got := seqsOf(allFrames(t, s)); !equalSeqs(got, seqs) {
					t.Fatalf("round %d: %d frames, want %d", round, len(got), len(seqs))
				}
				s.Close()
			}
		})
	}
}

// TestDamagedFooter: a sealed segment whose trailer is damaged is read
// record by record, and resealed when the index file no longer knows it.
func TestDamagedFooter(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, smallOpts(), clock.NewFake(t0))
	seqs := record(t, s, t0, 25, 100)
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	b, _ := os.ReadFile(segs[0])
	b[len(b)-10] ^= 0xff
	os.WriteFile(segs[0], b, 0o644)

	s = openStore(t, dir, smallOpts(), clock.NewFake(t0))
	if got := seqsOf(allFrames(t, s)); !equalSeqs(got, seqs) {
		t.Fatalf("with the index file: %d frames, want %d", len(got), len(seqs))
	}
	if rep, _ := s.Verify(context.Background()); rep.OK() {
		t.Fatalf("verify must report the damaged footer: %+v", rep)
	}
	s.Close()
	os.Remove(filepath.Join(dir, "index.log"))
	s = openStore(t, dir, smallOpts(), clock.NewFake(t0))
	if got := seqsOf(allFrames(t, s)); !equalSeqs(got, seqs) {
		t.Fatalf("without the index file: %d frames, want %d", len(got), len(seqs))
	}
	// The records check, but the resealed file is not the one the chain
	// linked: verify says so, and why.
	rep, err := s.Verify(context.Background())
	if err != nil || len(rep.Problems) != 1 || rep.Problems[0].Segment != filepath.Base(segs[0]) ||
		!strings.Contains(rep.Problems[0].What, "altered since it was sealed") || !strings.Contains(rep.Problems[0].What, "rewritten by recovery") {
		t.Fatalf("after resealing, verify: %+v %v", rep, err)
	}
}
