// Package control is the control room's client library for a fleet of
// Outpost units: it speaks the protocol of uplink/wire (docs/protocol.md)
// to the fleet's MQTT broker. outpostctl is built on it, and a web console
// can be.
package control
