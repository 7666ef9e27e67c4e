package agent

import (
	"context"
	"errors"
	"time"

	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// EventsArgs are the arguments of the events.list command.
type EventsArgs struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to,omitzero"` // default: now
	Limit int       `json:"limit,omitempty"`
}

// EventsResult answers events.list.
type EventsResult struct {
	Events []footage.Event `json:"events"`
	// Truncated: more events matched than Limit; ask again from the last
	// one's time.
	Truncated bool `json:"truncated"`
}

const maxEventsListed = 1000

var errEnough = errors.New("enough events")

// TriggerArgs are the arguments of the trigger command.
type TriggerArgs struct {
	Kind string `json:"kind,omitempty"` // default "manual"
}

// handleEvents registers trigger, a manual trigger from the control room
// (in events mode it records the pre-roll and post-roll around now), and
// events.list: the trigger events (motion, PIR,
// manual) recorded in the footage store in a range.
func handleEvents(session *uplink.Session, rec *footage.Recorder, now func() time.Time) {
	session.Handle("trigger", func(ctx context.Context, req uplink.Request) (any, error) {
		var a TriggerArgs
		if err := req.DecodeArgs(&a); err != nil {
			return nil, err
		}
		if a.Kind == "" {
			a.Kind = "manual"
		}
		if len(a.Kind) > 32 {
			return nil, uplink.CommandError{Code: wire.CodeBadRequest, Message: "kind is longer than 32 characters"}
		}
		at := now()
		rec.Trigger(a.Kind, at)
		return map[string]any{"kind": a.Kind, "at": at.UTC()}, nil
	})
	session.Handle("events.list", func(ctx context.Context, req uplink.Request) (any, error) {
		var a EventsArgs
		if err := req.DecodeArgs(&a); err != nil {
			return nil, err
		}
		if a.To.IsZero() {
			a.To = now()
		}
		if a.From.IsZero() || !a.To.After(a.From) {
			return nil, uplink.CommandError{Code: wire.CodeBadRequest, Message: "events.list needs from before to"}
		}
		if a.Limit <= 0 || a.Limit > maxEventsListed {
			a.Limit = maxEventsListed
		}
		st := rec.Store()
		if st == nil {
			return nil, uplink.CommandError{Code: wire.CodeUnavailable, Message: "the footage store is not open (see the unit's health: recorder)"}
		}
		res := EventsResult{Events: []footage.Event{}}
		err := st.Events(ctx, a.From, a.To, func(e footage.Event) error {
			if len(res.Events) == a.Limit {
				res.Truncated = true
				return errEnough
			}
			res.Events = append(res.Events, e)
			return nil
		})
		if err != nil && !errors.Is(err, errEnough) {
			return nil, err
		}
		return res, nil
	})
}
