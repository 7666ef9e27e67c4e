package ota

import (
	"fmt"
	"regexp"
	"time"
)

// The messages of the update protocol between the control room and a unit
// (docs/protocol.md, "Updates"). Topics are relative to
// <prefix>/<unit-id>/:
//
//	cmd/ota.push       control → unit  PushArgs; the reply's result is PushResult
//	cmd/ota.status     control → unit  no args; the reply's result is Status
//	ota/<id>/chunk     control → unit  QoS 0, a chunk frame of the bundle (clip's OPX1 framing)
//	ota/<id>/ack       unit → control  QoS 0, a clip Ack
//	ota                unit → control  retained Status, on every change
//
// The transfer is clip's windowed, resumable transfer with the roles
// reversed: the control room sends, the unit receives into
// <root>/incoming/<id>.bundle.part and keeps a bitmap beside it, so a push
// that is interrupted resumes from what the unit has.

// WireVersion is the schema version ("v") of the update messages.
const WireVersion = 1

// PushArgs are the arguments of ota.push.
type PushArgs struct {
	// ID names the transfer: "ota-" and 24 hex digits of the bundle's
	// SHA-256, so that pushing the same bundle again resumes.
	ID string `json:"id"`
	// Version is the release's version as its manifest says (unverified:
	// for reports only; the unit verifies the bundle once it has it).
	Version   string `json:"version,omitempty"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	ChunkSize int    `json:"chunk_size"`
	Window    int    `json:"window"`
}

var pushIDRe = regexp.MustCompile(`^ota-[0-9a-f]{24}$`)

// Validate checks push arguments received from the control room.
func (a PushArgs) Validate() error {
	switch {
	case !pushIDRe.MatchString(a.ID):
		return fmt.Errorf("id %q is not \"ota-\" and 24 hex digits", a.ID)
	case a.Size < 88 || a.Size > MaxBundleSize:
		return fmt.Errorf("size %d is outside 88-%d bytes", a.Size, int64(MaxBundleSize))
	case !isSHA256(a.SHA256):
		return fmt.Errorf("sha256 %q is not 64 hex digits", a.SHA256)
	case a.ChunkSize < 1024 || a.ChunkSize > 1<<20:
		return fmt.Errorf("chunk_size %d is outside 1024-1048576", a.ChunkSize)
	case a.Window < 1 || a.Window > 256:
		return fmt.Errorf("window %d is outside 1-256", a.Window)
	}
	return nil
}

// MaxBundleSize bounds a bundle a unit receives.
const MaxBundleSize = 256 << 20

// PushID is the transfer id of a bundle with the given SHA-256 (hex).
func PushID(sha256Hex string) string { return "ota-" + sha256Hex[:24] }

// PushResult is the reply to ota.push: the unit is receiving.
type PushResult struct {
	ID string `json:"id"`
	// Have is the bitmap of chunks the unit already holds (clip's
	// encoding: bit i of byte i/8 is chunk i, base64 without padding).
	Have   string `json:"have"`
	Chunks int    `json:"chunks"`
	// Running is the version the unit runs.
	Running string `json:"running"`
}

// Status is the unit's update status: the reply to ota.status and the
// retained ota topic.
type Status struct {
	V  int       `json:"v"`
	TS time.Time `json:"ts"`
	// Agent is the version of the agent that published the status.
	Agent string `json:"agent"`
	// State is the installer's state; "" when updates are not set up
	// (no launcher, or no key pinned: see Reason).
	State    State  `json:"state"`
	Running  Slot   `json:"running"`
	Target   *Slot  `json:"target,omitempty"`
	Previous *Slot  `json:"previous,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Updated is when the state was saved.
	Updated       time.Time `json:"updated,omitzero"`
	TrialDeadline time.Time `json:"trial_deadline,omitzero"`
	Boots         int       `json:"boots,omitempty"`
	// Push is the transfer id of the last ota.push, which the outcome
	// belongs to.
	Push string `json:"push,omitempty"`
	// Receiving is the push being received, with bytes so far.
	Receiving *Progress `json:"receiving,omitempty"`
}

// Progress of a bundle being received.
type Progress struct {
	ID       string `json:"id"`
	Received int64  `json:"received_bytes"`
	Size     int64  `json:"size_bytes"`
}

// Outcome names a finished update in the "ota" event and in reports.
func (s Status) Outcome() string {
	switch s.State {
	case StateCommitted:
		return "committed"
	case StateRolledBack:
		return "rolled_back"
	case StateFailed:
		return "rejected"
	}
	return ""
}
