package wire

import (
	"fmt"
	"strings"
	"time"
)

// Version is the schema version of the payloads in this package.
const Version = 1

// Telemetry stream names, the last level of telemetry/<stream>.
const (
	StreamPower   = "power"
	StreamSignal  = "signal"
	StreamStorage = "storage"
	StreamSystem  = "system"
	StreamLink    = "link"
)

// Topics builds topic names for one unit under a prefix ("outpost"). Other
// packages add their own sub-topics with Join (clip transfers use
// Join("xfer", id, "chunk"), for example) and document them in
// docs/protocol.md.
type Topics struct {
	Prefix string
	Unit   string
}

// Base is "<prefix>/<unit>/", the start of every topic of the unit.
func (t Topics) Base() string { return t.Prefix + "/" + t.Unit + "/" }

// Join builds "<prefix>/<unit>/<level>/<level>...". Levels must not be
// empty nor contain '/', '+' or '#'; callers pass names they control.
func (t Topics) Join(levels ...string) string { return t.Base() + strings.Join(levels, "/") }

// Status is the retained online/offline topic; the broker's last will sets
// it offline when the unit vanishes.
func (t Topics) Status() string { return t.Base() + "status" }

// Telemetry is the topic of one telemetry stream (StreamPower, ...).
func (t Topics) Telemetry(stream string) string { return t.Base() + "telemetry/" + stream }

// Health is the retained topic of the unit's current faults and components.
func (t Topics) Health() string { return t.Base() + "health" }

// Events is the topic of motion, fault, link and other events.
func (t Topics) Events() string { return t.Base() + "events" }

// Cmd is the topic a command of the given name is sent to.
func (t Topics) Cmd(name string) string { return t.Base() + "cmd/" + name }

// CmdFilter is the filter the unit subscribes to for every command.
func (t Topics) CmdFilter() string { return t.Base() + "cmd/+" }

// Reply is the topic the reply to a request is published on.
func (t Topics) Reply(requestID string) string { return t.Base() + "reply/" + requestID }

// ConfigDesired is the retained topic the control room publishes the
// configuration it wants the unit to run to.
func (t Topics) ConfigDesired() string { return t.Base() + "config/desired" }

// ConfigReported is the retained topic of the configuration the unit runs.
func (t Topics) ConfigReported() string { return t.Base() + "config/reported" }

// SplitTopic splits "prefix/unit/rest..." into its unit id and the rest.
func SplitTopic(prefix, topic string) (unit, rest string, err error) {
	p, ok := strings.CutPrefix(topic, prefix+"/")
	if !ok {
		return "", "", fmt.Errorf("wire: topic %q is not under %q", topic, prefix)
	}
	unit, rest, ok = strings.Cut(p, "/")
	if !ok || unit == "" || rest == "" {
		return "", "", fmt.Errorf("wire: topic %q has no unit id and sub-topic", topic)
	}
	return unit, rest, nil
}

// Header is the part common to every payload.
type Header struct {
	V  int       `json:"v"`
	TS time.Time `json:"ts"`
}

// NewHeader stamps a payload with the schema version and t in UTC, to the
// millisecond.
func NewHeader(t time.Time) Header { return Header{V: Version, TS: t.UTC().Truncate(time.Millisecond)} }

// NewSampleHeader stamps a telemetry sample with the schema version and t
// in UTC to the second: a finer time is of no use for a reading taken every
// minute, and costs bytes on every message.
func NewSampleHeader(t time.Time) Header {
	return Header{V: Version, TS: t.UTC().Truncate(time.Second)}
}

// Status states.
const (
	Online  = "online"
	Offline = "offline"
)

// Status is the retained payload of the status topic.
type Status struct {
	Header
	State   string    `json:"state"` // online or offline
	Version string    `json:"version,omitempty"`
	Boot    time.Time `json:"boot,omitzero"`
	Site    string    `json:"site,omitempty"`
	Purpose string    `json:"purpose,omitempty"`
	DPIARef string    `json:"dpia_ref,omitempty"`
	// ConfigVersion identifies the configuration the unit runs (the hash
	// in config/reported).
	ConfigVersion string `json:"config_version,omitempty"`
	// Operator is the cellular network the unit is attached to, and IP the
	// unit's address on it (behind carrier NAT usually a private one).
	Operator string `json:"operator,omitempty"`
	IP       string `json:"ip,omitempty"`
	// Reason says why a unit went offline: "shutdown" for an orderly stop,
	// "lost" when the broker published the last will.
	Reason string `json:"reason,omitempty"`
}

// Power is the payload of telemetry/power.
type Power struct {
	Header
	BatteryV     *float64 `json:"battery_v"`
	BatteryA     *float64 `json:"battery_a"`
	SOCPct       *float64 `json:"soc_pct"`
	PanelV       *float64 `json:"panel_v"`
	PanelW       *float64 `json:"panel_w"`
	LoadW        *float64 `json:"load_w"`
	ChargeState  string   `json:"charge_state,omitempty"`
	YieldTodayWh *float64 `json:"yield_today_wh"`
}

// Signal is the payload of telemetry/signal.
type Signal struct {
	Header
	Registered bool     `json:"registered"`
	Operator   string   `json:"operator,omitempty"`
	Tech       string   `json:"tech,omitempty"`
	RSRPdBm    *float64 `json:"rsrp_dbm"`
	RSRQdB     *float64 `json:"rsrq_db"`
	SINRdB     *float64 `json:"sinr_db"`
	// RSSIdBm is the received signal strength (the LTE RSSI, or +CSQ's
	// on a modem that gives nothing better).
	RSSIdBm *float64 `json:"rssi_dbm"`
	// CellID (hexadecimal) and Band identify the serving cell.
	CellID  string `json:"cell_id,omitempty"`
	Band    int    `json:"band,omitempty"`
	Quality string `json:"quality"`
}

// Storage is the payload of telemetry/storage: the footage store's disk.
// Every field is null until the store reports.
type Storage struct {
	Header
	DiskTotalBytes *int64 `json:"disk_total_bytes"`
	DiskFreeBytes  *int64 `json:"disk_free_bytes"`
	FootageBytes   *int64 `json:"footage_bytes"`
	HeldBytes      *int64 `json:"held_bytes"`
	// OldestFootage is the time of the oldest frame kept, and FootageDays
	// the span from it to ts: how many days of footage the unit holds.
	OldestFootage *time.Time `json:"oldest_footage"`
	FootageDays   *float64   `json:"footage_days"`
	// ProjectedRetentionDays is how many days of footage the disk holds at
	// the current write rate (capped at retention.max_age).
	ProjectedRetentionDays *float64 `json:"projected_retention_days"`
	// RetentionDays is the retention in force (retention.max_age): footage
	// older than that is deleted, unless under an evidence hold.
	RetentionDays *float64 `json:"retention_days"`
}

// System is the payload of telemetry/system: the board itself.
type System struct {
	Header
	CPUTempC          *float64 `json:"cpu_temp_c"`
	Load1             *float64 `json:"load_1m"`
	Load5             *float64 `json:"load_5m"`
	Load15            *float64 `json:"load_15m"`
	MemTotalBytes     *int64   `json:"mem_total_bytes"`
	MemAvailableBytes *int64   `json:"mem_available_bytes"`
	UptimeS           *int64   `json:"uptime_s"`
	AgentUptimeS      int64    `json:"agent_uptime_s"`
}

// DataPolicy is what the unit allows itself to send, from its use of the
// monthly data budget. The values are stable strings.
type DataPolicy string

// Data policies.
const (
	// PolicyNormal: below 80 % of the budget (or no budget).
	PolicyNormal DataPolicy = "normal"
	// PolicySaving: 80 % used. Telemetry intervals are four times longer
	// (up to each stream's max interval), no thumbnails are sent, and
	// clips only on an explicit request.
	PolicySaving DataPolicy = "saving"
	// PolicyExhausted: the budget is used up. Telemetry only at each
	// stream's max interval; alerts, events, replies and explicitly
	// requested clips still go.
	PolicyExhausted DataPolicy = "exhausted"
)

// Thumbnails reports whether the policy lets the unit send event
// thumbnails unasked.
func (p DataPolicy) Thumbnails() bool { return p == PolicyNormal || p == "" }

// AutoClips reports whether the policy lets the unit send clips that were
// not explicitly requested.
func (p DataPolicy) AutoClips() bool { return p == PolicyNormal || p == "" }

// Link is the payload of telemetry/link: the uplink itself, its data use
// against the monthly budget and the offline outbox.
type Link struct {
	Header
	Connected     bool   `json:"connected"`
	Reconnects    uint64 `json:"reconnects"`
	WatchdogTrips uint64 `json:"watchdog_trips"`
	// Data used today and this calendar month (UTC): bytes on the wire,
	// MQTT and TLS included, with an estimate of TCP/IP headers.
	DataUpTodayBytes   int64 `json:"data_up_today_bytes"`
	DataDownTodayBytes int64 `json:"data_down_today_bytes"`
	DataUpMonthBytes   int64 `json:"data_up_month_bytes"`
	DataDownMonthBytes int64 `json:"data_down_month_bytes"`
	// DataBudgetBytes is the monthly allowance, null when none is set.
	DataBudgetBytes   *int64     `json:"data_budget_bytes"`
	DataBudgetUsedPct *float64   `json:"data_budget_used_pct"`
	DataPolicy        DataPolicy `json:"data_policy"`
	// The outbox: messages waiting for the link, and those dropped for
	// lack of room since the outbox was created, by class.
	OutboxQueued           int    `json:"outbox_queued"`
	OutboxQueuedBytes      int64  `json:"outbox_queued_bytes"`
	OutboxDroppedAlert     uint64 `json:"outbox_dropped_alert"`
	OutboxDroppedEvent     uint64 `json:"outbox_dropped_event"`
	OutboxDroppedTelemetry uint64 `json:"outbox_dropped_telemetry"`
	// OutboxError is set while the outbox cannot be written (a full or
	// failing card); messages then go out live only.
	OutboxError string `json:"outbox_error,omitempty"`
}

// Health is the retained payload of the health topic.
type Health struct {
	Header
	Components []ComponentHealth `json:"components"`
	// PowerMode is the power policy's mode: normal, eco, critical or
	// shutdown (absent from agents without a policy).
	PowerMode string `json:"power_mode,omitempty"`
	// Faults are the unit's active faults, worst first.
	Faults []Fault `json:"faults"`
}

// Fault severities, worst first.
const (
	FaultCritical = "critical" // the unit cannot do its job: footage or contact is being lost
	FaultWarning  = "warning"  // it works, degraded, or will fail if nothing is done
)

// Fault is an active fault of a unit, in its health.
type Fault struct {
	// Kind is a stable identifier (camera_frozen, battery_low, ...);
	// docs/protocol.md lists them.
	Kind     string    `json:"kind"`
	Severity string    `json:"severity"`
	Since    time.Time `json:"since"`
	// Message says what is wrong, in plain words, with the figures;
	// Action what to do about it.
	Message string         `json:"message"`
	Action  string         `json:"action"`
	Data    map[string]any `json:"data,omitempty"`
}

// ComponentHealth is one supervised component's state.
type ComponentHealth struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	Restarts  int       `json:"restarts"`
	LastError string    `json:"last_error,omitempty"`
}
