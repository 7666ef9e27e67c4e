package footage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/internal/backoff"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// ErrQueueFull is returned by WriteFrame when the recorder is behind and
// the frame was dropped (and counted).
var ErrQueueFull = errors.New("footage: recorder queue full, frame dropped")

// Recorder is the agent component that records the camera's frames into
// the store. It is a frame sink for the capture component: WriteFrame only
// queues the frame (a bounded queue; when full the frame is dropped and
// counted), and the recorder's own goroutine decides what to keep by the
// recording mode, appends, syncs every SyncInterval, and runs retention
// every MaintainEvery. The store is opened (and recovered) when Run
// starts, so Ready tells dependents when footage can be read.
type Recorder struct {
	dir  string
	opts Options
	log  *slog.Logger
	clk  clock.Clock

	queue    chan queued
	triggers chan trigger

	ready     chan struct{}
	readyOnce sync.Once

	mu    sync.Mutex
	store *Store
	last  Stats // the store's figures when it was last open

	received                          atomic.Uint64
	dropQueue, dropInvalid, dropWrite atomic.Uint64
	triggersLost                      atomic.Uint64
	faults                            faultSet
}

type queued struct {
	f    camera.Frame
	mono time.Duration
}

type trigger struct {
	kind string
	at   time.Time
}

// NewRecorder returns a recorder of the store in dir. Nothing is opened
// until Run.
func NewRecorder(dir string, opts Options, log *slog.Logger, clk clock.Clock) (*Recorder, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if opts.ReadOnly {
		return nil, errors.New("footage: a recorder needs a store open for writing")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	r := &Recorder{
		dir: dir, opts: opts, log: log.With("component", "recorder"), clk: clk,
		queue:    make(chan queued, opts.QueueLen),
		triggers: make(chan trigger, 64),
		ready:    make(chan struct{}),
	}
	r.faults.notify = opts.OnFault
	return r, nil
}

// Name implements agent.Component.
func (r *Recorder) Name() string { return "recorder" }

// Ready is closed once the store has been opened the first time.
func (r *Recorder) Ready() <-chan struct{} { return r.ready }

// Store is the open store, or nil when the recorder is not running. Reads
// (export, snapshot, listing) may go through it while recording.
func (r *Recorder) Store() *Store {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.store
}

// WriteFrame implements agent.FrameSink. It never blocks: the frame is
// queued for the recorder's goroutine, or dropped and counted when it is
// empty, too large, or the queue is full.
func (r *Recorder) WriteFrame(f camera.Frame) error {
	switch {
	case len(f.Data) == 0:
		r.dropInvalid.Add(1)
		return ErrEmptyFrame
	case int64(len(f.Data)) > r.opts.MaxFrameSize:
		r.dropInvalid.Add(1)
		return fmt.Errorf("%w (%d bytes, limit %d)", ErrFrameTooLarge, len(f.Data), r.opts.MaxFrameSize)
	}
	select {
	case r.queue <- queued{f: f, mono: r.opts.Monotonic()}:
		return nil
	default:
		r.dropQueue.Add(1)
		return ErrQueueFull
	}
}

// Trigger tells the recorder that something happened at at (motion, a PIR
// sensor, a manual trigger from the control room): an event record is
// written, and in events and timelapse modes the pre-roll before at and
// the post-roll after it are recorded. It never blocks.
func (r *Recorder) Trigger(kind string, at time.Time) {
	select {
	case r.triggers <- trigger{kind, at}:
	default:
		r.triggersLost.Add(1)
		r.log.Warn("trigger dropped: too many pending", "kind", kind, "at", at)
	}
}

// Stats reports the store's figures (as last seen if it is closed) with
// the recorder's drop counters.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	s := r.store
	st := r.last
	r.mu.Unlock()
	if s != nil {
		st = s.Stats()
	}
	st.FramesReceived = r.received.Load()
	st.DroppedQueueFull = r.dropQueue.Load()
	st.DroppedWriteFailed = r.dropWrite.Load()
	st.FramesRefused += r.dropInvalid.Load()
	st.FramesDropped = st.DroppedQueueFull + st.DroppedWriteFailed + st.FramesRefused
	return st
}

// Faults lists the active faults of the recorder and its store.
func (r *Recorder) Faults() []Fault {
	out := r.faults.list()
	if s := r.Store(); s != nil {
		out = append(out, s.Faults()...)
	}
	return out
}

// Run opens the store and records until ctx is cancelled; it then writes
// the frames already queued, syncs, seals and closes the store.
func (r *Recorder) Run(ctx context.Context) error {
	s, err := Open(r.dir, r.opts, r.log, r.clk)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.store = s
	r.mu.Unlock()
	r.readyOnce.Do(func() { close(r.ready) })
	defer func() {
		st := s.Stats()
		r.mu.Lock()
		r.store, r.last = nil, st
		r.mu.Unlock()
	}()

	w := &recWorker{r: r, s: s, bo: backoff.New(time.Second, 30*time.Second)}
	w.ring.maxBytes = r.opts.PreRollMaxBytes
	if r.opts.PreRoll > 0 && r.opts.Mode != config.ModeContinuous {
		w.ring.span = int64(r.opts.PreRoll + triggerLatency)
	}
	syncT := r.clk.NewTicker(r.opts.SyncInterval)
	defer syncT.Stop()
	maintT := r.clk.NewTicker(r.opts.MaintainEvery)
	defer maintT.Stop()
	w.maintain(ctx)
	for {
		select {
		case <-ctx.Done():
			return w.shutdown()
		case q := <-r.queue:
			w.frame(q)
		case t := <-r.triggers:
			w.trigger(t)
		case <-syncT.C():
			w.sync()
		case <-maintT.C():
			w.maintain(ctx)
		}
	}
}

// recWorker is the recorder's goroutine state.
type recWorker struct {
	r  *Recorder
	s  *Store
	bo *backoff.Backoff

	ring       preRoll
	eventUntil int64 // frames up to this time are event frames
	// lastSlot is the timelapse slot (time / interval) of the last frame
	// written: timelapse writes the first frame of each slot, on a fixed
	// grid, and a slot with event frames needs none.
	lastSlot int64
	haveSlot bool

	havePrev bool
	prevWall int64
	prevMono time.Duration

	pausedUntil time.Time // after a failed write, frames are dropped until then
	lastDrops   uint64
	dropsSeen   time.Time
}

func (w *recWorker) frame(q queued) {
	r := w.r
	defer r.received.Add(1)
	t := q.f.Time.UnixNano()
	if w.havePrev {
		step := time.Duration(t-w.prevWall) - (q.mono - w.prevMono)
		if step > r.opts.StepThreshold || step < -r.opts.StepThreshold {
			w.clockStep(step, q.f.Time)
		}
	}
	w.havePrev, w.prevWall, w.prevMono = true, t, q.mono

	switch {
	case r.opts.Mode == config.ModeContinuous:
		var flags byte
		if t <= w.eventUntil {
			flags = FlagEvent
		}
		w.append(q.f, flags)
		return
	case t <= w.eventUntil:
		w.ring.push(q.f, w.append(q.f, FlagEvent))
		return
	}
	written := false
	if r.opts.Mode == config.ModeTimelapse && (!w.haveSlot || w.slot(t) != w.lastSlot) {
		written = w.append(q.f, FlagTimelapse)
	}
	w.ring.push(q.f, written)
}

func (w *recWorker) slot(t int64) int64 {
	iv := int64(w.r.opts.TimelapseInterval)
	if t < 0 {
		return (t - iv + 1) / iv
	}
	return t / iv
}

// triggerLatency is how much older than the pre-roll the ring keeps
// frames, so that a trigger that reaches the recorder late (motion
// detection takes a moment) still gets its whole pre-roll.
const triggerLatency = time.Second

func (w *recWorker) trigger(t trigger) {
	r := w.r
	at := t.at.UnixNano()
	until := at + int64(r.opts.PostRoll)
	if r.opts.Mode != config.ModeContinuous {
		from := at - int64(r.opts.PreRoll)
		for i := range w.ring.items {
			it := &w.ring.items[i]
			if ft := it.f.Time.UnixNano(); it.written || ft < from || ft > until {
				continue
			}
			it.written = w.append(it.f, FlagEvent|FlagPreRoll)
		}
	}
	w.eventUntil = max(w.eventUntil, until)
	// The event record follows its pre-roll.
	if _, err := w.s.AppendEvent(t.kind, t.at); err != nil {
		r.log.Warn("event not recorded", "kind", t.kind, "err", err)
	}
	r.log.Debug("trigger", "kind", t.kind, "at", t.at)
}

// clockStep handles a step of the wall clock noticed between two frames.
func (w *recWorker) clockStep(step time.Duration, now time.Time) {
	if err := w.s.NoteClockStep(step, now); err != nil {
		w.r.log.Warn("clock correction not recorded", "step", step, "err", err)
	}
	// Frames still in the ring were stamped by the old clock.
	for i := range w.ring.items {
		w.ring.items[i].f.Time = w.ring.items[i].f.Time.Add(step)
	}
	if w.eventUntil != 0 {
		w.eventUntil += int64(step)
	}
}

// append writes a frame, reporting whether it was written. After a failed
// write, frames are dropped for a backoff before the next attempt.
func (w *recWorker) append(f camera.Frame, flags byte) bool {
	r := w.r
	now := r.clk.Now()
	if now.Before(w.pausedUntil) {
		r.dropWrite.Add(1)
		return false
	}
	_, err := w.s.Append(f, flags)
	if err == nil {
		w.lastSlot, w.haveSlot = w.slot(f.Time.UnixNano()), true
		if !w.pausedUntil.IsZero() {
			r.log.Info("recording resumed")
			w.pausedUntil = time.Time{}
			w.bo.Reset()
		}
		return true
	}
	switch {
	case errors.Is(err, ErrEmptyFrame) || errors.Is(err, ErrFrameTooLarge):
		return false
	case errors.Is(err, ErrClosed):
		r.dropWrite.Add(1)
		return false
	}
	r.dropWrite.Add(1)
	d := w.bo.Next()
	w.pausedUntil = now.Add(d)
	if IsDiskFull(err) {
		r.log.Error("card full: evicting the oldest footage and retrying", "retry_in", d.Round(time.Millisecond), "err", err)
		w.maintain(context.Background())
		if n, err := w.s.MakeRoom(context.Background(), r.opts.SegmentMaxSize); err != nil {
			r.log.Warn("making room failed", "err", err)
		} else if n == 0 {
			r.log.Error("card full and nothing can be evicted: what is left is held or being exported")
		}
	} else {
		r.log.Error("footage write failed; retrying", "retry_in", d.Round(time.Millisecond), "err", err)
	}
	return false
}

func (w *recWorker) sync() {
	if _, err := w.s.Sync(); err != nil {
		w.r.log.Error("footage sync failed", "err", err)
	}
}

func (w *recWorker) maintain(ctx context.Context) {
	r := w.r
	if _, err := w.s.Maintain(ctx); err != nil && ctx.Err() == nil {
		r.log.Warn("retention pass failed", "err", err)
	}
	now := r.clk.Now()
	drops := r.dropQueue.Load()
	switch {
	case drops > w.lastDrops:
		r.faults.raise(FaultFramesDropped, fmt.Sprintf("the recorder fell behind the camera and dropped %d frames: the SD card may be too slow; check its write speed or lower camera.fps", drops), now)
		w.dropsSeen = now
	case now.Sub(w.dropsSeen) >= time.Minute:
		r.faults.clear(FaultFramesDropped, now)
	}
	w.lastDrops = drops
}

// shutdown writes what is queued, syncs, seals and closes the store.
func (w *recWorker) shutdown() error {
	for {
		select {
		case q := <-w.r.queue:
			w.frame(q)
			continue
		default:
		}
		break
	}
	if err := w.s.Close(); err != nil {
		return fmt.Errorf("footage: close store: %w", err)
	}
	return nil
}

// preRoll is the bounded RAM ring of recent frames that events mode draws
// its pre-roll from: the frames of the last PreRoll, at most maxBytes.
type preRoll struct {
	items    []ringItem
	bytes    int64
	maxBytes int64
	span     int64
}

type ringItem struct {
	f       camera.Frame
	written bool
}

func (p *preRoll) push(f camera.Frame, written bool) {
	if p.span <= 0 {
		return
	}
	p.items = append(p.items, ringItem{f, written})
	p.bytes += int64(len(f.Data))
	newest := f.Time.UnixNano()
	drop := 0
	for drop < len(p.items)-1 && (p.bytes > p.maxBytes || newest-p.items[drop].f.Time.UnixNano() > p.span) {
		p.bytes -= int64(len(p.items[drop].f.Data))
		drop++
	}
	if drop > 0 {
		n := copy(p.items, p.items[drop:])
		clear(p.items[n:])
		p.items = p.items[:n]
	}
}
