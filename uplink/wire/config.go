package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Results of applying a configuration, reported in ConfigReported.Result.
const (
	ConfigApplied  = "applied"
	ConfigRejected = "rejected"
	ConfigReverted = "reverted"
)

// ConfigReported is the retained payload of config/reported: the
// configuration the unit runs, with secrets redacted, and the outcome of
// the last change asked of it.
type ConfigReported struct {
	Header
	// Version is the version of the configuration the unit runs; 0 is the
	// unit's own file as installed.
	Version int64 `json:"version"`
	// Hash identifies the effective configuration (hex, 16 characters);
	// status carries it as config_version.
	Hash string `json:"hash"`
	// AppliedAt is when the running configuration was applied, and
	// RequestedBy who asked for it.
	AppliedAt   time.Time `json:"applied_at"`
	RequestedBy string    `json:"requested_by,omitempty"`
	// DesiredVersion is the version of the last change asked of the unit
	// (a config/desired, a rollback or an edit of the file on the unit),
	// and Result what became of it: applied, rejected or reverted.
	DesiredVersion int64  `json:"desired_version"`
	Result         string `json:"result"`
	// Errors lists every problem when Result is rejected or reverted.
	Errors []string `json:"errors,omitempty"`
	// Changes lists, in words, what the last change changed (or would
	// have); secrets are never shown.
	Changes []string `json:"changes,omitempty"`
	// ConfirmBy is set while a change that touches the link waits to be
	// confirmed: the unit reverts it unless it reaches the control room
	// by then.
	ConfirmBy *time.Time `json:"confirm_by,omitempty"`
	// Config is the configuration as a JSON object with the keys of the
	// YAML file (configs/outpost.example.yaml).
	Config json.RawMessage `json:"config"`
}

// Key identifies what a reported payload says, without its timestamp: two
// payloads with one key need not both be sent.
func (c ConfigReported) Key() string {
	k := fmt.Sprintf("%s/%d/%d/%s", c.Hash, c.Version, c.DesiredVersion, c.Result)
	if c.ConfirmBy != nil {
		k += "/pending"
	}
	return k
}

// Config history entries, answered by the config.history command.
type ConfigHistoryEntry struct {
	Version     int64     `json:"version"`
	Hash        string    `json:"hash"`
	AppliedAt   time.Time `json:"applied_at"`
	RequestedBy string    `json:"requested_by,omitempty"`
	// Result is applied, or reverted when a link change was not confirmed
	// or its components failed to start.
	Result  string   `json:"result"`
	Changes []string `json:"changes,omitempty"`
	// Current marks the version the unit runs.
	Current bool `json:"current,omitempty"`
}

// ConfigRollbackArgs are the arguments of the config.rollback command.
type ConfigRollbackArgs struct {
	// Version is the history entry to go back to.
	Version     int64  `json:"version"`
	RequestedBy string `json:"requested_by,omitempty"`
}

// ConfigRollbackResult is config.rollback's reply: the version the
// rolled-back configuration runs as (a new one, above every version seen).
type ConfigRollbackResult struct {
	Version int64    `json:"version"`
	Changes []string `json:"changes,omitempty"`
}

// ConfigDesired is the retained payload of config/desired, published by
// the control room.
type ConfigDesired struct {
	Header
	// Version is the control room's version of this configuration, above
	// 0 and above the version it is based on.
	Version int64 `json:"version"`
	// BaseVersion is the reported version the control room edited; a unit
	// running another version rejects the change (two operators must not
	// silently overwrite each other).
	BaseVersion int64 `json:"base_version"`
	// RequestedBy names who asked, for the unit's history.
	RequestedBy string `json:"requested_by,omitempty"`
	// Full, when true, makes Config a whole configuration over the
	// defaults (keys left out take their defaults, as in a file);
	// otherwise Config is a JSON merge patch (RFC 7386) on the unit's
	// configuration: objects merge key by key, null restores a key's
	// default, any other value replaces. Either way a secret given as
	// "[redacted]" keeps the unit's value.
	Full bool `json:"full,omitempty"`
	// Config is a JSON object with the keys of the YAML file.
	Config json.RawMessage `json:"config"`
	// Auth is the operator's signature of the change (package
	// uplink/cmdauth, kind "config.desired", over SignedBytes); a unit
	// that requires signed commands refuses a change without one.
	Auth *Auth `json:"auth,omitempty"`
}

// SignedBytes are the bytes of a change its signature covers: version,
// base version, requester, full and the configuration in compact JSON.
func (d ConfigDesired) SignedBytes() ([]byte, error) {
	var cfg bytes.Buffer
	if err := json.Compact(&cfg, d.Config); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return json.Marshal(struct {
		Version     int64           `json:"version"`
		BaseVersion int64           `json:"base_version"`
		RequestedBy string          `json:"requested_by"`
		Full        bool            `json:"full"`
		Config      json.RawMessage `json:"config"`
	}{d.Version, d.BaseVersion, d.RequestedBy, d.Full, cfg.Bytes()})
}

// MaxConfigBytes bounds a config/desired payload.
const MaxConfigBytes = 64 << 10

// DecodeConfigDesired decodes and checks a config/desired payload. The
// configuration itself is checked by the agent's config package.
func DecodeConfigDesired(payload []byte) (ConfigDesired, error) {
	var d ConfigDesired
	if len(payload) > MaxConfigBytes {
		return d, fmt.Errorf("wire: config/desired: %d bytes is above the limit of %d", len(payload), MaxConfigBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&d); err != nil {
		return ConfigDesired{}, fmt.Errorf("wire: config/desired: %w", err)
	}
	if dec.More() {
		return ConfigDesired{}, fmt.Errorf("wire: config/desired: data after the JSON object")
	}
	switch {
	case d.V != Version:
		return ConfigDesired{}, fmt.Errorf("wire: config/desired: v: version %d is not supported; this unit speaks version %d", d.V, Version)
	case d.Version <= 0:
		return ConfigDesired{}, fmt.Errorf("wire: config/desired: version: %d must be above 0", d.Version)
	case d.BaseVersion < 0 || d.BaseVersion >= d.Version:
		return ConfigDesired{}, fmt.Errorf("wire: config/desired: base_version: %d must be at least 0 and below version %d", d.BaseVersion, d.Version)
	case len(bytes.TrimSpace(d.Config)) == 0 || bytes.TrimSpace(d.Config)[0] != '{':
		return ConfigDesired{}, fmt.Errorf("wire: config/desired: config: want a JSON object, got %s", jsonKind(d.Config))
	}
	return d, nil
}
