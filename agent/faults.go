package agent

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// Event kinds of faults on the events topic.
const (
	KindFault        = "fault"
	KindFaultCleared = "fault_cleared"
)

// Faults holds a unit's active faults. Detectors raise and clear them; each
// change is published at once as an event (an alert for a critical fault)
// and the set goes into the retained health topic.
type Faults struct {
	clk  clock.Clock
	log  *slog.Logger
	send func(ctx context.Context, class uplink.Priority, e wire.Event)

	mu     sync.Mutex
	active map[string]wire.Fault
}

// NewFaults returns an empty fault set publishing through send (nil: not
// published, only kept).
func NewFaults(clk clock.Clock, log *slog.Logger, send func(context.Context, uplink.Priority, wire.Event)) *Faults {
	return &Faults{clk: clk, log: log.With("component", "faults"), send: send, active: map[string]wire.Fault{}}
}

// Raise makes kind active, or updates its message and figures (without a
// new event unless its severity changed).
func (f *Faults) Raise(kind, severity, message, action string, data map[string]any) {
	now := f.clk.Now().UTC().Truncate(time.Millisecond)
	f.mu.Lock()
	old, was := f.active[kind]
	nf := wire.Fault{Kind: kind, Severity: severity, Since: now, Message: message, Action: action, Data: data}
	if was {
		nf.Since = old.Since
	}
	f.active[kind] = nf
	f.mu.Unlock()
	if was && old.Severity == severity {
		return
	}
	f.log.Warn("fault raised", "kind", kind, "severity", severity, "message", message)
	ev := wire.NewEvent(now, KindFault, eventSeverity(severity), message)
	ev.Data = map[string]any{"fault": kind, "fault_severity": severity, "action": action}
	maps.Copy(ev.Data, data)
	class := uplink.PriorityEvent
	if severity == wire.FaultCritical {
		class = uplink.PriorityAlert
	}
	f.publish(class, ev)
}

// Clear ends kind, if active, saying why.
func (f *Faults) Clear(kind, message string) {
	f.mu.Lock()
	old, was := f.active[kind]
	delete(f.active, kind)
	f.mu.Unlock()
	if !was {
		return
	}
	now := f.clk.Now()
	f.log.Info("fault cleared", "kind", kind, "message", message, "lasted", now.Sub(old.Since).Round(time.Second))
	ev := wire.NewEvent(now, KindFaultCleared, wire.SeverityInfo, message)
	ev.Data = map[string]any{"fault": kind, "lasted_s": int64(now.Sub(old.Since) / time.Second)}
	f.publish(uplink.PriorityEvent, ev)
}

// Active reports whether kind is raised.
func (f *Faults) Active(kind string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.active[kind]
	return ok
}

// List returns the active faults, critical first, then oldest first.
func (f *Faults) List() []wire.Fault {
	f.mu.Lock()
	out := slices.Collect(maps.Values(f.active))
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b wire.Fault) int {
		if (a.Severity == wire.FaultCritical) != (b.Severity == wire.FaultCritical) {
			if a.Severity == wire.FaultCritical {
				return -1
			}
			return 1
		}
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return compareStrings(a.Kind, b.Kind)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (f *Faults) publish(class uplink.Priority, ev wire.Event) {
	if f.send == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f.send(ctx, class, ev)
}

func eventSeverity(faultSeverity string) string {
	if faultSeverity == wire.FaultCritical {
		return wire.SeverityAlert
	}
	return wire.SeverityWarning
}

// hold turns a condition seen at each check into a fault with hysteresis:
// raised once the condition has held for raiseAfter, cleared once it has
// been false for clearAfter, so a value wavering at a threshold does not
// flap.
type hold struct {
	raiseAfter, clearAfter time.Duration
	active                 bool
	since                  time.Time // when the condition last changed
	cond                   bool
	seen                   bool
}

// update takes the condition at now and returns the fault's state and
// whether it just changed.
func (h *hold) update(cond bool, now time.Time) (active, changed bool) {
	if !h.seen || cond != h.cond {
		h.cond, h.since, h.seen = cond, now, true
	}
	switch {
	case !h.active && cond && now.Sub(h.since) >= h.raiseAfter:
		h.active = true
		return true, true
	case h.active && !cond && now.Sub(h.since) >= h.clearAfter:
		h.active = false
		return false, true
	}
	return h.active, false
}

// apply raises or clears kind on fs as h says; msg and clearMsg are built
// only when needed.
func (h *hold) apply(fs *Faults, kind string, cond bool, now time.Time, raise func(), clearMsg string) {
	active, _ := h.update(cond, now)
	switch {
	case active:
		raise() // also refreshes the message and figures
	default:
		fs.Clear(kind, clearMsg)
	}
}

func days(d time.Duration) string { return fmt.Sprintf("%.0f", d.Hours()/24) }
