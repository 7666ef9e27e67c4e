package cmdauth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-cctv/outpost/uplink/wire"
)

// Domain-separation prefixes of the signed messages.
const (
	cmdDomain = "outpost-cmd-v1"
	docDomain = "outpost-doc-v1"
)

// PublicKeyPrefix starts the text form of an operator's public key.
const PublicKeyPrefix = "outpost-operator-ed25519"

// DefaultTTL is how long a signature made with ttl 0 by Sign is valid.
const DefaultTTL = 5 * time.Minute

// message appends the length-prefixed fields to the domain prefix.
func message(domain string, fields ...[]byte) []byte {
	n := len(domain)
	for _, f := range fields {
		n += 4 + len(f)
	}
	b := make([]byte, 0, n)
	b = append(b, domain...)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

func nanos(t time.Time) []byte {
	if t.IsZero() {
		return nil
	}
	return strconv.AppendInt(nil, t.UnixNano(), 10)
}

// commandMessage is what is signed for command name of req, sent to unit.
func commandMessage(unit, name string, req *wire.Request, a *wire.Auth) []byte {
	var deadline []byte
	if req.Deadline != nil {
		deadline = nanos(*req.Deadline)
	}
	return message(cmdDomain,
		[]byte(unit), []byte(name), []byte(req.ID),
		nanos(a.Issued), nanos(a.Expires),
		[]byte(a.Key), deadline, req.Args)
}

func documentMessage(unit, kind string, doc []byte, a *wire.Auth) []byte {
	return message(docDomain,
		[]byte(unit), []byte(kind),
		nanos(a.Issued), nanos(a.Expires),
		[]byte(a.Key), doc)
}

// Sign signs command name of req for unit with the operator's key priv,
// named keyName: it sets req.Auth, valid from now for ttl (DefaultTTL when
// 0; a unit refuses more than its MaxTTL, 1 h by default). Set req.ID,
// req.Deadline and req.Args before: they are signed. req.Args are
// rewritten compacted, as encoding/json sends them.
func Sign(priv ed25519.PrivateKey, keyName, unit, name string, req *wire.Request, now time.Time, ttl time.Duration) error {
	if len(priv) != ed25519.PrivateKeySize {
		return errors.New("cmdauth: the signing key is not an Ed25519 private key")
	}
	if !wire.ValidKeyName(keyName) {
		return fmt.Errorf("cmdauth: key name %q is not 1-64 characters of A-Z, a-z, 0-9, '_', '.' and '-': rename the key file", keyName)
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	args, err := sentArgs(req.Args)
	if err != nil {
		return fmt.Errorf("cmdauth: %s arguments: %w", name, err)
	}
	req.Args = args
	issued := now.UTC().Truncate(time.Millisecond)
	a := &wire.Auth{Key: keyName, Unit: unit, Issued: issued, Expires: issued.Add(ttl)}
	a.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, commandMessage(unit, name, req, a)))
	req.Auth = a
	return nil
}

// sentArgs returns args as encoding/json writes a json.RawMessage
// (compacted, HTML characters escaped), nil for none or null, so that what
// is signed is what the unit reads.
func sentArgs(args json.RawMessage) (json.RawMessage, error) {
	t := bytes.TrimSpace(args)
	if len(t) == 0 || string(t) == "null" {
		return nil, nil
	}
	b, err := json.Marshal(json.RawMessage(t))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// SignDocument signs doc, a document of the given kind (such as
// "config.desired") for unit, with the operator's key priv, named keyName.
// ttl 0 makes a signature that does not expire (a retained document may
// wait days for an offline unit).
func SignDocument(priv ed25519.PrivateKey, keyName, unit, kind string, doc []byte, now time.Time, ttl time.Duration) (*wire.Auth, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("cmdauth: the signing key is not an Ed25519 private key")
	}
	if !wire.ValidKeyName(keyName) {
		return nil, fmt.Errorf("cmdauth: key name %q is not 1-64 characters of A-Z, a-z, 0-9, '_', '.' and '-': rename the key file", keyName)
	}
	issued := now.UTC().Truncate(time.Millisecond)
	a := &wire.Auth{Key: keyName, Unit: unit, Issued: issued}
	if ttl > 0 {
		a.Expires = issued.Add(ttl)
	}
	a.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, documentMessage(unit, kind, doc, a)))
	return a, nil
}

// FormatPublicKey returns the line a unit's configuration lists for an
// operator's key: "outpost-operator-ed25519 BASE64".
func FormatPublicKey(pub ed25519.PublicKey) string {
	return PublicKeyPrefix + " " + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads a key line written by FormatPublicKey. The prefix
// may be left out; a trailing comment after a space is ignored.
func ParsePublicKey(line string) (ed25519.PublicKey, error) {
	f := strings.Fields(line)
	if len(f) > 0 && f[0] == PublicKeyPrefix {
		f = f[1:]
	}
	if len(f) == 0 {
		return nil, fmt.Errorf("cmdauth: empty operator key: want %q followed by the base64 public key, as 'outpostctl operator keygen' prints", PublicKeyPrefix)
	}
	b, err := base64.StdEncoding.DecodeString(f[0])
	if err != nil {
		return nil, fmt.Errorf("cmdauth: operator key %.20q is not base64: copy the whole line 'outpostctl operator keygen' printed", f[0])
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("cmdauth: operator key is %d bytes, an Ed25519 public key is %d: copy the whole line 'outpostctl operator keygen' printed", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// MarshalPrivateKey encodes priv as PEM PKCS#8, as openssl writes it.
func MarshalPrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("cmdauth: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey reads a PEM PKCS#8 Ed25519 private key ("openssl genpkey
// -algorithm ed25519" writes one). what names the source in errors.
func ParsePrivateKey(what string, b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("cmdauth: %s holds no PEM block: want an Ed25519 private key as 'outpostctl operator keygen' or 'openssl genpkey -algorithm ed25519' writes", what)
	}
	if blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("cmdauth: %s holds a %q PEM block, want \"PRIVATE KEY\" (PKCS#8 Ed25519)", what, blk.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("cmdauth: %s: %w", what, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("cmdauth: %s holds a %T, want an Ed25519 key", what, k)
	}
	return priv, nil
}

// LoadPrivateKey reads an operator's key file; its name is the file's base
// name without extension ("keys/alice.key" is "alice").
func LoadPrivateKey(path string) (priv ed25519.PrivateKey, name string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("cmdauth: signing key: %w", err)
	}
	priv, err = ParsePrivateKey(path, b)
	if err != nil {
		return nil, "", err
	}
	name = KeyNameOf(path)
	if !wire.ValidKeyName(name) {
		return nil, "", fmt.Errorf("cmdauth: signing key %s: the key's name is the file's name without extension, and %q is not 1-64 characters of A-Z, a-z, 0-9, '_', '.' and '-': rename the file", path, name)
	}
	return priv, name, nil
}

// KeyNameOf is the key name of a key file: its base name without extension.
func KeyNameOf(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}
