package clock

import (
	"sync"
	"time"
)

// Fake is a manually advanced clock for tests. Timers and tickers fire when
// Advance moves the time past their deadline. The zero value is not usable;
// call NewFake.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*fakeWaiter
}

// NewFake returns a fake clock set to t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

type fakeWaiter struct {
	f        *Fake
	deadline time.Time
	period   time.Duration // 0 for timers
	c        chan time.Time
	active   bool
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d, firing every timer and ticker whose
// deadline is reached. Channels are buffered by one; a tick not received in
// time is dropped, as with time.Ticker.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	for _, w := range f.waiters {
		for w.active && !w.deadline.After(f.now) {
			select {
			case w.c <- w.deadline:
			default:
			}
			if w.period == 0 {
				w.active = false
				break
			}
			w.deadline = w.deadline.Add(w.period)
		}
	}
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.active {
			kept = append(kept, w)
		}
	}
	f.waiters = kept
}

// Waiters reports how many timers and tickers are pending; tests use it to
// know a goroutine has reached its wait before advancing the clock.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

func (f *Fake) add(d, period time.Duration) *fakeWaiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &fakeWaiter{f: f, deadline: f.now.Add(d), period: period, c: make(chan time.Time, 1), active: true}
	f.waiters = append(f.waiters, w)
	return w
}

// NewTimer returns a timer driven by Advance.
func (f *Fake) NewTimer(d time.Duration) Timer { return fakeTimer{f.add(d, 0)} }

// NewTicker returns a ticker driven by Advance.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive ticker interval")
	}
	return fakeTicker{f.add(d, d)}
}

func (w *fakeWaiter) stop() bool {
	f := w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	was := w.active
	w.active = false
	for i, o := range f.waiters {
		if o == w {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			break
		}
	}
	return was
}

func (w *fakeWaiter) reset(d time.Duration) bool {
	was := w.stop()
	f := w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	w.deadline = f.now.Add(d)
	if w.period != 0 {
		w.period = d
	}
	w.active = true
	f.waiters = append(f.waiters, w)
	return was
}

type fakeTimer struct{ w *fakeWaiter }

func (t fakeTimer) C() <-chan time.Time        { return t.w.c }
func (t fakeTimer) Stop() bool                 { return t.w.stop() }
func (t fakeTimer) Reset(d time.Duration) bool { return t.w.reset(d) }

type fakeTicker struct{ w *fakeWaiter }

func (t fakeTicker) C() <-chan time.Time   { return t.w.c }
func (t fakeTicker) Stop()                 { t.w.stop() }
func (t fakeTicker) Reset(d time.Duration) { t.w.reset(d) }
