package ota

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Bundle layout constants; doc.go describes the format.
const (
	// Magic starts every bundle. Its first byte is not ASCII and it holds
	// a CR LF pair, so text-mode transfers that mangle it are caught.
	Magic = "\x89OTA\r\n\x1a\n"
	// FormatVersion is the layout of the header.
	FormatVersion = 1
	// ManifestSchema is the schema of the manifest JSON.
	ManifestSchema = 1

	headerSize     = 8 + 2 + 2 + 4 + 8
	signatureSize  = 64
	prefixSize     = headerSize + signatureSize
	maxManifest    = 64 << 10
	maxPayloadSize = 1 << 30
	maxBinarySize  = 1 << 30
)

// Payload encodings.
const (
	EncodingZstd      = "zstd"       // the binary, compressed with zstd
	EncodingZstdDelta = "zstd-delta" // the binary, compressed with zstd using the base binary as a raw dictionary
	// EncodingBsdiffZstd is a bsdiff delta from the base binary, its
	// streams compressed with zstd (delta.go): what Build makes now.
	EncodingBsdiffZstd = "bsdiff-zstd"
)

// Architectures an agent is built for.
var Arches = []string{"arm64", "armv7", "armv6", "amd64"}

// Manifest describes a release. Its exact bytes are what the release key
// signs.
type Manifest struct {
	Schema  int    `json:"schema"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	// Size and SHA256 are those of the agent binary once installed.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// MinFromVersion: units running an older version refuse the release.
	MinFromVersion string `json:"min_from_version,omitempty"`
	// AllowDowngrade lets units running a newer version install it.
	AllowDowngrade bool   `json:"allow_downgrade"`
	Encoding       string `json:"encoding"`
	// DeltaBaseSHA256 is the binary a delta payload was made against.
	DeltaBaseSHA256 string `json:"delta_base_sha256,omitempty"`
	// PayloadSize and PayloadSHA256 are those of the payload as it is in
	// the bundle, checked before anything is decompressed.
	PayloadSize   int64     `json:"payload_size"`
	PayloadSHA256 string    `json:"payload_sha256"`
	Created       time.Time `json:"created"`
}

// IsDelta reports whether the payload needs the base binary.
func (m Manifest) IsDelta() bool {
	return m.Encoding == EncodingZstdDelta || m.Encoding == EncodingBsdiffZstd
}

// check validates the fields of a manifest, before or after signing.
func (m Manifest) check() error {
	bad := func(format string, a ...any) error {
		return refuse(ErrManifest, "manifest: "+fmt.Sprintf(format, a...))
	}
	if m.Schema != ManifestSchema {
		return bad("schema %d, this agent reads schema %d: update in steps, through a release that reads both", m.Schema, ManifestSchema)
	}
	if _, err := ParseVersion(m.Version); err != nil {
		return bad("version: %s", Reason(err))
	}
	if !validArch(m.Arch) {
		return bad("arch %q is not one of %v", m.Arch, Arches)
	}
	if m.Size <= 0 || m.Size > maxBinarySize {
		return bad("size %d out of range", m.Size)
	}
	if !isSHA256(m.SHA256) {
		return bad("sha256 %q is not 64 lower-case hex digits", m.SHA256)
	}
	if m.MinFromVersion != "" {
		if _, err := ParseVersion(m.MinFromVersion); err != nil {
			return bad("min_from_version: %s", Reason(err))
		}
	}
	switch m.Encoding {
	case EncodingZstd:
		if m.DeltaBaseSHA256 != "" {
			return bad("delta_base_sha256 set on a %q payload", m.Encoding)
		}
	case EncodingZstdDelta, EncodingBsdiffZstd:
		if !isSHA256(m.DeltaBaseSHA256) {
			return bad("a %q payload needs delta_base_sha256 (64 hex digits)", m.Encoding)
		}
	default:
		return bad("encoding %q is not %q, %q or %q: a newer outpostctl built it; update the agent in steps", m.Encoding, EncodingZstd, EncodingZstdDelta, EncodingBsdiffZstd)
	}
	if m.PayloadSize <= 0 || m.PayloadSize > maxPayloadSize {
		return bad("payload_size %d out of range", m.PayloadSize)
	}
	if !isSHA256(m.PayloadSHA256) {
		return bad("payload_sha256 %q is not 64 lower-case hex digits", m.PayloadSHA256)
	}
	return nil
}

func validArch(a string) bool {
	for _, x := range Arches {
		if a == x {
			return true
		}
	}
	return false
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Bundle is an opened bundle whose manifest signature has been verified.
// Its payload has not been read yet: CheckPayload hashes it.
type Bundle struct {
	Manifest Manifest
	// RawManifest is the signed bytes.
	RawManifest []byte
	// Key is the pinned key that signed it.
	Key PublicKey

	r          io.ReaderAt
	payloadOff int64
}

// Payload returns the payload section of the bundle.
func (b *Bundle) Payload() *io.SectionReader {
	return io.NewSectionReader(b.r, b.payloadOff, b.Manifest.PayloadSize)
}

// CheckPayload hashes the payload and compares it with the signed
// manifest. Nothing is decompressed.
func (b *Bundle) CheckPayload() error {
	h := sha256.New()
	if _, err := io.Copy(h, b.Payload()); err != nil {
		return fmt.Errorf("ota: reading the payload: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != b.Manifest.PayloadSHA256 {
		return refuse(ErrPayloadHash, fmt.Sprintf("the payload's sha256 is %s, the signed manifest says %s: the bundle was damaged or altered; download it again", got[:16], b.Manifest.PayloadSHA256[:16]))
	}
	return nil
}

// OpenBundle reads a bundle of size bytes from r. In this order it checks
// that keys are configured, reads the fixed header, checks the lengths
// against size, reads the manifest bytes and verifies their signature
// against the pinned keys; only then is the manifest parsed. The payload is
// not read.
func OpenBundle(r io.ReaderAt, size int64, keys []PublicKey) (*Bundle, error) {
	if len(keys) == 0 {
		return nil, refuse(ErrNoKeys, ErrNoKeys.Error())
	}
	var hdr [prefixSize]byte
	if size < int64(len(Magic)) {
		return nil, refuse(ErrTruncated, fmt.Sprintf("the file has %d bytes, too few for a release bundle: download it again", size))
	}
	n, err := r.ReadAt(hdr[:min(int64(prefixSize), size)], 0)
	if n < len(Magic) {
		return nil, fmt.Errorf("ota: reading the bundle header: %w", err)
	}
	if string(hdr[:len(Magic)]) != Magic {
		return nil, refuse(ErrNotBundle, "the file is not a release bundle (made by 'outpostctl release build'): wrong magic")
	}
	if size < prefixSize {
		return nil, refuse(ErrTruncated, fmt.Sprintf("the bundle has %d bytes, less than its %d-byte header: download it again", size, prefixSize))
	}
	if n < prefixSize {
		return nil, fmt.Errorf("ota: reading the bundle header: %w", err)
	}
	if v := binary.BigEndian.Uint16(hdr[8:]); v != FormatVersion {
		return nil, refuse(ErrFormat, fmt.Sprintf("bundle format %d, this agent reads format %d: build the bundle with this agent's outpostctl", v, FormatVersion))
	}
	if binary.BigEndian.Uint16(hdr[10:]) != 0 {
		return nil, refuse(ErrFormat, "bundle header: reserved field is not zero")
	}
	mlen := int64(binary.BigEndian.Uint32(hdr[12:]))
	plen := binary.BigEndian.Uint64(hdr[16:])
	if mlen == 0 || mlen > maxManifest {
		return nil, refuse(ErrFormat, fmt.Sprintf("bundle header: manifest length %d out of range (1 to %d)", mlen, maxManifest))
	}
	if plen == 0 || plen > maxPayloadSize {
		return nil, refuse(ErrFormat, fmt.Sprintf("bundle header: payload length %d out of range (1 to %d)", plen, maxPayloadSize))
	}
	want := prefixSize + mlen + int64(plen)
	switch {
	case size < want:
		return nil, refuse(ErrTruncated, fmt.Sprintf("the bundle has %d bytes, its header says %d: download it again", size, want))
	case size > want:
		return nil, refuse(ErrFormat, fmt.Sprintf("the bundle has %d bytes after its end (%d bytes): download it again", size-want, want))
	}
	raw := make([]byte, mlen)
	if _, err := r.ReadAt(raw, prefixSize); err != nil {
		return nil, fmt.Errorf("ota: reading the bundle manifest: %w", err)
	}
	key, err := verify(keys, raw, hdr[headerSize:prefixSize])
	if err != nil {
		return nil, err
	}
	// Signed by a pinned key: the manifest may be parsed now.
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, refuse(ErrManifest, fmt.Sprintf("manifest: %v", err))
	}
	if dec.More() {
		return nil, refuse(ErrManifest, "manifest: data after the JSON object")
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	if m.PayloadSize != int64(plen) {
		return nil, refuse(ErrFormat, fmt.Sprintf("bundle header says the payload has %d bytes, the signed manifest %d", plen, m.PayloadSize))
	}
	return &Bundle{Manifest: m, RawManifest: raw, Key: key, r: r, payloadOff: prefixSize + mlen}, nil
}

// writeBundle writes header, signature, manifest and payload.
func writeBundle(w io.Writer, key PrivateKey, raw, payload []byte) error {
	var hdr [prefixSize]byte
	copy(hdr[:], Magic)
	binary.BigEndian.PutUint16(hdr[8:], FormatVersion)
	binary.BigEndian.PutUint32(hdr[12:], uint32(len(raw)))
	binary.BigEndian.PutUint64(hdr[16:], uint64(len(payload)))
	copy(hdr[headerSize:], key.Sign(raw))
	for _, b := range [][]byte{hdr[:], raw, payload} {
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("ota: writing the bundle: %w", err)
		}
	}
	return nil
}
