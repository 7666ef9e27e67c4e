// Package wire is the Outpost MQTT protocol: topic names and the JSON
// payloads exchanged between a unit and the control room. It is shared by
// the agent and the control-room client so both sides agree by
// construction; docs/protocol.md describes the same thing for other
// implementers and must be kept in step with this file.
//
// Every JSON payload carries "v", its schema version, and "ts", an RFC 3339
// UTC timestamp. Field names carry their units (battery_v, rsrp_dbm). A
// value the unit cannot measure is null, never zero.
package wire

import (
	"fmt"
	"strings"
	"time"
)

// Version is the schema version of the payloads in this package.
const Version = 1

// Topics builds topic names for one unit under a prefix ("outpost").
type Topics struct {
	Prefix string
	Unit   string
}

func (t Topics) base() string { return t.Prefix + "/" + t.Unit + "/" }

// Status is the retained online/offline topic; the broker's last will sets
// it offline when the unit vanishes.
func (t Topics) Status() string { return t.base() + "status" }

// Telemetry is the topic of one telemetry stream (power, signal, ...).
func (t Topics) Telemetry(stream string) string { return t.base() + "telemetry/" + stream }

// Health is the retained topic of the unit's current faults and components.
func (t Topics) Health() string { return t.base() + "health" }

// Events is the topic of motion, fault and other events.
func (t Topics) Events() string { return t.base() + "events" }

// Cmd is the topic a command of the given name is sent to.
func (t Topics) Cmd(name string) string { return t.base() + "cmd/" + name }

// Reply is the topic the reply to a request is published on.
func (t Topics) Reply(requestID string) string { return t.base() + "reply/" + requestID }

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

// NewHeader stamps a payload with the schema version and t in UTC.
func NewHeader(t time.Time) Header { return Header{V: Version, TS: t.UTC().Truncate(time.Millisecond)} }

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
	Boot    time.Time `json:"boot,omitempty"`
	Site    string    `json:"site,omitempty"`
	Purpose string    `json:"purpose,omitempty"`
	DPIARef string    `json:"dpia_ref,omitempty"`
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
	Quality    string   `json:"quality"`
}

// Health is the retained payload of the health topic.
type Health struct {
	Header
	Components []ComponentHealth `json:"components"`
}

// ComponentHealth is one supervised component's state.
type ComponentHealth struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	Restarts  int       `json:"restarts"`
	LastError string    `json:"last_error,omitempty"`
}
