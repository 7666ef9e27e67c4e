package wire

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Event severities. Alerts go before events in the unit's outbox and need
// someone's attention; warnings and info are history.
const (
	SeverityInfo    = "info"
	SeverityWarning = "warning"
	SeverityAlert   = "alert"
)

// Event kinds published by the uplink itself. Other components add their
// own kinds (motion, faults) and document them in docs/protocol.md.
const (
	KindAgentStarted = "agent_started"
	KindLinkLost     = "link_lost"
	KindLinkRestored = "link_restored"
	KindWatchdog     = "uplink_watchdog"
	KindDataBudget   = "data_budget"
	KindOutboxFull   = "outbox_full"
	KindClockInvalid = "clock_invalid"
)

// Event is the payload of the events topic: something that happened, once.
type Event struct {
	Header
	// ID is unique per unit; a redelivered event keeps its id.
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	// Message says what happened in plain words.
	Message string `json:"message"`
	// Data holds the kind's details, with units in the field names.
	Data map[string]any `json:"data,omitempty"`
}

// NewEvent returns an event stamped at t with a fresh random id.
func NewEvent(t time.Time, kind, severity, message string) Event {
	return Event{Header: NewHeader(t), ID: NewEventID(), Kind: kind, Severity: severity, Message: message}
}

// NewEventID returns 16 random hexadecimal characters.
func NewEventID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
