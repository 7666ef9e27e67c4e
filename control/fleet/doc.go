// Package fleet is the control room's record of its units and the
// certificate authority that admits them to the broker.
//
// # Certificates
//
// The fleet CA (scripts/dev-ca.sh makes one for trials) signs a client
// certificate for each unit: a new ECDSA P-256 key made for it, common
// name = the unit id (the broker maps it to the MQTT user name, and its
// ACL confines the unit to outpost/<unit-id>/), extended key usage
// clientAuth only, valid for two years (never beyond the CA), and a
// random 127-bit serial. Control-room operators get the same kind of
// certificate with the common name "operator-NAME"; a unit id may not
// start with "operator-", so no unit certificate can pass for an operator.
//
// # Registry
//
// The registry is one JSON file, DIR/registry.json:
//
//	{"version": 1,
//	 "units": {"lamp-14": {"id": "lamp-14", "created": RFC 3339, "site": "...",
//	    "notes": "...", "serial": "5F3A...", "fingerprint": "AB:CD:...",
//	    "not_after": RFC 3339, "renewed": RFC 3339, "previous_serials": ["..."],
//	    "evidence_key": "outpost-evidence-ed25519 <base64>",
//	    "evidence_key_added": RFC 3339, "previous_evidence_keys": [...]}},
//	 "operators": {"operator-alice": {...same certificate fields...}}}
//
// serial is the certificate's serial in upper-case hex (as `openssl x509
// -serial` prints it); fingerprint is the SHA-256 of its DER encoding,
// upper-case hex pairs joined by ':' (as `openssl x509 -fingerprint
// -sha256` prints it). A version above 1 is refused rather than
// misread.
//
// Invariants:
//
//   - The file is only ever replaced whole: written to a temporary file in
//     DIR (".registry.json.tmp*"), synced, renamed over registry.json, and
//     DIR synced. A crash leaves the old registry or the new one; a
//     temporary file left behind is never read, and is removed by the next
//     change.
//   - Changes are serialised by an advisory lock on DIR/.lock (flock), so
//     two operators provisioning at once do not lose each other's units.
//   - A unit is recorded only after its certificate and key were handed
//     over (written to the output directory); a failure before that leaves
//     the registry as it was.
//   - Unit private keys are never stored: the registry holds only what
//     identifies a certificate and the unit's public evidence key.
package fleet
