// Package evidence is the signed statement a unit attaches to every clip
// and snapshot it hands over, and its verification in the control room.
//
// Footage handed to the police must be provably what the camera recorded.
// When the control room pulls a file, the unit writes a Manifest — which
// unit and camera, why the camera is there (purpose, DPIA reference), the
// privacy masks in force, the time range, the frame count, the file's
// size and SHA-256, the sealed footage segments it was cut from with their
// hash-chain links, who asked and for whom, the agent's version — and
// signs it with its evidence key (agent/identity), whose private half
// never leaves the unit. The control room keeps the signed document beside
// the file (CLIP.evidence.json); Verify later checks the signature against
// the key the control room registered for that unit when it was
// provisioned, and the file against the hash, and says in words what was
// shown.
//
// # Document
//
// A signed document is a JSON object:
//
//	{"manifest": {...}, "signature": {"alg": "ed25519", "key": "outpost-evidence-ed25519 <base64>", "sig": "<base64>"}}
//
// The signature is Ed25519 over the bytes "outpost-evidence-v1\n"
// followed by the manifest in compact JSON form (as encoding/json's
// Compact writes it), so the document may be pretty-printed without
// breaking it, while any change to a value does.
package evidence

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/outpost-cctv/outpost/agent/identity"
)

// Schema is the manifest's schema version.
const Schema = 1

// domain separates evidence signatures from every other use of the key.
const domain = "outpost-evidence-v1\n"

// Manifest is what the unit states about a file it hands over.
type Manifest struct {
	Schema int `json:"schema"`
	// Kind is "clip" (video/mp4) or "snapshot" (image/jpeg).
	Kind string `json:"kind"`
	Unit string `json:"unit"`
	Site string `json:"site,omitempty"`
	// Camera says which camera: its device or URL as configured, and the
	// picture size.
	Camera  string `json:"camera"`
	Purpose string `json:"purpose,omitempty"`
	DPIARef string `json:"dpia_ref,omitempty"`
	// Masks are the privacy masks in force when the file was made
	// (fractions of the picture, as configured); footage is masked when
	// recorded, so these are the masks the file carries.
	Masks  [][][2]float64 `json:"masks"`
	From   time.Time      `json:"from"`
	To     time.Time      `json:"to"`
	Frames int            `json:"frames"`
	File   File           `json:"file"`
	// Segments are the sealed footage segments the file was cut from,
	// with their hash-chain links (footage/doc.go, "Chain"). Unsealed is
	// set when part of the range was still in the segment being written,
	// which has no link yet.
	Segments []Segment `json:"segments"`
	Unsealed bool      `json:"unsealed,omitempty"`
	// Head is the footage chain's latest signed head when the file was
	// made.
	Head         *Head     `json:"head,omitempty"`
	Exported     time.Time `json:"exported"`
	Requester    string    `json:"requester"`
	Recipient    string    `json:"recipient,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	AgentVersion string    `json:"agent_version"`
	TransferID   string    `json:"transfer_id,omitempty"`
}

// File is the file the manifest describes.
type File struct {
	Type   string `json:"type"` // media type
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Segment is one sealed footage segment and its chain link.
type Segment struct {
	First  uint64 `json:"first_seq"`
	SHA256 string `json:"sha256"`
	Link   string `json:"link"`
}

// Head is a signed head of the footage chain.
type Head struct {
	Count  uint64    `json:"count"`
	Link   string    `json:"link"`
	Signed time.Time `json:"signed"`
}

// Signer is the unit's evidence key.
type Signer interface {
	Sign(msg []byte) []byte
	PublicKey() ed25519.PublicKey
}

type document struct {
	Manifest  json.RawMessage `json:"manifest"`
	Signature signature       `json:"signature"`
}

type signature struct {
	Alg string `json:"alg"`
	Key string `json:"key"`
	Sig string `json:"sig"`
}

// Seal signs m with the unit's key and returns the signed document,
// indented for people to read.
func Seal(m Manifest, key Signer) ([]byte, error) {
	m.Schema = Schema
	if m.Masks == nil {
		m.Masks = [][][2]float64{}
	}
	if m.Segments == nil {
		m.Segments = []Segment{}
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	doc := document{Manifest: body, Signature: signature{
		Alg: "ed25519",
		Key: identity.FormatPublicKey(key.PublicKey()),
		Sig: base64.StdEncoding.EncodeToString(key.Sign(append([]byte(domain), body...))),
	}}
	return json.MarshalIndent(doc, "", "  ")
}

// Certificate is what Verify showed.
type Certificate struct {
	Manifest Manifest
	// Key is the public key that signed, as registered.
	Key string
	// Previous is set when the key was the unit's earlier key (replaced
	// since), still valid for what it signed before.
	Previous bool
}

// Keys are a unit's registered evidence keys: the current one first,
// then any it had before.
type Keys struct {
	Unit     string
	Current  string
	Previous []string
}

// Problem is a failed verification: what does not hold, in words.
type Problem struct{ What string }

func (p *Problem) Error() string { return "evidence: " + p.What }

func problem(format string, args ...any) error { return &Problem{What: fmt.Sprintf(format, args...)} }

// Verify checks a signed document against the unit's registered keys and
// the file it describes. It returns a *Problem when the evidence does not
// hold (bad signature, another unit's key, the file altered), another
// error when it could not be checked (the file unreadable).
func Verify(doc []byte, keys Keys, file io.Reader) (Certificate, error) {
	var c Certificate
	var d document
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return c, problem("the manifest is not a signed evidence document (%v)", err)
	}
	if dec.More() || len(d.Manifest) == 0 {
		return c, problem("the manifest is not a signed evidence document (it must hold exactly one object with a manifest and a signature)")
	}
	if d.Signature.Alg != "ed25519" {
		return c, problem("signature algorithm %q is not ed25519", d.Signature.Alg)
	}
	pub, err := identity.ParsePublicKey(d.Signature.Key)
	if err != nil {
		return c, problem("the signing key in the manifest does not parse: %v", err)
	}
	line := identity.FormatPublicKey(pub)
	switch {
	case keys.Current != "" && sameKey(keys.Current, line):
	case containsKey(keys.Previous, line):
		c.Previous = true
	default:
		if keys.Current == "" {
			return c, problem("unit %s has no registered evidence key: register it (outpostctl provision register-key) from the unit's own `outpost provision` output, never from the manifest", keys.Unit)
		}
		return c, problem("the manifest was signed by key %s, which is not a key registered for unit %s", abbrev(line), keys.Unit)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(d.Signature.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return c, problem("the signature is not %d bytes of base64", ed25519.SignatureSize)
	}
	var body bytes.Buffer
	if err := json.Compact(&body, d.Manifest); err != nil {
		return c, problem("the manifest is not JSON: %v", err)
	}
	if !ed25519.Verify(pub, append([]byte(domain), body.Bytes()...), sig) {
		return c, problem("the signature does not match the manifest: the manifest was altered after the unit signed it")
	}
	var m Manifest
	if err := json.Unmarshal(body.Bytes(), &m); err != nil {
		return c, problem("the signed manifest does not decode: %v", err)
	}
	if m.Schema != Schema {
		return c, problem("manifest schema %d is not %d: use an outpostctl that knows it", m.Schema, Schema)
	}
	if keys.Unit != "" && m.Unit != keys.Unit {
		return c, problem("the manifest is of unit %s, checked against the keys of unit %s", m.Unit, keys.Unit)
	}
	h := sha256.New()
	n, err := io.Copy(h, file)
	if err != nil {
		return c, fmt.Errorf("evidence: reading the file: %w", err)
	}
	if n != m.File.Size {
		return c, problem("the file is %d bytes, the signed manifest says %d: it is not the file the unit handed over", n, m.File.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.File.SHA256 {
		return c, problem("the file's SHA-256 is %s, the signed manifest says %s: the file was altered", got, m.File.SHA256)
	}
	c.Manifest, c.Key = m, line
	return c, nil
}

func sameKey(a, b string) bool {
	pa, err := identity.ParsePublicKey(a)
	if err != nil {
		return false
	}
	return identity.FormatPublicKey(pa) == b
}

func containsKey(list []string, line string) bool {
	for _, k := range list {
		if sameKey(k, line) {
			return true
		}
	}
	return false
}

func abbrev(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 || len(f[1]) < 12 {
		return line
	}
	return f[1][:12] + "…"
}

// String is the certificate in words, for the person who hands the
// evidence over.
func (c Certificate) String() string {
	m := c.Manifest
	var b strings.Builder
	fmt.Fprintf(&b, "EVIDENCE VERIFIED\n\n")
	fmt.Fprintf(&b, "The file is the %s unit %s handed over, unaltered:\n", kindWord(m.Kind), m.Unit)
	fmt.Fprintf(&b, "  file          %d bytes, SHA-256 %s\n", m.File.Size, m.File.SHA256)
	fmt.Fprintf(&b, "  signed by     the unit's evidence key %s", abbrev(c.Key))
	if c.Previous {
		fmt.Fprintf(&b, " (the unit's earlier key, registered before its current one)")
	}
	fmt.Fprintf(&b, "\n\nWhat the unit stated:\n")
	fmt.Fprintf(&b, "  unit          %s", m.Unit)
	if m.Site != "" {
		fmt.Fprintf(&b, " at %s", m.Site)
	}
	fmt.Fprintf(&b, "\n  camera        %s\n", m.Camera)
	if m.Kind == "snapshot" {
		fmt.Fprintf(&b, "  taken         %s\n", m.From.UTC().Format(time.RFC3339Nano))
	} else {
		fmt.Fprintf(&b, "  footage       %s to %s (UTC), %d frames\n", m.From.UTC().Format(time.RFC3339), m.To.UTC().Format(time.RFC3339), m.Frames)
	}
	if m.Purpose != "" {
		fmt.Fprintf(&b, "  purpose       %s\n", m.Purpose)
	}
	if m.DPIARef != "" {
		fmt.Fprintf(&b, "  DPIA          %s\n", m.DPIARef)
	}
	if len(m.Masks) == 0 {
		fmt.Fprintf(&b, "  privacy masks none\n")
	} else {
		fmt.Fprintf(&b, "  privacy masks %d in force, blanked when recorded: %v\n", len(m.Masks), m.Masks)
	}
	switch {
	case len(m.Segments) == 0 && m.Unsealed:
		fmt.Fprintf(&b, "  segments      the footage was still in the segment being written (no chain link yet)\n")
	default:
		fmt.Fprintf(&b, "  segments      %d sealed segment(s) of the unit's hash chain", len(m.Segments))
		if m.Unsealed {
			fmt.Fprintf(&b, ", and the segment being written")
		}
		fmt.Fprintf(&b, "\n")
		for _, s := range m.Segments {
			fmt.Fprintf(&b, "                first seq %d, SHA-256 %s…, link %s…\n", s.First, short(s.SHA256), short(s.Link))
		}
	}
	if m.Head != nil {
		fmt.Fprintf(&b, "  chain head    %d links, %s…, signed %s\n", m.Head.Count, short(m.Head.Link), m.Head.Signed.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "  exported      %s by %s", m.Exported.UTC().Format(time.RFC3339), m.Requester)
	if m.Recipient != "" {
		fmt.Fprintf(&b, " for %s", m.Recipient)
	}
	if m.Reason != "" {
		fmt.Fprintf(&b, " (%s)", m.Reason)
	}
	fmt.Fprintf(&b, "\n  agent         %s\n", m.AgentVersion)
	return b.String()
}

func kindWord(k string) string {
	if k == "snapshot" {
		return "snapshot"
	}
	return "clip"
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

// IsProblem reports whether err says the evidence does not hold (as
// opposed to it not being checkable).
func IsProblem(err error) bool {
	var p *Problem
	return errors.As(err, &p)
}
