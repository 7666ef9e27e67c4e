package agent

import (
	"sync"
	"time"
)

// healthTracker decides whether the agent is healthy from its components'
// statuses over time: a component is failing from the moment it is seen
// restarting (or its restart count grew) until it has run again for
// recovered; the agent is unhealthy while one has been failing for
// failingFor or more. Crash-looping components, running briefly between
// backoffs, stay failing. What watches the agent from outside (systemd's
// watchdog, the board's watchdog) stops being told it is alive then, and
// restarts it: a fresh process is the next remedy when the supervisor's
// own restarts have not helped.
type healthTracker struct {
	failingFor, recovered time.Duration
	tracks                map[string]*componentTrack
}

type componentTrack struct {
	restarts     int
	failingSince time.Time // zero while not failing
}

// Defaults of healthTracker: ten minutes is at least eight attempts at the
// supervisor's longest backoff (a minute); a minute is its StableAfter.
const (
	defaultFailingFor = 10 * time.Minute
	defaultRecovered  = time.Minute
)

func newHealthTracker(failingFor, recovered time.Duration) *healthTracker {
	if failingFor <= 0 {
		failingFor = defaultFailingFor
	}
	if recovered <= 0 {
		recovered = defaultRecovered
	}
	return &healthTracker{failingFor: failingFor, recovered: recovered, tracks: map[string]*componentTrack{}}
}

// update takes the statuses at now and returns the names of the
// components failing for too long (none: healthy).
func (h *healthTracker) update(sts []Status, now time.Time) []string {
	var unhealthy []string
	for _, st := range sts {
		tr := h.tracks[st.Name]
		if tr == nil {
			tr = &componentTrack{restarts: st.Restarts}
			h.tracks[st.Name] = tr
		}
		switch {
		case st.State == StateRestarting || st.Restarts > tr.restarts:
			if tr.failingSince.IsZero() {
				tr.failingSince = now
			}
		case st.State == StateRunning && now.Sub(st.Since) >= h.recovered:
			tr.failingSince = time.Time{}
		}
		tr.restarts = st.Restarts
		if !tr.failingSince.IsZero() && now.Sub(tr.failingSince) >= h.failingFor {
			unhealthy = append(unhealthy, st.Name)
		}
	}
	return unhealthy
}

// lockedHealth is a healthTracker shared by goroutines.
type lockedHealth struct {
	mu sync.Mutex
	t  *healthTracker
}
