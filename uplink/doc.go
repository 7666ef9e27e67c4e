// Package uplink is the unit's one MQTT session with the control room over
// a slow, metered cellular link that drops.
//
// paho is wrapped once here, behind the narrow mqttClient interface and a
// factory, so nothing else in the agent sees paho's tokens or globals and
// tests can inject a fake. The Session connects (and reconnects) with a
// jittered, capped backoff, keeps a retained status topic whose last will
// marks the unit offline when it vanishes, and publishes what the rest of
// the agent hands it. Topic names and payloads live in uplink/wire.
package uplink
