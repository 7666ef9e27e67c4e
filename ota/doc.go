// Package ota installs new versions of the agent over the air: signed
// release bundles, full or delta payloads, an A/B install with a
// health-checked trial and automatic rollback, run as a persisted state
// machine that survives a power cut at any moment.
//
// # Release bundle
//
// A bundle is one file, made by 'outpostctl release build':
//
//	offset  size  field
//	0       8     magic "\x89OTA\r\n\x1a\n"
//	8       2     format version, big endian (1)
//	10      2     reserved, zero
//	12      4     manifest length M, big endian (1 to 65536)
//	16      8     payload length P, big endian (1 to 1 GiB)
//	24      64    Ed25519 signature over the M manifest bytes, exactly
//	88      M     manifest: JSON (Manifest)
//	88+M    P     payload
//
// The file is exactly 88+M+P bytes; anything shorter is truncated, anything
// longer refused. The verifier (OpenBundle) refuses at once when no key is
// pinned (ErrNoKeys), reads the fixed 88 bytes, checks the lengths against
// the file's size, reads the M manifest bytes and verifies the signature
// against each pinned key. Only a manifest signed by a pinned key is parsed
// (strictly: unknown fields refused). The manifest carries the payload's
// length and SHA-256, which are checked (Bundle.CheckPayload) before a byte
// of the payload is decompressed; the decompressed binary is then checked
// against the manifest's size and SHA-256 as it is written, and again when
// read back from the slot. The payload region is never read while the
// signature is unchecked.
//
// The manifest (schema 1) names the version, the architecture (arm64,
// armv7, armv6, amd64), the binary's size and SHA-256, min_from_version
// (units running an older version refuse it), allow_downgrade (without it a
// unit refuses a release that is not newer than what it runs), the
// encoding and, for a delta, delta_base_sha256.
//
// Payload encodings:
//   - "zstd": the binary compressed with zstd.
//   - "zstd-delta": the binary compressed with zstd using the base binary
//     (the one the unit runs) as a raw dictionary with a window covering
//     both, as zstd --patch-from does. A unit refuses a delta whose base
//     is not the binary it runs (ErrDeltaBase). Still read; no longer
//     made.
//   - "bsdiff-zstd": a bsdiff delta from the base binary, its diff
//     stream split into run positions, shapes and values, every stream
//     zstd-compressed (format in delta.go): what Build makes for a
//     delta, a third smaller than bsdiff's own on consecutive builds of
//     the agent. The same base check applies.
//
// Versions are semantic versions, v1.2.3 and v1.2.3-rc.1, and the forms of
// git describe: v1.2.3-4-gabcdef is newer than v1.2.3 and older than
// v1.2.4.
//
// # Keys
//
// A signing key (GenerateKey) is kept in the control room as a PEM file,
// type "OUTPOST RELEASE SIGNING KEY", holding the 32-byte Ed25519 seed,
// mode 0600. Units pin public keys, one a line:
//
//	outpost-release-ed25519 <base64 of the 32-byte key> [comment]
//
// Several keys may be pinned, so that a new key can be pinned before the
// old one is retired. A unit with no key refuses every update.
//
// # Slots
//
// Under the installer's root (e.g. /var/lib/outpost/ota):
//
//	a/outpost      slot a
//	b/outpost      slot b
//	current ->     a or b: the slot to run; the launcher runs current/outpost
//	committed ->   a or b: the last slot confirmed healthy
//	state.json     the state of the update
//
// A binary is written to a slot as .outpost.tmp, synced, renamed to outpost
// and the directory synced; a link is switched by making a new link under a
// temporary name and renaming it over the old one, then syncing the
// directory. current therefore always names a slot whose binary is whole.
// The slot written is always the one that is neither current nor
// committed.
//
// # State machine
//
// state.json (schema 1, replaced atomically: temp, fsync, rename, fsync the
// directory) is saved before each side effect:
//
//	idle ─▶ downloading ─▶ verified ─▶ installed ─▶ trial ─▶ committed
//	                          │            │          │
//	                          ▼            ▼          ▼
//	                        failed    rolled_back ◀───┘
//
// The states mean:
//
//   - verified: the bundle's signature, manifest, policy and payload hash
//     passed and the preconditions held; the inactive slot is being
//     written.
//   - installed: the new slot is written, synced and read back.
//   - trial: current points to the new slot, the deadline is set; each
//     start of the agent counts a boot, each crash the launcher sees a
//     crash (NoteCrash), and a start after a power cut gives the trial
//     its window again (PowerRestored).
//   - committed: the release passed its health check (Confirm); it is the
//     running slot and committed points to it.
//   - rolled_back: current points back to the running slot (Rollback, or
//     the start-up table), with the reason.
//   - failed: a refused bundle or a failed write, with the reason.
//
// On every start of the agent, before anything else, the launcher ('outpost
// launch', agent/cli/ota.go) calls Resume, which maps the last saved state
// to an action:
//
//	saved state   condition                           action
//	idle, committed, failed, rolled_back, downloading
//	              —                                   point current and committed at the running slot
//	                                                  (restart if current moved)
//	verified      —                                   remove the half-written slot; failed
//	installed     —                                   trial: deadline set, current switched; restart
//	trial         current is not the new slot         switch it (the power cut came between save and switch); restart
//	trial         deadline passed                     rolled_back; restart
//	trial         crashes >= MaxTrialBoots            rolled_back (a crash loop); restart
//	trial         boots+1 > 4 × MaxTrialBoots         rolled_back (it keeps restarting); restart
//	trial         otherwise                           boots+1 saved; run, check health, Confirm
//
// A release that crashes before it can do anything is caught because
// Resume runs outside it: the launcher is a stable process that calls
// Resume and then runs current/outpost as its child, again and again, each
// start on trial counted. The agent does not call Resume; it reads the
// state and, when it is the release on trial, calls Confirm once healthy
// or Rollback at the deadline. The launcher also stops a release still on
// trial after its deadline, so that one that hangs is rolled back too.
//
// The trial deadline is wall-clock time: a clock that
// jumps forward at boot rolls a trial back (the safe direction); one that
// jumps back lengthens it, the boot count still bounding a crash loop.
//
// # Transfer
//
// wire.go has the messages with which the control room pushes a bundle to
// a unit (ota.push, ota.status, the retained ota status) over clip's
// chunked, resumable transfer; docs/protocol.md, "Updates", is the
// reference.
package ota
