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
// configuration the unit runs, with secrets redacted.
type ConfigReported struct {
	Header
	// Version is the desired-config version the unit runs; 0 means the
	// unit's own file, never set remotely.
	Version int64 `json:"version"`
	// Hash identifies the effective configuration (hex, 16 characters);
	// status carries it as config_version.
	Hash      string    `json:"hash"`
	Result    string    `json:"result"`
	AppliedAt time.Time `json:"applied_at"`
	// Errors lists every problem when Result is rejected or reverted.
	Errors []string `json:"errors,omitempty"`
	// Config is the configuration as a JSON object with the keys of the
	// YAML file (configs/outpost.example.yaml).
	Config json.RawMessage `json:"config"`
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
	// Config is a JSON object with the keys of the YAML file.
	Config json.RawMessage `json:"config"`
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
