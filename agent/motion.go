package agent

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"time"

	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/footage/motion"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// KindMotion is the kind of motion events, on the events topic and in the
// footage store.
const KindMotion = "motion"

// newMotion is motion detection on the capture path: at the start of
// motion it triggers the recorder (so events mode keeps the pre- and
// post-roll) and publishes a motion event with a small thumbnail (left
// out when the data budget says so); at the end it publishes the event's
// end and score.
// thumbs says whether thumbnails may be sent (not in the power policy's
// eco mode); the data budget's policy has its say too.
func newMotion(log *slog.Logger, clk clock.Clock, session *uplink.Session, topics wire.Topics, rec *footage.Recorder, thumbs func() bool) (*motion.Sink, error) {
	return motion.NewSink(log, clk, motion.DefaultConfig(), func(e motion.Event) {
		var ev wire.Event
		if !e.Ended() {
			rec.Trigger(KindMotion, e.Start)
			ev = wire.NewEvent(e.Start, KindMotion, wire.SeverityInfo, "motion started")
			ev.Data = map[string]any{"start": e.Start.UTC()}
		} else {
			ev = wire.NewEvent(e.End, KindMotion, wire.SeverityInfo,
				fmt.Sprintf("motion for %s", e.End.Sub(e.Start).Round(100*time.Millisecond)))
			ev.Data = map[string]any{"start": e.Start.UTC(), "end": e.End.UTC(), "score": round2(e.Score),
				"box": []float64{round2(e.Box.X0), round2(e.Box.Y0), round2(e.Box.X1), round2(e.Box.Y1)}}
			if session.DataPolicy().Thumbnails() && thumbs() && e.Peak != nil {
				if jpg, err := motion.Thumbnail(e.Peak, 0, 0); err == nil {
					ev.Data["thumbnail_jpeg"] = base64.StdEncoding.EncodeToString(jpg)
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := session.SendJSON(ctx, uplink.PriorityEvent, topics.Events(), ev); err != nil {
			log.Warn("motion event not queued", "err", err)
		}
	})
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
