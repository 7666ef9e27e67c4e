package footage_test

import (
	"context"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/footage/footagetest"
	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// TestDiskFullRealFilesystem fills a real 2 MiB file system: the kernel's
// ENOSPC, not a fake's. It needs to mount a tmpfs, which takes root (the
// fake-based tests cover the same behaviour everywhere).
func TestDiskFullRealFilesystem(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a small tmpfs here (%v): this test needs root; TestRecorderDiskFull covers the behaviour with a fake", err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	o := smallOpts()
	o.SegmentMaxSize = 256 << 10
	o.Quota = config.SizeOrPercent{Percent: 100}
	o.MinFree = config.SizeOrPercent{}
	o.HoldCap = config.SizeOrPercent{Percent: 100}
	faults := make(chan footage.Fault, 100)
	o.OnFault = func(f footage.Fault) { faults <- f }
	rr := startRecorder(t, dir, o)
	pic := footagetest.JPEG(256, 192, 1, 95) // ~30 KB
	mono := time.Duration(0)
	send := func(i int) {
		mono += 40 * time.Millisecond
		rr.mono.Store(int64(mono))
		want := rr.r.Stats().FramesReceived + 1
		if err := rr.r.WriteFrame(camera.Frame{Data: pic, Codec: camera.MJPEG, Time: t0.Add(time.Duration(i) * 40 * time.Millisecond), Width: 256, Height: 192}); err != nil {
			t.Fatal(err)
		}
		rr.waitFor("frame taken", func() bool { return rr.r.Stats().FramesReceived >= want })
	}
	i := 0
	for ; rr.r.Stats().DroppedWriteFailed == 0; i++ {
		if i > 1000 {
			t.Fatalf("2 MiB never filled: %+v", rr.r.Stats())
		}
		send(i)
	}
	if f := <-faults; f.Code != footage.FaultDiskFull || !f.Active {
		t.Fatalf("fault %+v, want disk_full", f)
	}
	st := rr.r.Stats()
	if st.EvictedSegments == 0 {
		t.Fatalf("nothing evicted on a full disk: %+v", st)
	}
	// After the backoff, recording resumes in the room made.
	rr.clk.Advance(time.Minute)
	written := st.FramesWritten
	for n := 0; n < 10; n++ {
		send(i)
		i++
	}
	if got := rr.r.Stats().FramesWritten; got < written+5 {
		t.Fatalf("recording did not resume: %d frames written after, %+v", got-written, rr.r.Stats())
	}
	if err := rr.stop(); err != nil {
		t.Fatalf("stop on a nearly full disk: %v", err)
	}
	s := openStore(t, dir, o, clock.NewFake(t0))
	if rep, err := s.Verify(context.Background()); err != nil || !rep.OK() {
		t.Fatalf("verify after ENOSPC: %+v %v", rep, err)
	}
	s.Close()
	os.Remove(dir + "/LOCK")
}
