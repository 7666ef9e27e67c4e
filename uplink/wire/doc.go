// Package wire is the Outpost MQTT protocol: topic names and the payloads
// exchanged between a unit and the control room. It is shared by the agent
// and the control-room client so both sides agree by construction;
// docs/protocol.md describes the same contract for other implementers and
// is kept in step with this package.
//
// # Topics
//
// Every topic of a unit is under "<prefix>/<unit-id>/" (Topics builds
// them). The unit publishes status, health and config/reported retained;
// telemetry/<stream>, events and reply/<id> not retained. The control room
// publishes cmd/<name> (QoS 1, not retained) and config/desired (retained).
//
// # Payloads
//
// Every JSON payload carries "v", its schema version (Version), and "ts",
// an RFC 3339 UTC timestamp. Field names carry their units (battery_v,
// rsrp_dbm). A value the unit cannot measure is null, never zero.
// Receivers ignore fields they do not know, so fields may be added within
// a version; removing a field or changing its meaning raises Version.
//
// # Requests and replies
//
// A Request carries an id of 1-64 characters of [A-Za-z0-9_-] chosen by
// the control room, unique per unit; the unit answers on reply/<id> with a
// Reply whose error, when there is one, has a stable Code (CodeBadRequest,
// ...). A request repeated with the same id (a QoS 1 redelivery, or a
// retry after a lost reply) is answered from the first result and never
// executed twice. DecodeRequest checks everything a unit reads from the
// outside, and names the field at fault.
//
// # Identity of messages
//
// Delivery is at least once: after a lost acknowledgement a message may
// arrive twice. Events carry an id; telemetry is identified by its topic
// and ts (one sample per stream and second at most), so receivers can
// drop repeats.
package wire
