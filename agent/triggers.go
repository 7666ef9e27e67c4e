package agent

import (
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
)

// triggers decides, from the motion detector and the PIR sensor, what
// starts an event (motion.trigger): motion alone, the PIR alone, either,
// or motion confirmed by the PIR within a window — the PIR's body heat
// rules out shadows, rain and headlights, the camera's picture rules out a
// warm gust or a cat next to the sensor.
type triggers struct {
	mode   string
	window time.Duration
	record func(kind string, at time.Time)

	mu      sync.Mutex
	lastPIR time.Time
	// pending is a motion start awaiting the PIR (motion_and_pir), and
	// confirmed the start of the motion event that counted last.
	pending, confirmed time.Time
	// onConfirm tells the motion side that a pending start now counts.
	onConfirm func(start time.Time)
}

func newTriggers(m config.Motion, record func(string, time.Time)) *triggers {
	return &triggers{mode: m.Trigger, window: m.PIRWindow.D(), record: record}
}

// detects reports whether the motion detector is needed at all.
func (tr *triggers) detects() bool { return tr.mode != config.TriggerPIR }

// motionStart takes the start of a motion event and reports whether it
// counts now (it is recorded and told).
func (tr *triggers) motionStart(at time.Time) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	switch tr.mode {
	case config.TriggerMotion, config.TriggerMotionOrPIR:
	case config.TriggerMotionAndPIR:
		if tr.lastPIR.IsZero() || at.Sub(tr.lastPIR) > tr.window || tr.lastPIR.Sub(at) > tr.window {
			tr.pending = at
			return false
		}
	default:
		return false
	}
	tr.confirmed = at
	tr.record(KindMotion, at)
	return true
}

// motionCounted reports whether the motion event that started at start
// counted (for its end).
func (tr *triggers) motionCounted(start time.Time) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.confirmed.Equal(start)
}

// pirActive takes a PIR detection and reports whether it counts as an
// event of its own.
func (tr *triggers) pirActive(at time.Time) bool {
	tr.mu.Lock()
	tr.lastPIR = at
	var confirm func(time.Time)
	var start time.Time
	counts := false
	switch tr.mode {
	case config.TriggerPIR, config.TriggerMotionOrPIR:
		counts = true
	case config.TriggerMotionAndPIR:
		if !tr.pending.IsZero() && at.Sub(tr.pending) <= tr.window {
			start, confirm = tr.pending, tr.onConfirm
			tr.confirmed, tr.pending = tr.pending, time.Time{}
		}
	}
	tr.mu.Unlock()
	if counts {
		tr.record(KindPIR, at)
	}
	if confirm != nil {
		tr.record(KindMotion, start)
		confirm(start)
	}
	return counts
}
