// Package outbox is the unit's disk-backed queue of messages waiting for
// the link: events, alerts and telemetry produced while the cellular link
// is down survive restarts and power cuts, and go out, highest priority
// first, when it returns.
//
// paho's own file store is not used: it does not fsync and has lost
// messages. Binary clip chunks never come here (they are re-requested by
// the control room); this queue holds small JSON messages.
//
// # Guarantees
//
//   - Put returns once the message is on the card (written and fsynced).
//   - A message leaves the queue only when Ack is called, after the broker
//     acknowledged it. Acks are written without fsync: after a power cut a
//     delivered message may be sent again (at least once); receivers drop
//     repeats by the id in the payload.
//   - The queue holds at most MaxBytes of records. When a new message does
//     not fit, the oldest messages of the lowest class queued are dropped
//     (telemetry, then events, then alerts), each drop recorded and
//     counted; if everything queued outranks the new message, the new
//     message is dropped instead (ErrDropped). Drop counts survive restarts.
//   - Lease hands out messages by class (alert, event, telemetry) and,
//     within a class, oldest first.
//
// # Files
//
// The directory holds segment files named by the first id they were
// created for, as 16 hex digits and ".obx" (0000000000000001.obx), written
// append-only. Each starts with a 16-byte header: the magic "OUTPOSTQ",
// the format version (uint32, little endian, 1) and 4 zero bytes. Records
// follow, each framed as
//
//	length uint32 LE   length of body
//	crc    uint32 LE   CRC-32C (Castagnoli) of the length bytes and body
//	body   [length]byte
//
// so a record whose length was torn fails its CRC like one whose body was.
// The body's first byte is its type:
//
//	'P' put:   id u64, created unix ms i64, flags u8 (bit 0: retained),
//	           class (u8 length + bytes), topic (u16 length + bytes),
//	           payload (u32 length + bytes)
//	'A' ack:   id u64                       delivered
//	'D' drop:  id u64, class (u8 + bytes)   dropped for room, counted
//	'S' state: next id u64, then per class: class (u8 + bytes), dropped u64
//
// Integers are little endian. Classes are stored as their stable names
// ("alert", "event", "telemetry"), never as numbers. Every segment's first
// record is an 'S' record carrying the drop counts and next id so far, so
// deleting old segments loses neither.
//
// New segments are created as NAME.tmp, fsynced, renamed and the directory
// fsynced. A segment is started when the current one passes SegmentBytes.
// The oldest segment is deleted once none of its puts is pending; when the
// segments take more than twice MaxBytes, the oldest segment's pending
// puts are first copied (same ids) into the current one. A put may then
// exist twice; the copies are identical and replay keeps one.
//
// # Recovery
//
// Open replays every segment in order. A record that is cut short or fails
// its CRC ends its segment: the bytes from there on are copied aside to
// NAME.damaged-OFFSET (the three newest copies are kept), the segment is
// truncated there and recovery goes on with the next segment. A torn tail
// is what a power cut during a write leaves; since Put fsyncs before
// returning, it only ever holds a message whose Put had not returned.
package outbox
