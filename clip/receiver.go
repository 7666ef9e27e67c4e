package clip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
)

// ReceiveOptions tunes Receive. Zero fields take the defaults noted.
type ReceiveOptions struct {
	Clock clock.Clock // default clock.Real
	// Stall is how long without a chunk before the receiver repeats its
	// acknowledgement, in case it was lost (default 5 s).
	Stall time.Duration
	// Timeout ends the transfer when no chunk has arrived for this long
	// (default 1 min); the part is kept for a resume.
	Timeout time.Duration
	// Progress is called after every chunk with bytes received and total.
	Progress func(received, total int64)
}

// ReceiveStats reports a finished receive.
type ReceiveStats struct {
	Chunks     int // chunk messages received
	Duplicates int // chunks that were already there
	Corrupt    int // chunks that failed their CRC and were asked for again
}

// ErrTimeout is returned when the unit stopped sending.
var ErrTimeout = errors.New("clip: the unit stopped sending; run the same pull again to resume")

// Receive takes chunk frames from chunks into p until the file is complete
// and verified (it is then renamed into place and Done is acknowledged),
// ctx ends, or the unit stops sending. ack publishes an acknowledgement.
func Receive(ctx context.Context, log *slog.Logger, p *Part, chunks <-chan []byte, ack func(context.Context, Ack) error, o ReceiveOptions) (ReceiveStats, error) {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Stall == 0 {
		o.Stall = 5 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	var st ReceiveStats
	m := p.m
	nacked := map[int]time.Time{}
	highest := -1
	lastChunk := o.Clock.Now()
	lastSync := lastChunk

	sendAck := func(extraNack []int) {
		now := o.Clock.Now()
		a := Ack{Next: p.have.Prefix()}
		for i := a.Next + 1; i <= highest && len(a.Sack) < 64; i++ {
			if p.have.Has(i) {
				a.Sack = append(a.Sack, i)
			}
		}
		// A gap two or more below the highest chunk seen is a loss (chunks
		// of one transfer travel in order; the margin forgives a client
		// that reorders neighbours); ask for it again, at most once a
		// second per chunk.
		for i := a.Next; i < highest-1 && len(a.Nack) < 64; i++ {
			if !p.have.Has(i) && now.Sub(nacked[i]) > time.Second {
				a.Nack = append(a.Nack, i)
				nacked[i] = now
			}
		}
		a.Nack = append(a.Nack, extraNack...)
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := ack(actx, a); err != nil {
			log.Debug("acknowledgement not sent", "err", err)
		}
	}
	finish := func() error {
		if err := p.Finish(); err != nil {
			return err
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := ack(actx, Ack{Next: m.Chunks, Done: true}); err != nil {
			log.Warn("file verified but the unit was not told; its copy is released when the transfer expires", "err", err)
		}
		return nil
	}
	if p.Complete() {
		return st, finish()
	}
	sendAck(nil) // tells a resumed sender where we are

	timer := o.Clock.NewTimer(o.Stall)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			p.Sync()
			return st, ctx.Err()
		case b := <-chunks:
			now := o.Clock.Now()
			lastChunk = now
			st.Chunks++
			i, n, data, err := DecodeChunk(b)
			if errors.Is(err, ErrChunkCorrupt) && n == m.Chunks {
				st.Corrupt++
				log.Warn("chunk failed its CRC; asking for it again", "chunk", i)
				sendAck([]int{i})
				continue
			}
			if err != nil || n != m.Chunks {
				log.Warn("ignoring a message that is not a chunk of this transfer", "err", err)
				continue
			}
			if p.have.Has(i) {
				st.Duplicates++
			} else if err := p.Write(i, data); err != nil {
				p.Sync()
				return st, err
			}
			highest = max(highest, i)
			if o.Progress != nil {
				o.Progress(p.received, m.Size)
			}
			if p.Complete() {
				return st, finish()
			}
			if now.Sub(lastSync) > time.Second {
				p.Sync()
				lastSync = now
			}
			sendAck(nil)
			if !timer.Stop() {
				select {
				case <-timer.C():
				default:
				}
			}
			timer.Reset(o.Stall)
		case <-timer.C():
			if o.Clock.Now().Sub(lastChunk) >= o.Timeout {
				p.Sync()
				return st, fmt.Errorf("%w (%d of %d chunks received)", ErrTimeout, p.have.Count(), m.Chunks)
			}
			sendAck(nil)
			timer.Reset(o.Stall)
		}
	}
}
