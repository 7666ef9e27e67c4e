// Package uplink is the unit's one MQTT session with the control room over
// a slow, metered cellular link that drops.
//
// paho is wrapped once here, behind the narrow mqttClient interface and a
// factory, so nothing else in the agent sees paho's tokens or globals and
// tests inject a fake. The wrapper dials the socket itself: bytes are
// counted below TLS (the data meter), every write has a deadline, and a
// wedged client can be cut off by closing its socket.
//
// # Connection
//
// Session.Run builds a new client for every connection attempt, reading
// the CA, certificate and key files afresh (a renewed certificate is used
// at the next reconnection), and retries with the shared jittered, capped
// backoff — the first connection like any other. The broker keeps the
// unit's session (clean session off), so commands sent while it is offline
// wait for it. A retained status carries the unit online; its last will
// marks it offline. A watchdog discards the client when nothing at all has
// been read from the broker for three keep-alives (paho's own ping timeout
// usually notices first; paho has a history of reconnect deadlocks). With
// TLS, no connection is attempted while the clock is before the build time
// or the last known good time (persisted), since certificates cannot be
// checked at 1970.
//
// # Two paths out
//
// Publish is the live path: it returns ErrOffline while the link is down
// and keeps nothing (clip chunks, replies). Send is the durable path: the
// message goes to the disk-backed outbox (package outbox) and is drained
// when connected, highest priority first, within a window of unacknowledged
// messages and a byte rate.
//
// # Commands
//
// Requests arrive on cmd/<name>; Handle registers a Handler. Dispatch runs
// on paho's goroutine and never blocks: requests go to a bounded queue
// served by a bounded pool of workers, and what needs no worker (malformed
// requests, unknown commands, a full queue, repeats) is answered at once.
// A request id seen before is never executed again: its reply is repeated
// from a bounded cache.
//
// # Time
//
// Behaviour driven by time — backoff, the watchdog, the drain rate,
// budgets, the clock floor — runs on the injected clock. Waits on the
// network (connect, write and acknowledgement timeouts) are real time.
package uplink
