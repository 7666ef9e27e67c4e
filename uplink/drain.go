package uplink

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink/outbox"
)

// drain publishes the outbox while connected: highest priority first,
// oldest first within a priority, with at most DrainWindow messages
// awaiting the broker's acknowledgement and at most DrainRate bytes per
// second, so that a backlog kept through an outage does not swamp the
// cellular link when it returns. A message leaves the outbox only once the
// broker acknowledged it; one whose publish failed is sent again.
func (s *Session) drain(ctx context.Context) {
	type result struct {
		id  uint64
		err error
	}
	window := s.opts.DrainWindow
	results := make(chan result, window) // never blocks: at most window waiters
	var wg sync.WaitGroup
	defer wg.Wait()

	bucket := newBucket(s.opts.DrainRate, s.clk.Now())
	ackTimeout := max(20*time.Second, 3*s.opts.KeepAlive)
	inflight := 0
	var pending *outbox.Entry // leased, waiting for the rate limit
	var timer clock.Timer     // armed while waiting for the rate limit or after an error
	var timerC <-chan time.Time
	arm := func(d time.Duration) {
		if timer == nil {
			timer = s.clk.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		timerC = timer.C()
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()

	for {
		s.mu.Lock()
		ob, c := s.ob, s.conn
		s.mu.Unlock()
		if ob != nil && pending != nil && c == nil {
			ob.Release(pending.ID)
			pending = nil
		}
		for ob != nil && c != nil && inflight < window && timerC == nil {
			if pending == nil {
				e, ok := ob.Lease()
				if !ok {
					break
				}
				pending = &e
			}
			if d := bucket.take(len(pending.Payload)+len(pending.Topic), s.clk.Now()); d > 0 {
				arm(d)
				break
			}
			e := *pending
			pending = nil
			t := c.c.Publish(e.Topic, 1, e.Retained, e.Payload)
			inflight++
			wg.Add(1)
			go func(c *conn, id uint64, t token) {
				defer wg.Done()
				actx, cancel := context.WithTimeout(ctx, ackTimeout)
				defer cancel()
				results <- result{id: id, err: waitToken(actx, c, t, "publish "+e.Topic)}
			}(c, e.ID, t)
		}
		select {
		case <-ctx.Done():
			if pending != nil && ob != nil {
				ob.Release(pending.ID)
			}
			// Waiters end on ctx; their messages stay in the outbox.
			return
		case <-s.wake:
		case <-timerC:
			timerC = nil
		case r := <-results:
			inflight--
			if ob == nil {
				continue
			}
			if r.err == nil {
				if err := ob.Ack(r.id); err != nil {
					s.log.Warn("outbox: recording a delivery failed; the message may be sent again", "err", err)
				}
				continue
			}
			ob.Release(r.id)
			if !errors.Is(r.err, ErrOffline) && ctx.Err() == nil {
				s.log.Warn("outbox publish failed; retrying", "err", r.err)
				if timerC == nil {
					arm(time.Second)
				}
			}
		}
	}
}

// bucket is a token bucket of bytes: rate per second, holding at most one
// second's worth. A message larger than that goes when the bucket is full,
// taking it into debt.
type bucket struct {
	rate   float64
	tokens float64
	at     time.Time
}

func newBucket(rate int64, now time.Time) *bucket {
	return &bucket{rate: float64(rate), tokens: float64(rate), at: now}
}

// take spends n bytes, or returns how long to wait before trying again.
func (b *bucket) take(n int, now time.Time) time.Duration {
	if dt := now.Sub(b.at).Seconds(); dt > 0 {
		b.tokens = min(b.rate, b.tokens+dt*b.rate)
		b.at = now
	}
	need := min(float64(n), b.rate)
	if b.tokens >= need {
		b.tokens -= float64(n)
		return 0
	}
	d := time.Duration((need - b.tokens) / b.rate * float64(time.Second))
	return max(d, time.Millisecond)
}
