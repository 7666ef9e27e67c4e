// Package clip moves a file — an exported clip or a snapshot — from a unit
// to the control room over MQTT, on a cellular link that is slow, metered
// and drops. Both ends live here: the unit's Sender and the control room's
// Receiver.
//
// # Protocol (docs/protocol.md, "File transfer", is the reference)
//
// The control room asks for a transfer with the transfer.start command. The
// unit prepares the file (an MP4 export of the range, or a JPEG), and
// replies with a Manifest: transfer id, size, SHA-256, chunk size and count.
// It then publishes chunks, as binary messages at QoS 0, to
//
//	<prefix>/<unit>/xfer/<transfer-id>/chunk
//
// each framed as
//
//	offset  size  field
//	0       4     magic "OPX1"
//	4       4     chunk index, big-endian uint32
//	8       4     chunk count, big-endian uint32
//	12      4     CRC-32C (Castagnoli) of the data
//	16      n     data (chunk size bytes; the last chunk may be shorter)
//
// and keeps at most Window chunks unacknowledged (a sliding window: on an
// 80 ms round trip, stop-and-wait would use a fraction of the link). The
// control room acknowledges on
//
//	<prefix>/<unit>/xfer/<transfer-id>/ack
//
// with a JSON Ack: Next, the count of chunks received from the start
// without a gap (a cumulative acknowledgement), Sack, chunks received
// beyond Next, and Nack, chunks it wants again at once (a gap, or a chunk
// whose CRC failed). A chunk neither acknowledged nor nacked within the
// retransmission timeout is sent again. QoS 0 is deliberate: the window and
// retransmissions do the broker's work without its per-message round trips,
// and nothing stale is queued for a link that has gone down.
//
// When every chunk has arrived the control room checks the whole file's
// SHA-256 against the manifest before renaming it into place, then sends an
// Ack with Done set, which lets the unit release the evidence hold it put
// on the range and delete its copy. A Receiver keeps what it has in a
// ".part" file and a bitmap beside it, so a pull that is interrupted (the
// link, the unit or outpostctl restarting) resumes: transfer.start carries
// the received bitmap and the unit sends only what is missing. Transfer ids
// are derived from the request (unit, kind, range) so re-running the same
// pull finds the same transfer.
package clip
