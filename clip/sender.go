package clip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
)

// Publisher is what the sender needs of the uplink: a live publish that
// fails at once while the link is down.
type Publisher interface {
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
}

// SendOptions tunes a Sender. Zero fields take the defaults noted.
type SendOptions struct {
	Clock clock.Clock // default clock.Real
	// InitialRTO is the retransmission timeout before any round trip has
	// been measured (default 3 s); it then adapts (RFC 6298), within
	// MinRTO (500 ms) and MaxRTO (30 s).
	InitialRTO, MinRTO, MaxRTO time.Duration
	// Idle ends the transfer when nothing is heard from the control room
	// for this long (default 2 min); it can be resumed later.
	Idle time.Duration
	// ConfirmWait is how long to wait for the Done acknowledgement once
	// every chunk is acknowledged (default 1 min).
	ConfirmWait time.Duration
}

// SendResult reports a finished send.
type SendResult struct {
	Sent, Resent int   // chunk publications, and how many were repeats
	Bytes        int64 // chunk bytes published, repeats included
	Confirmed    bool  // the control room verified the file (Ack.Done)
	Cancelled    bool  // the control room cancelled (Ack.Cancel)
}

// ErrIdle is returned when the control room stopped answering.
var ErrIdle = errors.New("clip: no acknowledgement from the control room; transfer paused")

type inflight struct {
	sentAt time.Time
	resent bool
}

// Send publishes the chunks of m that have (received already) lacks, read
// from r, to topic, with at most m.Window unacknowledged, until every chunk
// is acknowledged and the file is confirmed, the control room cancels, ctx
// ends, or the control room falls silent for Idle. acks carries the
// control room's acknowledgements for this transfer.
func Send(ctx context.Context, log *slog.Logger, pub Publisher, topic string, m Manifest, r io.ReaderAt, have Bitmap, acks <-chan Ack, o SendOptions) (SendResult, error) {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.InitialRTO, 3*time.Second)
	def(&o.MinRTO, 500*time.Millisecond)
	def(&o.MaxRTO, 30*time.Second)
	def(&o.Idle, 2*time.Minute)
	def(&o.ConfirmWait, time.Minute)
	window := m.Window
	if window < 1 {
		window = DefaultWindow
	}
	if have.Len() != m.Chunks {
		have = NewBitmap(m.Chunks)
	}

	var res SendResult
	acked := have
	nAcked := acked.Count()
	flight := map[int]*inflight{}
	var resend []int
	queued := map[int]bool{}
	cursor := 0
	rto := o.InitialRTO
	var srtt, rttvar time.Duration
	lastHeard := o.Clock.Now()
	allAckedAt := time.Time{}
	buf := make([]byte, m.ChunkSize)

	nextFresh := func() int {
		for cursor < m.Chunks && (acked.Has(cursor) || flight[cursor] != nil) {
			cursor++
		}
		if cursor < m.Chunks {
			return cursor
		}
		return -1
	}
	send := func(i int, repeat bool) error {
		n := m.chunkLen(i)
		if _, err := r.ReadAt(buf[:n], int64(i)*int64(m.ChunkSize)); err != nil && !errors.Is(err, io.EOF) {
			return &readError{fmt.Errorf("clip: reading chunk %d of %s: %w", i, m.ID, err)}
		}
		frame := EncodeChunk(make([]byte, 0, headerSize+n), i, m.Chunks, buf[:n])
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := pub.Publish(pctx, topic, 0, false, frame)
		cancel()
		if err != nil {
			return err
		}
		res.Sent++
		res.Bytes += int64(n)
		if repeat {
			res.Resent++
		}
		flight[i] = &inflight{sentAt: o.Clock.Now(), resent: repeat}
		return nil
	}
	ack := func(i int, now time.Time) {
		if i < 0 || i >= m.Chunks || acked.Has(i) {
			return
		}
		acked.Set(i)
		nAcked++
		if f := flight[i]; f != nil {
			if !f.resent { // Karn: time only chunks sent once
				sample := now.Sub(f.sentAt)
				if srtt == 0 {
					srtt, rttvar = sample, sample/2
				} else {
					d := srtt - sample
					if d < 0 {
						d = -d
					}
					rttvar = (3*rttvar + d) / 4
					srtt = (7*srtt + sample) / 8
				}
				rto = min(max(srtt+4*rttvar, o.MinRTO), o.MaxRTO)
			}
			delete(flight, i)
		}
	}

	timer := o.Clock.NewTimer(time.Hour)
	defer timer.Stop()
	linkDown := false
	for {
		now := o.Clock.Now()
		if nAcked == m.Chunks && allAckedAt.IsZero() {
			allAckedAt = now
		}
		// Fill the window: repeats first, then fresh chunks.
		linkDown = false
		for allAckedAt.IsZero() && len(flight) < window {
			i, repeat := -1, false
			for len(resend) > 0 && i < 0 {
				c := resend[0]
				resend = resend[1:]
				delete(queued, c)
				if !acked.Has(c) {
					i, repeat = c, true
				}
			}
			if i < 0 {
				if i = nextFresh(); i < 0 {
					break
				}
			}
			if err := send(i, repeat); err != nil {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				var rerr *readError
				if errors.As(err, &rerr) {
					return res, err
				}
				// The link is down: try this chunk again shortly. A fresh
				// chunk is picked up again by the cursor.
				if repeat {
					resend = append([]int{i}, resend...)
					queued[i] = true
				}
				linkDown = true
				break
			}
		}

		// Wake for the earliest retransmission, the idle limit, or a
		// retry of a link that was down.
		wake := lastHeard.Add(o.Idle)
		if !allAckedAt.IsZero() {
			wake = allAckedAt.Add(o.ConfirmWait)
		}
		for _, f := range flight {
			if t := f.sentAt.Add(rto); t.Before(wake) {
				wake = t
			}
		}
		if linkDown {
			if t := now.Add(time.Second); t.Before(wake) {
				wake = t
			}
		}
		timer.Reset(max(wake.Sub(now), time.Millisecond))
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case a := <-acks:
			now := o.Clock.Now()
			lastHeard = now
			if a.Cancel {
				res.Cancelled = true
				return res, nil
			}
			for i := 0; i < a.Next && i < m.Chunks; i++ {
				ack(i, now)
			}
			for _, i := range a.Sack {
				ack(i, now)
			}
			if len(a.Nack) > 0 {
				log.Debug("chunks asked for again", "transfer", m.ID, "nack", a.Nack, "next", a.Next)
			}
			for _, i := range a.Nack {
				if i >= 0 && i < m.Chunks && !acked.Has(i) && !queued[i] {
					delete(flight, i)
					resend = append(resend, i)
					queued[i] = true
				}
			}
			if a.Done {
				res.Confirmed = true
				return res, nil
			}
			if a.Next > cursor {
				cursor = min(a.Next, m.Chunks)
			}
		case <-timer.C():
			now := o.Clock.Now()
			if !allAckedAt.IsZero() && !now.Before(allAckedAt.Add(o.ConfirmWait)) {
				return res, nil // every chunk acknowledged; no confirmation
			}
			if !now.Before(lastHeard.Add(o.Idle)) {
				return res, ErrIdle
			}
			expired := false
			for i, f := range flight {
				if !now.Before(f.sentAt.Add(rto)) {
					delete(flight, i)
					if !queued[i] {
						resend = append(resend, i)
						queued[i] = true
					}
					expired = true
				}
			}
			if expired {
				rto = min(rto*2, o.MaxRTO)
				log.Debug("retransmission timeout", "transfer", m.ID, "rto", rto)
			}
		}
	}
}

type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }
