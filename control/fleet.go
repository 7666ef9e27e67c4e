package control

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/outpost-cctv/outpost/uplink/wire"
)

// UnitView is what the broker's retained messages say about one unit.
type UnitView struct {
	ID     string       `json:"id"`
	Status *wire.Status `json:"status,omitempty"`
	Power  *wire.Power  `json:"power,omitempty"`
	Signal *wire.Signal `json:"signal,omitempty"`
	Health *wire.Health `json:"health,omitempty"`
	// Storage is the unit's telemetry/storage payload, kept as sent.
	Storage map[string]any `json:"storage,omitempty"`
	// Faults is the number of open faults the unit reports.
	Faults int `json:"faults"`
}

// Online reports whether the unit's retained status says online.
func (u UnitView) Online() bool { return u.Status != nil && u.Status.State == wire.Online }

// Fleet reads the retained messages of every unit under the prefix. It
// returns once no new topic has arrived for a moment (retained messages
// arrive in a burst after subscribing) or ctx ends.
func (c *Client) Fleet(ctx context.Context) ([]UnitView, error) {
	units := map[string]*UnitView{}
	sub, unsub, err := c.subscribe(ctx, c.prefix+"/#", 4096)
	if err != nil {
		return nil, err
	}
	defer unsub()
	quiet := 400 * time.Millisecond
	seen := map[string]bool{}
	t := time.NewTimer(1500 * time.Millisecond) // first message may take a round trip
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return sorted(units), ctx.Err()
		case <-t.C:
			return sorted(units), nil
		case m := <-sub.ch:
			c.apply(units, m)
			// Only a topic not seen yet extends the wait: the broker sends
			// every retained message at once after the subscription, while
			// a busy fleet's live telemetry, repeating topics already
			// seen, would otherwise never let the burst end.
			if seen[m.topic] {
				continue
			}
			seen[m.topic] = true
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
			t.Reset(quiet)
		}
	}
}

// Event is one message from a watched unit.
type Event struct {
	Unit    string
	Topic   string // under the unit: "status", "telemetry/power", "events", ...
	Payload json.RawMessage
}

// Watch delivers every message of one unit (or every unit, for "+") as it
// arrives until ctx ends.
func (c *Client) Watch(ctx context.Context, unit string, fn func(Event)) error {
	sub, unsub, err := c.subscribe(ctx, c.prefix+"/"+unit+"/#", 1024)
	if err != nil {
		return err
	}
	defer unsub()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-sub.ch:
			u, rest, err := wire.SplitTopic(c.prefix, m.topic)
			if err != nil || strings.HasPrefix(rest, "xfer/") || strings.HasPrefix(rest, "reply/") || strings.HasPrefix(rest, "cmd/") {
				continue
			}
			fn(Event{Unit: u, Topic: rest, Payload: m.payload})
		}
	}
}

func (c *Client) apply(units map[string]*UnitView, m message) {
	id, rest, err := wire.SplitTopic(c.prefix, m.topic)
	if err != nil {
		return
	}
	u := units[id]
	if u == nil {
		u = &UnitView{ID: id}
	}
	known := true
	switch rest {
	case "status":
		var v wire.Status
		known = json.Unmarshal(m.payload, &v) == nil
		u.Status = &v
	case "telemetry/power":
		var v wire.Power
		known = json.Unmarshal(m.payload, &v) == nil
		u.Power = &v
	case "telemetry/signal":
		var v wire.Signal
		known = json.Unmarshal(m.payload, &v) == nil
		u.Signal = &v
	case "telemetry/storage":
		known = json.Unmarshal(m.payload, &u.Storage) == nil
	case "health":
		var v wire.Health
		known = json.Unmarshal(m.payload, &v) == nil
		u.Health = &v
		u.Faults = countFaults(m.payload)
	default:
		known = false
	}
	if known {
		units[id] = u
	}
}

// countFaults counts open faults in a health payload: entries of a
// "faults" list when the unit sends one, else components not running.
func countFaults(p []byte) int {
	var h struct {
		Faults     []json.RawMessage `json:"faults"`
		Components []struct {
			State string `json:"state"`
		} `json:"components"`
	}
	if json.Unmarshal(p, &h) != nil {
		return 0
	}
	if h.Faults != nil {
		return len(h.Faults)
	}
	n := 0
	for _, c := range h.Components {
		if c.State != "running" && c.State != "stopped" {
			n++
		}
	}
	return n
}

func sorted(m map[string]*UnitView) []UnitView {
	out := make([]UnitView, 0, len(m))
	for _, u := range m {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
