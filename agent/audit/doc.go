// Package audit is the unit's access audit trail: every request for
// footage, snapshots, configuration or updates that reaches the unit is
// recorded with who asked, when, for what range, for whom and why, and
// with what result.
//
// Public-space CCTV is high-risk processing under UK GDPR: access to
// footage must be accounted for, and the ICO expects a disclosure log
// (who got which footage, when and why). The trail is therefore
// append-only, hash-chained so that an entry altered or removed later is
// found, durable across power cuts (each Append is fsync'ed before it
// returns), bounded in size and age, and readable from the control room
// with the audit.list command (ListHandler).
//
// # Directory
//
// One directory (<data_dir>/audit) holds:
//
//	0000000000000001.audit        log files, named by their first entry's
//	00000000000004d2.audit          sequence (16 lower-case hex digits)
//	00000000000004d2.audit.torn.N side file: bytes cut from that file at
//	                                offset N by recovery (N = 0: the whole
//	                                file, set aside for a damaged header)
//	*.tmp                         a file creation that did not finish
//	                                (removed on open)
//
// A file is created as NAME.tmp holding its header, fsync'ed, renamed to
// NAME, and the directory fsync'ed, so that a file exists under its name
// only with a whole header. Only the newest file is written; the others
// are never changed, only removed whole.
//
// # Files
//
// All integers are little endian. A file starts with a 64-byte header:
//
//	0   [8]  magic "OPAUDIT1"
//	8   u32  schema version (1)
//	12  u32  reserved, 0
//	16  u64  sequence of the file's first entry (its name; at least 1)
//	24  [32] hash of the entry before the first: all zeros when the log
//	         starts here, otherwise the last hash of the file before —
//	         which may have been removed, so the rest still verifies
//	56  u32  CRC-32C (Castagnoli) of bytes 0-55
//	60  u32  reserved, 0
//
// then records, each starting at an offset that is a multiple of 8, so
// that the length field is never torn across a sector:
//
//	0   u32  n, the length of the canonical bytes (2 to 65536)
//	4   u32  CRC-32C of bytes 8 to 48+n of this record
//	8   u64  sequence
//	16  [32] hash = SHA-256(previous entry's hash || canonical bytes)
//	48  [n]  canonical bytes, then zero padding to a multiple of 8
//
// The canonical bytes are the entry encoded by encoding/json with Hash
// and PrevHash empty (so left out): a JSON object whose fields come in
// the order of Entry's declaration, times in RFC 3339 UTC. They are
// stored as hashed, so verification hashes the stored bytes and never
// depends on encoding them again. Sequences start at 1 and rise by one
// from entry to entry and from file to file.
//
// # What is detected
//
// The CRC catches a torn or decayed record; the chain catches a record
// changed on purpose (CRC fixed up) — its hash no longer matches its
// content — and a record removed — the sequence jumps and the next record
// does not chain. Verify names the entry, file and offset of each. A
// rewrite of the whole chain from some point onward is caught only by
// comparing the head hash with one kept elsewhere: audit.list returns it,
// and a control room that records it can compare it later.
//
// # Recovery
//
// Open scans the newest file record by record. Damage running to the end
// of the file — the record being written when the power went, garbage, a
// zero-filled tail — is copied to FILE.torn.OFFSET and cut off; a damaged
// stretch followed by intact records is left in place for Verify to
// report, never cut, as it may be evidence of tampering. A newest file
// whose header is damaged is set aside whole. Each repair is logged and
// recorded as an "audit.recovery" entry, so the trail itself says what
// happened to it.
//
// # Retention
//
// The log rotates to a new file at Options.FileMaxBytes (default 1 MiB).
// A file is removed whole once its newest entry is older than MaxAge
// (default 400 days), and the oldest files go while the log is larger
// than MaxTotalBytes (default 64 MiB); the file being written is never
// removed. The audit trail outlives the footage (kept 28 days) because
// disclosures are questioned long after the footage is gone: subject
// access requests (up to three months to answer), complaints to the ICO,
// prosecutions, and the Surveillance Camera Code's annual review.
//
// # Use
//
// The agent opens the log once, Open(<data_dir>/audit, ...), and either
// sets it as its session's command observer (uplink.CommandOptions.
// Observer: ObserveCommand records every request's outcome, refusals
// included) or calls Append itself; it registers ListHandler as the
// audit.list command. The log has one writer; readers (Since, Verify,
// audit.list) read the files without stopping it. Verify checks a file
// no longer written once and remembers its verdict by size and
// modification time, so audit.list re-reads only the file being written;
// after a restart the first Verify reads every file again.
package audit
