package footage_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/internal/clock"
)

func TestAppendReopenRead(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(t0)
	s := openStore(t, dir, smallOpts(), clk)
	seqs := record(t, s, t0, 25, 200) // 8 s: rotates by duration
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, smallOpts(), clk)
	got := allFrames(t, s)
	if len(got) != len(seqs) {
		t.Fatalf("read %d frames, want %d", len(got), len(seqs))
	}
	for i, f := range got {
		if f.Seq != seqs[i] || !f.Time.Equal(t0.Add(time.Duration(i)*40*time.Millisecond)) || !bytes.Equal(f.Data, testPics[i%len(testPics)]) {
			t.Fatalf("frame %d: seq %d time %v, want seq %d", i, f.Seq, f.Time, seqs[i])
		}
	}
	segs := s.Segments()
	if len(segs) < 4 {
		t.Errorf("%d segments for 8 s of 2 s segments", len(segs))
	}
	for _, sg := range segs {
		if !sg.Sealed {
			t.Errorf("segment %s not sealed after a clean close", sg.Name)
		}
	}
	rep, err := s.Verify(context.Background())
	if err != nil || !rep.OK() || rep.Frames != 200 {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
	// Recording continues with higher sequences.
	more := record(t, s, t0.Add(10*time.Second), 25, 10)
	if more[0] <= seqs[len(seqs)-1] {
		t.Fatalf("sequence went back: %d after %d", more[0], seqs[len(seqs)-1])
	}
	var buf bytes.Buffer
	info, err := s.Export(context.Background(), &buf, t0, t0.Add(4*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "out.mp4")
	os.WriteFile(p, buf.Bytes(), 0o644)
	t.Logf("export %+v -> %s", info, p)
	if os.Getenv("KEEP") != "" {
		os.WriteFile(os.Getenv("KEEP"), buf.Bytes(), 0o644)
	}
	_ = footage.ErrNoFootage
}
