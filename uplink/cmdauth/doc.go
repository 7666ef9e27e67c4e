// Package cmdauth signs the control room's commands and documents with an
// operator's Ed25519 key and checks them on the unit, so that whoever holds
// a broker account, but not an operator's key, can neither pull footage
// nor push a configuration.
//
// # Keys
//
// Each operator has an Ed25519 key pair. The private key stays with the
// operator, as a PEM PKCS#8 file ("openssl genpkey -algorithm ed25519", or
// "outpostctl operator keygen"); the unit's configuration lists the public
// keys by name, each as the line
//
//	outpost-operator-ed25519 <base64 of the 32-byte public key>
//
// (FormatPublicKey, ParsePublicKey). Key names are 1-64 characters of
// A-Z, a-z, 0-9, '_', '.' and '-' (wire.ValidKeyName).
//
// # What is signed
//
// A request's "auth" object (wire.Auth) carries the key's name, the unit
// id, the issue and expiry times and the signature, in standard base64.
// The signature is over a canonical message: the ASCII prefix
// "outpost-cmd-v1" and then, each as a 4-byte big-endian length followed
// by its bytes,
//
//	unit id, command name, request id,
//	issued (Unix nanoseconds, decimal), expires (the same),
//	key name,
//	deadline (Unix nanoseconds, decimal; empty when the request has none),
//	args (the JSON bytes exactly as sent; empty when none).
//
// Length prefixes make the encoding unambiguous (no field can borrow from
// its neighbour) and the prefix keeps a command signature from being
// taken for a document's. The request's deadline is signed too, so it
// cannot be pushed later; ts and from are not (ts is informative, from is
// the claim of an unsigned sender). Sign compacts the args as encoding/json
// writes them, so that the bytes signed are the bytes sent.
//
// A document (the retained config/desired) is signed the same way under
// the prefix "outpost-doc-v1" over unit id, kind (such as
// "config.desired"), issued, expires (empty when it does not expire), key
// name and the document's bytes (SignDocument, Verifier.CheckDocument).
//
// # What a unit accepts
//
// Verifier.Check refuses, with a *Error whose Reason says which:
//
//   - an unsigned request when Options.Require is set (otherwise it is run
//     and recorded as "unverified: <from>");
//   - a key the unit does not list;
//   - a signature for another unit (auth.unit; a forged auth.unit fails
//     the signature, as the unit id is signed);
//   - a bad signature (anything changed: args, id, command, times);
//   - an expiry before now, or more than Options.MaxTTL (1 h) after issue;
//   - an issue time more than Options.Skew (2 min) ahead of the unit's
//     clock;
//   - a replay: per key, the unit keeps the highest issue time it admitted
//     (the high-water mark) and the request ids it admitted within
//     Options.Window (5 min) below it. A request issued before
//     high-water - window is too old; an id seen before is a replay. So
//     commands may arrive out of order by up to the window, and a captured
//     command cannot be sent again, ever: before its expiry the id is
//     remembered, after it the expiry refuses it.
//
// Accepted requests update the replay state, which is written to
// Options.StatePath (temporary file, fsync, rename, fsync of the directory)
// before Check returns, so a replay after a restart or a power cut is still
// refused. When the state cannot be written the request is refused
// (ReasonStorage) rather than run unrecorded.
//
// The state is bounded: ids older than the window are dropped, and at most
// Options.MaxIDs (4096) are kept per key; when more arrive within a window,
// the oldest are dropped and everything issued at or before them is
// refused as too old.
//
// # State file
//
// JSON, schema version 1:
//
//	{"v":1,"unit":"u1","floor":T,"keys":{"alice":{"high_water":T,"floor":T,"ids":{"<request id>":T}}}}
//
// where T is an RFC 3339 time; the floors are absent until set. The file
// is replaced whole at each admission, so it is never torn. A file that
// cannot be read anyway (a damaged card), or of another version, is
// renamed to StatePath + ".damaged" and replaced by a state whose floor is
// the unit's clock at start: every request issued before is refused, so
// nothing admitted before can run again, and fresh commands run. A state
// for another unit id is started afresh: signatures name the unit, so that
// unit's commands are refused anyway. Keys no longer configured are
// dropped at the next write.
//
// Documents have no replay state: config/desired is retained and delivered
// again at every connection. Their order is the configuration's version
// number, which the configuration's applier checks.
package cmdauth
