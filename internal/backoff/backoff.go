// Package backoff is the one jittered, capped exponential backoff used
// wherever the agent retries: restarting components, reconnecting to the
// broker, reopening a camera.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
)

// Backoff computes successive delays: Min, doubling up to Max, each with up
// to Jitter (a fraction, 0-1) of random spread so that a fleet restarted by
// the same event does not retry in lock-step. The zero value is not useful;
// use New.
type Backoff struct {
	Min, Max time.Duration
	Jitter   float64
	attempt  int
	rnd      *rand.Rand
}

// New returns a backoff from min to max with 20 % jitter.
func New(min, max time.Duration) *Backoff {
	return &Backoff{Min: min, Max: max, Jitter: 0.2, rnd: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// Next returns the delay before the next attempt and counts the attempt.
func (b *Backoff) Next() time.Duration {
	d := b.Min
	for i := 0; i < b.attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	b.attempt++
	if b.Jitter > 0 {
		spread := float64(d) * b.Jitter
		d = time.Duration(float64(d) - spread + b.rnd.Float64()*2*spread)
	}
	if d < 0 {
		d = 0
	}
	return d
}

// Attempts is the number of delays handed out since the last Reset.
func (b *Backoff) Attempts() int { return b.attempt }

// Reset starts again from Min, after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Wait sleeps for the next delay on clk, or returns ctx's error if ctx ends
// first.
func (b *Backoff) Wait(ctx context.Context, clk clock.Clock) error {
	t := clk.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}
