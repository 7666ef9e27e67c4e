// Package footage is the unit's footage store: crash-safe recording of
// encoded frames into append-only segment files, recovery after a power
// cut, look-up by time and by sequence across clock steps, retention with
// evidence holds, a signed hash chain that makes sealed footage
// tamper-evident, export to MP4, snapshots, and the Recorder component
// that feeds it from the camera.
//
// A unit browns out, its SD card fills, and the control room asks for last
// Tuesday's 03:12 clip weeks later; the council must delete footage after
// its retention period. The store is built so that footage that was
// recorded and synced is never lost or served damaged, and footage past its
// retention is gone.
//
// # Directory
//
// One directory (Dir(data_dir) = <data_dir>/footage) holds:
//
//	LOCK                          flock(2)ed by the one writer
//	0000000000000001.seg          segments, named by their first sequence
//	000000000000a3f1.seg            (16 lower-case hex digits)
//	000000000000a3f1.seg.torn.N   side file: bytes cut from that segment at
//	                                offset N by recovery, kept for inspection
//	index.log                     journal of sealed-segment summaries,
//	                                deletions and clock corrections
//	holds.json                    evidence holds
//	chain.log                     hash chain of the sealed segments, their
//	                                deletions and signed heads
//	chain.log.torn.N              side file: a torn tail cut from chain.log
//	chain.log.damaged.T           a chain.log whose header was damaged,
//	                                set aside whole
//	*.tmp                         a creation that did not finish (removed on
//	                                open)
//
// Files are created as etcd's WAL creates them: written to NAME.tmp,
// fsync'ed, renamed to NAME, and the directory fsync'ed, so a file exists
// under its name only whole.
//
// # Segments
//
// All integers are little endian. A segment starts with a 40-byte header:
//
//	0   [8]  magic "OPFTSEG1"
//	8   u32  schema version: 1, or 2 for an encrypted segment
//	12  u32  run: incremented each time the store is opened for writing
//	16  u64  first sequence (the file's name)
//	24  i64  creation time, ns since the Unix epoch (informative)
//	32  u32  version 1: reserved, 0; version 2: key id (see Encryption
//	         at rest)
//	36  u32  CRC-32C (Castagnoli) of bytes 0-35
//
// then records, each starting at an offset that is a multiple of 8, so
// that the length field is never torn across a sector:
//
//	0   u32  payload length
//	4   u32  CRC-32C of bytes 8-39 of this header and of the payload
//	8   u64  sequence
//	16  i64  time, ns since the Unix epoch, as stamped (see Time)
//	24  [4]  codec, a four-character code: "MJPG" (H.264 will be "H264");
//	         zero for records that are not frames
//	28  u16  width, 0 if unknown
//	30  u16  height, 0 if unknown
//	32  u8   kind: 'F' frame, 'E' event, 'C' clock correction, 'I' index
//	33  u8   flags (frames): 1 event, 2 pre-roll, 4 timelapse
//	34  [6]  reserved, 0
//	40  payload, then zero padding to a multiple of 8
//
// A frame's payload is the encoded picture, stored as the camera gave it.
// An event's is its kind ("motion", "pir", "manual"). A clock correction's
// is 40 bytes: u32 run, u32 0, u64 sequence, i64 step (ns), i64 time the
// step was noticed (new clock), u64 0.
//
// Sequences increase by at least one from record to record and across
// segments and runs; they never go back, and gaps are allowed (frames cut
// after a failed sync, a correction noted with no segment open). They
// order the footage whatever the clock did.
//
// # Sealing
//
// A segment is sealed when it rotates — it reached segment_duration of
// frame time, or segment_max_size, or the codec or picture size changed,
// or the clock stepped — when the store closes, and by retention when it
// has been idle for a segment duration. Sealing appends, at the end of the
// last record:
//
//	an index record (kind 'I', sequence 0): a summary of the segment
//	  (first and last sequence, run, counts, codec, size, raw first, last,
//	  lowest and highest frame times, end of the records, file size, frame
//	  bytes as stored, flags (1: encrypted), its clock corrections)
//	  followed by u32 n and n 32-byte
//	  entries (u64 sequence, i64 time, u64 offset, u32 length, u8 kind,
//	  u8 flags, 2 reserved) locating every record;
//	a 24-byte trailer: magic "OPFTSEAL", u64 offset of the index record,
//	  u32 CRC-32C of the trailer's first 16 bytes, u32 0;
//
// then fdatasyncs. A sealed segment is never written again; retention
// deletes it whole.
//
// # Writing and syncing
//
// Records are written with positional writes in order and the file is
// fdatasync'ed every sync_interval (default 1 s) by the recorder, so a
// power cut loses at most the frames of the last interval plus the time
// the sync takes. Sync reports the highest durable sequence. A failed
// write is cut back to the end of the previous record; a failed sync cuts
// the segment back to the last good sync (the unsynced frames may not be
// on the card, and a later sync would not say so) and counts them lost.
//
// # Recovery
//
// Open lists the directory and reads index.log. A segment the index
// describes is taken as it says, without reading it; any other segment is
// read from its trailer and footer, and if it has none — it was being
// written when the power went — its records are read one by one, each CRC
// checked:
//
//   - a damaged record followed by intact ones (the next 8-aligned offset
//     holding a plausible header, a higher sequence and a matching CRC) is
//     skipped and reported; it is never served as footage;
//   - damage running to the end of the file — a torn, zero-filled or
//     garbage tail — is copied to SEGMENT.torn.OFFSET and cut off;
//   - the segment is then sealed, or removed if it held no record.
//
// Only the segment being written at the crash is read record by record, so
// opening 28 days of 60 s segments (40,320 files) reads index.log and the
// directory and nothing else. index.log is a cache for summaries: entries
// for segments that are gone are dropped, segments it misses are read from
// their footers, and a damaged tail or header just makes Open do more
// reading; it is rewritten whole when most of it is stale.
//
// index.log starts with a 16-byte header (magic "OPFTIDX1", u32 schema
// version, u32 CRC-32C of the first 12 bytes) and holds records of u32
// length, u32 CRC-32C of the kind byte and payload, u8 kind, 3 zero bytes
// and the payload: 'S' a segment summary, 'D' a deletion (u64 first, u64
// last sequence, u32 run), 'C' a clock correction, 'H' the highest
// sequence and run ever used (so that they are not reused when every
// segment has been evicted).
//
// # Chain
//
// The police must be shown that footage handed over weeks later is what
// the unit recorded. CRCs find damage, not alteration: anyone can fix one
// up. So each sealed segment is linked into a hash chain, and the chain's
// head is signed with the unit's evidence key (agent/identity), whose
// public half the control room registered when the unit was provisioned.
//
// When a segment is sealed its SHA-256 over the whole file (header,
// records, index record, trailer) is computed — from the bytes as they
// were written, so sealing does not read the segment back — and a link
// appended to chain.log: {first and last sequence, run, file size,
// segment SHA-256}. Retention appends a deletion before it removes a
// segment: {first and last sequence, run, size, the deleted link's hash,
// time, reason ("max_age", "quota or min_free", "card full")}. Each entry
// (link or deletion) carries the hash of the entry before it, prev, and
// its own, hash = SHA-256(prev || fields), fields being the canonical
// encoding:
//
//	u8 kind ('L' link, 'X' deletion), u8 flags (1: linked at recovery),
//	u64 first sequence, u64 last sequence, u32 run, i64 size,
//	[32] digest (the segment's SHA-256, or the deleted link's hash),
//	i64 time (ns; 0 for links), u16 n, n bytes reason
//
// Every HeadEvery (10 min) while the chain grows, at close, and when
// ChainFor needs one, a head is signed: Ed25519 over
//
//	"outpost footage chain head v1\n", u16 n, n bytes unit id,
//	u64 count (entries so far, including compacted ones), [32] hash of
//	the last entry, u64 highest durable sequence, i64 time (ns)
//
// and appended with the public key. Without a Signer the chain is still
// kept, unsigned: it then shows the segments are consistent with each
// other, not who recorded them.
//
// chain.log starts with a 16-byte header (magic "OPFTCHN1", u32 schema
// version, u32 CRC-32C of the first 12 bytes) and holds records framed as
// index.log's (u32 length, u32 CRC-32C of the kind byte and payload, u8
// kind, 3 zero bytes, payload). The first is always the base 'B': u64
// entries compacted away before the first kept, [32] hash of the last
// of them (the prev of the first kept: the chain starts from a known
// point), u64 start sequence (segments below it predate the chain: a store
// from before chain-keeping), i64 creation time, u64 segments present at
// creation, i64 time of the last compacted deletion, u64 compacted
// deletions. Then 'L' and 'X' entries (payload: [32] prev, [32] hash,
// fields) and 'H' heads (u16 n, unit id, u64 count, [32] head, u64 last
// sequence, i64 time, [32] public key, [64] signature).
//
// Every append is fsync'ed. On open a torn tail is copied to
// chain.log.torn.OFFSET and cut; deletions recorded before a crash stopped
// them are finished; and every sealed segment at or above the start
// sequence without a link — sealed just before a power cut, or by the
// recovery above — is linked, in sequence order, flagged as linked at
// recovery (so the same store always recovers to the same chain, and
// verify says the link was made at reopening, not at sealing). When over
// 1024 entries at the start of the chain are about deleted segments —
// the longest prefix in which every link's segment was deleted, with its
// deletion — retention (or Open) rewrites the journal without them, as
// index.log is rewritten, the base keeping the hash of the last one
// dropped, and the last 8 heads. A held segment at the start of the chain
// stops compaction until its hold is released.
//
// Verify recomputes each present segment's SHA-256 and walks the chain:
// an entry whose prev is not the hash before it (removed, inserted or
// reordered), an entry whose hash does not match its fields (altered), a
// segment whose size or digest differs from its link (altered, including
// a segment resealed by recovery after damage), a linked segment missing
// with no deletion recorded (removed outside retention), a sealed segment
// not in the chain, a head whose signature does not verify with the
// unit's key, or that names a hash the chain does not hold, or covers
// more entries than it holds (entries cut from its end) are problems.
// Deletions are notes ("deleted by retention at T"). What the chain
// cannot show by itself: that segments sealed after the newest signed head
// were not removed together with their links; the heads the control room
// received (in evidence manifests) close that gap.
//
// # Time
//
// Frames are stamped with the wall clock. A unit often boots with its
// clock at 1970 and steps it when NTP or the modem gives the time, and
// clocks are sometimes stepped back. The recorder compares, between
// consecutive frames, the wall-clock and monotonic-clock intervals; when
// they differ by more than StepThreshold (2 s) the clock stepped, and the
// store records a clock correction: {run, sequence, step}. It goes first
// to index.log (synced: it outlives the segments it affects), then as a
// 'C' record ending the current segment, which is sealed.
//
// A record's time as read (Frame.Time) is its stamped time plus the steps
// of its run recorded after it: footage recorded at "1970-01-01 00:03"
// before the clock was set reads at the real time it was recorded, and
// footage recorded with a clock that was an hour fast reads an hour
// earlier. Runs are separate: the monotonic clock does not survive a
// reboot, so footage of a run that ended before its clock was set keeps
// its 1970 times (and its sequence order). Look-up by time uses these
// corrected times; look-up by sequence is unaffected. An export is laid
// out in sequence order with decode times that always increase.
//
// Retention ages footage by corrected time. Footage still stamped before
// 2020 is at least as old as the next footage (by sequence) stamped by a
// set clock, and ages with it; while no such footage exists it is evicted
// only for space.
//
// # Retention and holds
//
// Retention runs every MaintainEvery and at once when a write finds the
// disk full. It deletes sealed segments past max_age, then the oldest
// (by sequence) until the footage is within the quota and the disk keeps
// min_free. It never deletes the segment being written, a segment being
// read (exports, snapshots and verification pin the segments they read;
// Store.Frames, Export and Nearest hold the pins until they return), or a
// segment overlapping an evidence hold. When what is left cannot be
// deleted it raises FaultRetentionBlocked. When a write fails for space
// (the card filled by other means than footage, or min_free was set too
// low) the store raises FaultDiskFull, and the recorder deletes the oldest
// footage retention may delete, a segment's worth (Store.MakeRoom), drops
// frames for a backoff, and resumes by itself once a write succeeds.
//
// holds.json is {"schema": 1, "holds": [{"id", "from", "to", "reason",
// "by", "created"}]} with RFC 3339 times, rewritten whole (temporary file,
// fsync, rename, fsync the directory) on each change. Held footage is
// never evicted; when it exceeds hold_cap, FaultHoldCap is raised and
// nothing held is deleted. An unreadable holds.json raises
// FaultHoldsUnreadable and suspends eviction until it is repaired: any
// footage might be evidence.
//
// # Recording modes and the pre-roll
//
// continuous records every frame. events records only around triggers:
// from pre_roll before a trigger to post_roll after it, extended by later
// triggers. timelapse records one frame every timelapse_interval, and
// around triggers as events does.
//
// The pre-roll comes from a ring in RAM of the last pre_roll of frames,
// bounded also by PreRollMaxBytes (64 MiB; the oldest frames go first).
// RAM, not a scratch ring on the card: writing every frame to disk only to
// overwrite it would cost the card the same write bandwidth and wear as
// continuous recording, which is what events mode exists to avoid on a
// solar-powered unit with a consumer SD card; the frames are already in
// RAM (the ring holds references to the camera's immutable buffers, no
// copies); and losing the pre-roll of an event that had not yet happened
// when the power was cut costs nothing that could have been kept. The byte
// bound keeps a 60 s pre-roll of large frames from exhausting a 512 MiB
// board.
//
// # Encryption at rest
//
// With a key (privacy.encryption_key_file: Options.KeyFile, read by
// LoadKey; 32 raw bytes or 64 hex digits in a file only its owner may
// read, kept off the footage's card) a stolen SD card reveals no picture.
// Every segment created while the store has a key is encrypted: its
// header has schema version 2 and, at byte 32, the key id — the first 4
// bytes (big endian) of SHA-256("outpost footage key id v1\n" || key),
// shown as 8 hex digits — and its summary the flag 1. The payload of each
// frame and event record is stored sealed:
//
//	[24] nonce, random (crypto/rand) for each record
//	     ciphertext, as long as the picture or event kind
//	[16] Poly1305 tag
//
// with XChaCha20-Poly1305 (golang.org/x/crypto/chacha20poly1305.NewX)
// under the key, and bytes 8-39 of the record's header — sequence, time,
// codec, picture size, kind, flags — as additional data, so a record
// cannot be moved to another sequence or time, nor its header edited,
// without failing authentication. The record's length field counts the
// sealed payload (40 bytes more than the picture) and its CRC is over the
// header and the sealed payload as stored, as in a clear segment. The
// nonce is random, not derived from (run, sequence): a run can repeat if
// index.log is lost, and one nonce used twice under a key would reveal
// the XOR of both pictures and let records be forged;
// 192-bit random nonces never collide in practice (an AEAD with 96-bit
// nonces would be safe only up to about 2^32 records per key, 5 years at
// 25 fps).
//
// Clock corrections and the footer (the index record and trailer) are not
// encrypted: they hold sequences, times, sizes and offsets, not pictures,
// and keeping them in clear lets recovery, listing, retention, holds, the
// chain and Verify work without the key. A card read without the key so
// still tells when there was footage, how much, and how many events —
// not what was filmed, nor what kind of events. The chain hashes the
// segment as stored (ciphertext), and Verify checks every CRC and the
// chain without the key; with it, Verify also authenticates every
// encrypted record.
//
// Reading a frame or event of an encrypted segment decrypts it in the
// read buffer (export, snapshots and Frames cost the cipher's time and no
// copy). Without a key the read fails with ErrNoKey naming the segment's
// key id; with another key with ErrWrongKey naming both key ids and the
// key file ("segment S is encrypted with key 1a2b3c4d, the key file F
// holds key 5e6f7a8b: give the key file the footage was recorded with") —
// the footage is not reported as damaged. A record that fails
// authentication under the right key (altered, its CRC made to match) is
// damaged: skipped, counted and raised as FaultDamaged like a CRC
// failure, never served.
//
// A store may hold clear and encrypted segments together: switching
// encryption on leaves the footage recorded before readable in clear (it
// ages out under retention); switching it off leaves the encrypted footage
// readable with the key. Open refuses to open a store whose key file
// was given but cannot be read, or does not hold a key, naming the file:
// footage is never recorded in clear when encryption was asked for.
// Changing the key makes the footage recorded under the old one
// readable only with the old key file.
//
// Encryption keeps the pictures secret; it is not the evidence that they
// are unaltered. A segment replaced whole (by a clear one, or one sealed
// under another key) authenticates or reads in clear, and is caught by
// the chain and its signed heads, as in a clear store.
//
// The cipher was chosen by measurement (BenchmarkSealFrame, sealing one
// frame; figures in MB/s and µs per frame):
//
//	                        1080p (200 KiB)       720p (100 KiB)
//	host, amd64 (AMD EPYC, 2 vCPU shared and busy; median of 3 runs):
//	  CRC-32C (baseline)    19000 MB/s   11 µs    18900 MB/s   5 µs
//	  XChaCha20-Poly1305     1720 MB/s  119 µs      980 MB/s 104 µs
//	  ChaCha20-Poly1305      1260 MB/s  163 µs     1320 MB/s  78 µs
//	  AES-256-GCM            2630 MB/s   78 µs     1530 MB/s  67 µs
//	arm64 under qemu-aarch64-static on the same host (emulated, not
//	representative of any Pi; 20 frames):
//	  CRC-32C (baseline)      314 MB/s  652 µs      273 MB/s 375 µs
//	  XChaCha20-Poly1305       45 MB/s 4580 µs       48 MB/s 2152 µs
//	  ChaCha20-Poly1305        43 MB/s 4778 µs       47 MB/s 2164 µs
//	  AES-256-GCM              13 MB/s 16179 µs       7 MB/s 14372 µs
//
// The two ChaCha20 variants cost the same within the noise of the busy
// host: XChaCha20 adds one HChaCha20 call per record, nothing against a
// 100-200 KiB frame, and buys the 24-byte random nonce.
//
// AES-256-GCM is fastest on a CPU with AES instructions, but the units
// run on Raspberry Pi 4 (Cortex-A72, BCM2711) and older Pis, which lack
// the ARMv8 cryptography extensions: there Go's AES-GCM falls back to
// constant-time software several times slower than ChaCha20-Poly1305,
// which has an arm64 NEON path and needs no special instructions. So
// XChaCha20-Poly1305: the same speed everywhere, no weak platform among
// the units, and nonces that can be drawn at random. At 25 fps of 175 KiB
// frames (4.4 MB/s) it takes 0.3% of one host core; a Pi's cores are
// several times slower (measure with go test -bench SealFrame on the
// unit).
//
// # Export
//
// Export streams a time range as fragmented MP4, MJPEG in MP4 as ffmpeg
// writes it (an mp4v sample entry with object type 0x6C), built with
// github.com/Eyevinn/mp4ff: the movie header comes from the indexes alone,
// then one fragment of about a second at a time is read, each frame's CRC
// checked, and written. Sample times are the corrected capture times at
// 90 kHz; each fragment carries a producer reference time (prft) with the
// wall-clock capture time of its first frame.
package footage
