package ota

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PublicKeyPrefix starts every public key line:
// "outpost-release-ed25519 <base64 of the 32-byte key> [comment]".
const PublicKeyPrefix = "outpost-release-ed25519"

// privatePEMType is the PEM block type of a private key file. The block
// holds the 32-byte Ed25519 seed.
const privatePEMType = "OUTPOST RELEASE SIGNING KEY"

// PublicKey is a pinned release key.
type PublicKey struct {
	Key     ed25519.PublicKey
	Comment string
}

// ID names the key in messages: the first 8 bytes of the SHA-256 of the
// key, in hex.
func (k PublicKey) ID() string {
	h := sha256.Sum256(k.Key)
	return hex.EncodeToString(h[:8])
}

// String is the key's line, as written to a .pub file.
func (k PublicKey) String() string {
	s := PublicKeyPrefix + " " + base64.StdEncoding.EncodeToString(k.Key)
	if k.Comment != "" {
		s += " " + k.Comment
	}
	return s
}

// Describe names the key for a person: its id and comment.
func (k PublicKey) Describe() string {
	if k.Comment != "" {
		return k.ID() + " (" + k.Comment + ")"
	}
	return k.ID()
}

// ParsePublicKeys reads public key lines; blank lines and lines starting
// with # are skipped. Several keys may be pinned at once, so that a new
// key can be introduced before the old one is retired.
func ParsePublicKeys(b []byte) ([]PublicKey, error) {
	var keys []PublicKey
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if f[0] != PublicKeyPrefix || len(f) < 2 {
			return nil, fmt.Errorf("ota: public key line %d: want %q followed by the key in base64 (as written by 'outpostctl release keygen')", i+1, PublicKeyPrefix)
		}
		raw, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("ota: public key line %d: not a %d-byte Ed25519 key in base64", i+1, ed25519.PublicKeySize)
		}
		keys = append(keys, PublicKey{Key: ed25519.PublicKey(raw), Comment: strings.Join(f[2:], " ")})
	}
	return keys, nil
}

// LoadPublicKeys reads the public key files at paths.
func LoadPublicKeys(paths ...string) ([]PublicKey, error) {
	var keys []PublicKey
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("ota: release public key: %w", err)
		}
		k, err := ParsePublicKeys(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		keys = append(keys, k...)
	}
	return keys, nil
}

// PrivateKey signs releases. It stays in the control room, offline.
type PrivateKey struct {
	key     ed25519.PrivateKey
	Comment string
}

// GenerateKey makes a new release signing key.
func GenerateKey() (PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("ota: generating a key: %w", err)
	}
	return PrivateKey{key: k}, nil
}

// Public returns the key the units pin.
func (k PrivateKey) Public() PublicKey {
	return PublicKey{Key: k.key.Public().(ed25519.PublicKey), Comment: k.Comment}
}

// Sign signs msg.
func (k PrivateKey) Sign(msg []byte) []byte { return ed25519.Sign(k.key, msg) }

// MarshalPEM encodes the key as a PEM file with a header saying what it is.
func (k PrivateKey) MarshalPEM() []byte {
	h := map[string]string{
		"Warning": "whoever has this file can sign agent releases; keep it offline, mode 0600",
		"Key-Id":  k.Public().ID(),
	}
	if k.Comment != "" {
		h["Comment"] = k.Comment
	}
	return pem.EncodeToMemory(&pem.Block{Type: privatePEMType, Headers: h, Bytes: k.key.Seed()})
}

// ParsePrivateKey reads a key written by MarshalPEM.
func ParsePrivateKey(b []byte) (PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != privatePEMType {
		return PrivateKey{}, fmt.Errorf("ota: not a release signing key: want a PEM block %q (as written by 'outpostctl release keygen')", privatePEMType)
	}
	if len(blk.Bytes) != ed25519.SeedSize {
		return PrivateKey{}, fmt.Errorf("ota: release signing key: %d bytes, want a %d-byte Ed25519 seed", len(blk.Bytes), ed25519.SeedSize)
	}
	return PrivateKey{key: ed25519.NewKeyFromSeed(blk.Bytes), Comment: blk.Headers["Comment"]}, nil
}

// LoadPrivateKey reads a signing key file, refusing one that others than
// its owner may read.
func LoadPrivateKey(path string) (PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("ota: release signing key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return PrivateKey{}, fmt.Errorf("ota: release signing key %s is readable by others (mode %04o): run 'chmod 600 %s', and make a new key if it may have been copied", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("ota: release signing key: %w", err)
	}
	k, err := ParsePrivateKey(b)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// Key file names written by WriteKeyFiles.
const (
	PrivateKeyFile = "release.key"
	PublicKeyFile  = "release.pub"
)

// WriteKeyFiles writes k to dir as release.key (0600) and release.pub. It
// never overwrites an existing key: a lost signing key cannot be undone.
func WriteKeyFiles(dir string, k PrivateKey) (privPath, pubPath string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("ota: %w", err)
	}
	privPath, pubPath = filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("ota: %s exists: not overwriting a release key; choose another directory", p)
		}
	}
	if err := writeNew(privPath, k.MarshalPEM(), 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(pubPath, []byte(k.Public().String()+"\n"), 0o644); err != nil {
		return "", "", err
	}
	return privPath, pubPath, nil
}

func writeNew(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("ota: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("ota: writing %s: %w", path, err)
	}
	return nil
}

// verify returns the first key that verifies sig over msg.
func verify(keys []PublicKey, msg, sig []byte) (PublicKey, error) {
	if len(keys) == 0 {
		return PublicKey{}, refuse(ErrNoKeys, ErrNoKeys.Error())
	}
	for _, k := range keys {
		if len(k.Key) == ed25519.PublicKeySize && ed25519.Verify(k.Key, msg, sig) {
			return k, nil
		}
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID()
	}
	return PublicKey{}, refuse(ErrSignature, fmt.Sprintf("the release is not signed by a pinned key (%s): it was changed after signing, or signed with another key; nothing was installed", strings.Join(ids, ", ")))
}
