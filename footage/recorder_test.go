package footage_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/footage/footagetest"
	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// The agent uses the recorder through these interfaces (declared in
// package agent, which footage must not import).
var (
	_ interface {
		Name() string
		Run(context.Context) error
		Ready() <-chan struct{}
	} = (*footage.Recorder)(nil)
	_ interface{ WriteFrame(camera.Frame) error } = (*footage.Recorder)(nil)
)

// running is a recorder running in its own goroutine on a fake clock,
// with a monotonic clock the test moves.
type running struct {
	t    *testing.T
	r    *footage.Recorder
	clk  *clock.Fake
	mono atomic.Int64
	stop func() error
}

func startRecorder(t *testing.T, dir string, o footage.Options) *running {
	t.Helper()
	rr := &running{t: t, clk: clock.NewFake(t0)}
	o.Monotonic = func() time.Duration { return time.Duration(rr.mono.Load()) }
	if o.MaintainEvery == 0 {
		o.MaintainEvery = time.Hour
	}
	r, err := footage.NewRecorder(dir, o, testLog(t), rr.clk)
	if err != nil {
		t.Fatal(err)
	}
	rr.r = r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("recorder stopped before ready: %v", err)
	}
	var stopped bool
	var stopErr error
	rr.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			stopErr = <-done
		}
		return stopErr
	}
	t.Cleanup(func() { rr.stop() })
	return rr
}

// feed gives the recorder frames at fps from start (monotonic time
// following frame time unless the test moves it) and waits until it has
// taken them all.
func (rr *running) feed(start time.Time, fps, n int) {
	rr.t.Helper()
	step := time.Second / time.Duration(fps)
	frames := footagetest.Frames(start, fps, n, testPics, 64, 48)
	// In batches smaller than the queue, so that none is dropped.
	for len(frames) > 0 {
		b := frames[:min(16, len(frames))]
		frames = frames[len(b):]
		want := rr.r.Stats().FramesReceived + uint64(len(b))
		for _, f := range b {
			if err := rr.r.WriteFrame(f); err != nil {
				rr.t.Fatal(err)
			}
			rr.mono.Add(int64(step))
		}
		rr.waitFor("frames taken", func() bool { return rr.r.Stats().FramesReceived >= want })
	}
}

// waitFor polls cond until it holds: the recorder works on its own
// goroutine, and these are its observable effects.
func (rr *running) waitFor(what string, cond func() bool) {
	rr.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			rr.t.Fatalf("timed out waiting for %s; stats %+v", what, rr.r.Stats())
		}
		tick := time.NewTimer(time.Millisecond)
		<-tick.C
	}
}

func (rr *running) trigger(kind string, at time.Time) {
	rr.t.Helper()
	want := rr.r.Stats().EventsWritten + 1
	rr.r.Trigger(kind, at)
	rr.waitFor("trigger recorded", func() bool { return rr.r.Stats().EventsWritten >= want })
}

func recordedTimes(t *testing.T, s *footage.Store) []time.Duration {
	var out []time.Duration
	for _, f := range allFrames(t, s) {
		out = append(out, f.Time.Sub(t0))
	}
	return out
}

func TestRecorderContinuous(t *testing.T) {
	dir := t.TempDir()
	rr := startRecorder(t, dir, smallOpts())
	rr.feed(t0, 25, 100)
	if st := rr.r.Stats(); st.FramesWritten != 100 || st.FramesDropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The sync policy: nothing durable until the interval passes.
	synced := rr.r.Stats().SyncedSeq
	rr.clk.Advance(time.Second)
	rr.waitFor("sync", func() bool { return rr.r.Stats().SyncedSeq > synced })
	if err := rr.stop(); err != nil {
		t.Fatal(err)
	}
	if rr.r.Store() != nil {
		t.Fatal("store still open after Run returned")
	}
	s := openStore(t, dir, smallOpts(), clock.NewFake(t0))
	if n := len(allFrames(t, s)); n != 100 {
		t.Fatalf("%d frames after stop, want 100", n)
	}
}

func TestRecorderEvents(t *testing.T) {
	o := smallOpts()
	o.Mode = config.ModeEvents
	o.PreRoll = 2 * time.Second
	o.PostRoll = 3 * time.Second
	rr := startRecorder(t, t.TempDir(), o)
	rr.feed(t0, 25, 250) // 0-10 s: nothing happens
	if st := rr.r.Stats(); st.FramesWritten != 0 {
		t.Fatalf("%d frames written with no trigger", st.FramesWritten)
	}
	rr.trigger("motion", t0.Add(10*time.Second))
	rr.feed(t0.Add(10*time.Second), 25, 225)          // 10-19 s
	rr.trigger("pir", t0.Add(19500*time.Millisecond)) // arriving half a second late
	rr.feed(t0.Add(19*time.Second), 25, 275)          // 19-30 s
	ts := recordedTimes(t, rr.r.Store())
	// 8-13 s (pre-roll from the ring, the trigger, post-roll) and
	// 17-22 s.
	want := 0
	for i := 0; i < 750; i++ {
		d := time.Duration(i) * 40 * time.Millisecond
		if (d >= 8*time.Second && d <= 13*time.Second) || (d >= 17500*time.Millisecond && d <= 22500*time.Millisecond) {
			if want < len(ts) && ts[want] != d {
				t.Fatalf("frame %d at %v, want %v", want, ts[want], d)
			}
			want++
		}
	}
	if len(ts) != want {
		t.Fatalf("%d frames recorded, want %d", len(ts), want)
	}
	fs := allFrames(t, rr.r.Store())
	if fs[0].Flags != footage.FlagEvent|footage.FlagPreRoll || fs[len(fs)-1].Flags != footage.FlagEvent {
		t.Fatalf("flags %b ... %b", fs[0].Flags, fs[len(fs)-1].Flags)
	}
}

func TestRecorderTimelapse(t *testing.T) {
	o := smallOpts()
	o.Mode = config.ModeTimelapse
	o.TimelapseInterval = 2 * time.Second
	o.PreRoll = time.Second
	o.PostRoll = time.Second
	rr := startRecorder(t, t.TempDir(), o)
	rr.feed(t0, 25, 125) // 0-5 s
	rr.trigger("manual", t0.Add(5*time.Second))
	rr.feed(t0.Add(5*time.Second), 25, 127) // 5-10.04 s
	ts := recordedTimes(t, rr.r.Store())
	// 0, 2 and 4 s by timelapse, 4-6 s by the event (its slot needs no
	// other frame), 8 and 10 s by timelapse.
	n := 0
	for i, d := range ts {
		if i > 0 && d <= ts[i-1] {
			t.Fatalf("times out of order: %v", ts)
		}
		if d >= 4*time.Second && d <= 6*time.Second {
			n++
		}
	}
	if n != 51 || ts[0] != 0 || ts[1] != 2*time.Second || ts[len(ts)-1] != 10*time.Second || len(ts) != 51+4 {
		t.Fatalf("recorded %d frames: %v", len(ts), ts)
	}
}

func TestRecorderQueueAndRefusals(t *testing.T) {
	o := smallOpts()
	o.QueueLen = 4
	r, err := footage.NewRecorder(t.TempDir(), o, nil, clock.NewFake(t0))
	if err != nil {
		t.Fatal(err)
	}
	fs := footagetest.Frames(t0, 25, 10, testPics, 64, 48)
	for i, f := range fs {
		err := r.WriteFrame(f)
		if (i < 4) != (err == nil) || (i >= 4 && !errors.Is(err, footage.ErrQueueFull)) {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if err := r.WriteFrame(camera.Frame{Codec: camera.MJPEG, Time: t0}); !errors.Is(err, footage.ErrEmptyFrame) {
		t.Fatalf("empty frame: %v", err)
	}
	if err := r.WriteFrame(frame(t0, make([]byte, o.MaxFrameSize+1))); !errors.Is(err, footage.ErrFrameTooLarge) {
		t.Fatalf("large frame: %v", err)
	}
	st := r.Stats()
	if st.DroppedQueueFull != 6 || st.FramesRefused != 2 || st.FramesDropped != 8 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRecorderFramesDroppedFault(t *testing.T) {
	o := smallOpts()
	o.QueueLen = 8
	o.MaintainEvery = time.Minute
	clk := clock.NewFake(t0)
	faults := make(chan footage.Fault, 10)
	o.OnFault = func(f footage.Fault) { faults <- f }
	r, err := footage.NewRecorder(t.TempDir(), o, testLog(t), clk)
	if err != nil {
		t.Fatal(err)
	}
	// The camera delivers 20 frames before the recorder takes any.
	for _, f := range footagetest.Frames(t0, 25, 20, testPics, 64, 48) {
		r.WriteFrame(f)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-r.Ready()
	// Maintenance passes run every minute; the first one raises the
	// fault, and a minute without drops clears it.
	for f := range faults {
		if f.Code == footage.FaultFramesDropped && f.Active {
			break
		}
		clk.Advance(time.Minute)
	}
	if st := r.Stats(); st.DroppedQueueFull != 12 {
		t.Fatalf("stats %+v", st)
	}
	for cleared := false; !cleared; {
		clk.Advance(time.Minute)
		select {
		case f := <-faults:
			cleared = f.Code == footage.FaultFramesDropped && !f.Active
		case <-time.After(10 * time.Millisecond): // the pass has not run yet: advance again
		}
	}
}

func TestRecorderClockStep(t *testing.T) {
	boot := time.Unix(0, 0).Add(30 * time.Second)
	rr := startRecorder(t, t.TempDir(), smallOpts())
	rr.feed(boot, 25, 50) // 2 s at 1970
	// NTP sets the clock: the next frame is stamped in 2025, though only
	// 40 ms passed.
	rr.feed(t0.Add(2*time.Second), 25, 50)
	ts := timesIn(t, rr.r.Store(), t0, t0.Add(4*time.Second))
	if len(ts) != 100 || !ts[0].Equal(t0) || !ts[99].Equal(t0.Add(3960*time.Millisecond)) {
		t.Fatalf("%d frames in the 4 s, from %v to %v", len(ts), ts[0], ts[len(ts)-1])
	}
	// A camera that stalls for a minute is not a clock step: wall and
	// monotonic time agree.
	rr.mono.Add(int64(time.Minute))
	rr.feed(t0.Add(time.Minute+4*time.Second), 25, 25)
	if ts := timesIn(t, rr.r.Store(), t0, t0.Add(4*time.Second)); len(ts) != 100 {
		t.Fatalf("a stall moved footage: %d frames in the first 4 s", len(ts))
	}
}

func TestRecorderEventsPreRollAcrossClockStep(t *testing.T) {
	o := smallOpts()
	o.Mode = config.ModeEvents
	o.PreRoll = 2 * time.Second
	o.PostRoll = time.Second
	boot := time.Unix(0, 0).Add(30 * time.Second)
	rr := startRecorder(t, t.TempDir(), o)
	rr.feed(boot, 25, 50)                  // 1970, in the ring
	rr.feed(t0.Add(2*time.Second), 25, 25) // the clock is set
	rr.trigger("motion", t0.Add(3*time.Second))
	ts := timesIn(t, rr.r.Store(), t0, t0.Add(time.Hour))
	if len(ts) != 50 || !ts[0].Equal(t0.Add(time.Second)) {
		t.Fatalf("pre-roll across the step: %d frames from %v", len(ts), ts)
	}
}

// TestRecorderDiskFull: with the card full the recorder raises a fault,
// evicts by policy (never held footage), drops frames, keeps running, and
// resumes by itself once there is room.
func TestRecorderDiskFull(t *testing.T) {
	for _, held := range []bool{false, true} {
		t.Run(map[bool]string{false: "evicts", true: "held footage kept"}[held], func(t *testing.T) {
			dir := t.TempDir()
			var full atomic.Bool
			var removed atomic.Int32
			ffs := &footagetest.FaultFS{}
			ffs.SetUsage(1<<30, 1<<29)
			ffs.SetFail(func(op footagetest.Op, name string) error {
				switch {
				case op == footagetest.OpRemove && len(name) > 4 && name[len(name)-4:] == ".seg":
					removed.Add(1)
					full.Store(false) // eviction made room
				case full.Load() && (op == footagetest.OpWrite || op == footagetest.OpCreate):
					return footagetest.ErrNoSpace
				}
				return nil
			})
			o := smallOpts()
			o.FS = ffs
			o.MinFree = config.SizeOrPercent{}
			o.HoldCap = config.SizeOrPercent{Percent: 100}
			var faults []footage.Fault
			faultc := make(chan footage.Fault, 100)
			o.OnFault = func(f footage.Fault) { faultc <- f }
			rr := startRecorder(t, dir, o)
			rr.feed(t0, 25, 200) // 8 s, 4 sealed segments
			if held {
				s := rr.r.Store()
				if _, err := s.AddHold(t0, t0.Add(time.Hour), "incident", "operator"); err != nil {
					t.Fatal(err)
				}
			}
			full.Store(true)
			rr.feed(t0.Add(8*time.Second), 25, 50)
			st := rr.r.Stats()
			if st.DroppedWriteFailed == 0 {
				t.Fatalf("no frames dropped on a full card: %+v", st)
			}
			f := <-faultc
			faults = append(faults, f)
			if f.Code != footage.FaultDiskFull || !f.Active {
				t.Fatalf("fault %+v", f)
			}
			if held {
				if removed.Load() != 0 {
					t.Fatalf("%d held segments deleted to make room", removed.Load())
				}
				full.Store(false) // the operator freed space
			} else if removed.Load() == 0 {
				t.Fatal("nothing evicted on a full card")
			}
			// After the backoff, recording resumes by itself.
			rr.clk.Advance(time.Minute)
			before := rr.r.Stats().FramesWritten
			rr.feed(t0.Add(11*time.Second), 25, 25)
			if rr.r.Stats().FramesWritten != before+25 {
				t.Fatalf("not resumed: %+v", rr.r.Stats())
			}
			select {
			case f := <-faultc:
				if f.Code != footage.FaultDiskFull || f.Active {
					t.Fatalf("fault %+v, want disk_full cleared", f)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("disk_full never cleared; faults %v", rr.r.Faults())
			}
			if err := rr.stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
