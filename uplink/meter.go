package uplink

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/internal/atomicfile"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// The data meter counts what the link costs: the bytes read and written on
// the network connection below TLS (so MQTT framing, keep-alives and TLS
// records and handshakes are all in), plus an estimate of the TCP/IP
// headers the operator also bills: 40 bytes per segment of up to 1400
// bytes each way, and one 40-byte acknowledgement per two segments
// received. A new connection adds its TCP handshake (3 packets).
const (
	ipHeaderBytes = 40
	segmentBytes  = 1400
)

// Budget thresholds of the data policy, in percent of the monthly budget.
const (
	savingPct    = 80
	exhaustedPct = 100
)

// usageFile is the persisted form of the meter (usage.json).
type usageFile struct {
	V int `json:"v"`
	// Month is "2006-01" and Day "2006-01-02", both UTC: the counters
	// below belong to them.
	Month     string `json:"month"`
	Day       string `json:"day"`
	UpMonth   int64  `json:"up_month_bytes"`
	DownMonth int64  `json:"down_month_bytes"`
	UpDay     int64  `json:"up_day_bytes"`
	DownDay   int64  `json:"down_day_bytes"`
	// Alerted is the highest policy already announced this month.
	Alerted wire.DataPolicy `json:"alerted,omitempty"`
}

// Usage is the data used today and this month, UTC.
type Usage struct {
	UpToday, DownToday int64
	UpMonth, DownMonth int64
	// Budget is the monthly allowance (0: none), UsedPct the share of it
	// used this month, and Policy what that allows.
	Budget  int64
	UsedPct float64
	Policy  wire.DataPolicy
}

// meter counts data use per day and month and persists it now and then; a
// power cut loses at most the use since the last save (10 minutes).
type meter struct {
	path   string
	budget int64

	mu sync.Mutex
	u  usageFile
}

func newMeter(path string, budget int64) *meter {
	return &meter{path: path, budget: budget, u: usageFile{V: 1}}
}

// roll starts a new day or month when now has left the current ones. m.mu
// is held.
func (m *meter) roll(now time.Time) {
	now = now.UTC()
	month, day := now.Format("2006-01"), now.Format("2006-01-02")
	if m.u.Month != month {
		m.u = usageFile{V: 1, Month: month, Day: day}
		return
	}
	if m.u.Day != day {
		m.u.Day, m.u.UpDay, m.u.DownDay = day, 0, 0
	}
}

func segments(n int) int64 { return int64((n + segmentBytes - 1) / segmentBytes) }

func (m *meter) add(now time.Time, up, down int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roll(now)
	m.u.UpMonth += up
	m.u.UpDay += up
	m.u.DownMonth += down
	m.u.DownDay += down
}

// addUp counts n bytes written, with their headers and the peer's
// acknowledgements.
func (m *meter) addUp(now time.Time, n int) {
	s := segments(n)
	m.add(now, int64(n)+s*ipHeaderBytes, (s+1)/2*ipHeaderBytes)
}

// addDown counts n bytes read, likewise.
func (m *meter) addDown(now time.Time, n int) {
	s := segments(n)
	m.add(now, (s+1)/2*ipHeaderBytes, int64(n)+s*ipHeaderBytes)
}

// addHandshake counts a TCP connection's opening: SYN and ACK up, SYN-ACK
// down.
func (m *meter) addHandshake(now time.Time) { m.add(now, 2*60, 60) }

func (m *meter) usage(now time.Time) Usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roll(now)
	u := Usage{UpToday: m.u.UpDay, DownToday: m.u.DownDay, UpMonth: m.u.UpMonth, DownMonth: m.u.DownMonth, Budget: m.budget, Policy: wire.PolicyNormal}
	if m.budget > 0 {
		u.UsedPct = float64(u.UpMonth+u.DownMonth) * 100 / float64(m.budget)
		u.Policy = policyFor(u.UsedPct)
	}
	return u
}

func policyFor(usedPct float64) wire.DataPolicy {
	switch {
	case usedPct >= exhaustedPct:
		return wire.PolicyExhausted
	case usedPct >= savingPct:
		return wire.PolicySaving
	}
	return wire.PolicyNormal
}

func (m *meter) policy(now time.Time) wire.DataPolicy { return m.usage(now).Policy }

// crossed reports a policy threshold crossed this month and not yet
// announced, once.
func (m *meter) crossed(now time.Time) (wire.DataPolicy, float64, bool) {
	u := m.usage(now)
	m.mu.Lock()
	defer m.mu.Unlock()
	if u.Policy == wire.PolicyNormal || rank(u.Policy) <= rank(m.u.Alerted) {
		return "", 0, false
	}
	m.u.Alerted = u.Policy
	return u.Policy, u.UsedPct, true
}

func rank(p wire.DataPolicy) int {
	switch p {
	case wire.PolicySaving:
		return 1
	case wire.PolicyExhausted:
		return 2
	}
	return 0
}

// load restores the counters; a missing file is a fresh start.
func (m *meter) load(now time.Time) error {
	if m.path == "" {
		return nil
	}
	b, err := os.ReadFile(m.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("uplink: data usage: %w", err)
	}
	var u usageFile
	if err := json.Unmarshal(b, &u); err != nil || u.V != 1 {
		return fmt.Errorf("uplink: data usage %s is unreadable (%v); it restarts from zero", m.path, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.u = u
	m.roll(now)
	return nil
}

// save writes the counters atomically.
func (m *meter) save(now time.Time) error {
	if m.path == "" {
		return nil
	}
	m.mu.Lock()
	m.roll(now)
	b := mustJSON(m.u)
	m.mu.Unlock()
	return writeFileAtomic(m.path, b)
}

// writeFileAtomic replaces path by b: a power cut leaves the old file or
// the new one.
func writeFileAtomic(path string, b []byte) error {
	if err := atomicfile.Write(path, b, 0o640); err != nil {
		return fmt.Errorf("uplink: %w", err)
	}
	return nil
}
