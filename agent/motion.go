package agent

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/footage/motion"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// KindMotion is the kind of motion events, on the events topic and in the
// footage store.
const KindMotion = "motion"

// newMotion is motion detection on the capture path, as cfg sets it:
// at the start of motion that counts (tr: motion.trigger) it triggers the
// recorder (so events mode keeps the pre- and post-roll) and publishes a
// motion event; at the end it publishes the event's end, score, box and a
// small thumbnail (left out when the data budget or thumbs says so).
func newMotion(log *slog.Logger, clk clock.Clock, session *uplink.Session, topics wire.Topics, cfg config.Motion, tr *triggers, thumbs func() bool) (*motion.Sink, error) {
	mc := motion.DefaultConfig()
	mc.Threshold, mc.MinArea, mc.Every = cfg.Threshold, cfg.MinArea, cfg.Every
	for _, z := range cfg.Zones {
		mc.Zones = append(mc.Zones, polygon(z))
	}
	for _, z := range cfg.Ignore {
		mc.Ignore = append(mc.Ignore, polygon(z))
	}
	send := func(ev wire.Event) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := session.SendJSON(ctx, uplink.PriorityEvent, topics.Events(), ev); err != nil {
			log.Warn("motion event not queued", "err", err)
		}
	}
	started := func(start time.Time) {
		ev := wire.NewEvent(start, KindMotion, wire.SeverityInfo, "motion started")
		ev.Data = map[string]any{"start": start.UTC()}
		send(ev)
	}
	tr.onConfirm = started // motion_and_pir: the PIR confirmed it after its start
	return motion.NewSink(log, clk, mc, func(e motion.Event) {
		if e.Update {
			if tr.motionCounted(e.Start) {
				ev := wire.NewEvent(clk.Now(), KindMotion, wire.SeverityInfo,
					fmt.Sprintf("motion going on for %s", clk.Now().Sub(e.Start).Round(time.Second)))
				ev.Data = map[string]any{"start": e.Start.UTC(), "update": true, "score": round2(e.Score),
					"box": []float64{round2(e.Box.X0), round2(e.Box.Y0), round2(e.Box.X1), round2(e.Box.Y1)}}
				send(ev)
			}
			return
		}
		if !e.Ended() {
			if tr.motionStart(e.Start) {
				started(e.Start)
			} else {
				log.Debug("motion not confirmed by the PIR sensor (yet)", "start", e.Start)
			}
			return
		}
		if !tr.motionCounted(e.Start) {
			log.Debug("motion ended without the PIR sensor's confirmation: not an event", "start", e.Start, "end", e.End)
			return
		}
		ev := wire.NewEvent(e.End, KindMotion, wire.SeverityInfo,
			fmt.Sprintf("motion for %s", e.End.Sub(e.Start).Round(100*time.Millisecond)))
		ev.Data = map[string]any{"start": e.Start.UTC(), "end": e.End.UTC(), "score": round2(e.Score),
			"box": []float64{round2(e.Box.X0), round2(e.Box.Y0), round2(e.Box.X1), round2(e.Box.Y1)}}
		if z := zoneOf(e.Box, mc.Zones); z >= 0 {
			ev.Data["zone"] = z
		}
		if session.DataPolicy().Thumbnails() && thumbs() && e.Peak != nil {
			if jpg, err := motion.Thumbnail(e.Peak, 0, 0); err == nil {
				ev.Data["thumbnail_jpeg"] = base64.StdEncoding.EncodeToString(jpg)
			}
		}
		send(ev)
	})
}

// zoneOf returns the index of the first detection zone holding the centre
// of box, -1 when there are no zones (or none holds it).
func zoneOf(box motion.Rect, zones []motion.Polygon) int {
	cx, cy := (box.X0+box.X1)/2, (box.Y0+box.Y1)/2
	for i, z := range zones {
		if z.Contains(cx, cy) {
			return i
		}
	}
	return -1
}

func polygon(z [][2]float64) motion.Polygon {
	p := make(motion.Polygon, len(z))
	for i, pt := range z {
		p[i] = motion.Point(pt)
	}
	return p
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
