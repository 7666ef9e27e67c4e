// Package identity is the unit's own evidence key: an Ed25519 key pair
// made on the unit, whose private half never leaves it, and whose public
// half the control room records (outpostctl provision register-key), so
// that what the unit signs — the manifests of the clips it hands over as
// evidence — can later be shown to come from that unit and to be unaltered.
//
// The key is kept at <data_dir>/identity/evidence.key as a PEM "PRIVATE
// KEY" block (PKCS #8, as openssl writes Ed25519 keys: `openssl pkey -in
// evidence.key -pubout` shows its public half), mode 0600. Invariants:
//
//   - It is created only when missing, atomically: written and synced
//     under a temporary name, then linked to its final name, which fails if
//     another process created it meanwhile. A power cut leaves either no key
//     or a whole one, never a partial file under the final name.
//   - It is never overwritten or replaced. A key file that cannot be read,
//     does not parse, or is readable by other users is an error: replacing
//     it silently would orphan every signature made with it.
//
// The public key is written as one line, "outpost-evidence-ed25519 " and
// the standard base64 of its 32 bytes.
package identity

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/outpost-cctv/outpost/internal/atomicfile"
)

// KeyType is the first word of a public key line.
const KeyType = "outpost-evidence-ed25519"

// Path is where the evidence key of a unit with that data directory is kept.
func Path(dataDir string) string { return filepath.Join(dataDir, "identity", "evidence.key") }

// Key is the unit's evidence key.
type Key struct {
	path string
	priv ed25519.PrivateKey
}

// Path is the key's file.
func (k *Key) Path() string { return k.path }

// PublicKey is the key's public half.
func (k *Key) PublicKey() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// PublicKeyString is the public key as one line:
// "outpost-evidence-ed25519 <base64>".
func (k *Key) PublicKeyString() string { return FormatPublicKey(k.PublicKey()) }

// Sign signs msg (Ed25519, the message itself, not a hash of it).
func (k *Key) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// Signer is the key as a crypto.Signer, for APIs that take one.
func (k *Key) Signer() crypto.Signer { return k.priv }

// Verify reports whether sig is pub's signature of msg.
func Verify(pub ed25519.PublicKey, msg, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
}

// FormatPublicKey writes pub as a public key line.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return KeyType + " " + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads a public key line, as PublicKeyString writes it
// (surrounding space is ignored).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	f := strings.Fields(s)
	if len(f) != 2 || f[0] != KeyType {
		return nil, fmt.Errorf("identity: %q is not an evidence public key: expected %q followed by base64, as 'outpost provision' prints it on the unit", abbrev(s), KeyType)
	}
	b, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return nil, fmt.Errorf("identity: the evidence public key's base64 is damaged (%v): copy the whole line 'outpost provision' printed", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("identity: the evidence public key is %d bytes, an Ed25519 key is %d: copy the whole line 'outpost provision' printed", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

func abbrev(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Load reads the evidence key of the unit whose data directory is
// dataDir. A missing key is an error satisfying errors.Is(err,
// fs.ErrNotExist).
func Load(dataDir string) (*Key, error) {
	return load(Path(dataDir))
}

func load(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("identity: no evidence key at %s: create it with 'outpost provision': %w", path, err)
		}
		return nil, fmt.Errorf("identity: evidence key: %w: the agent's user must own it (chown outpost %s)", err, path)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: evidence key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("identity: evidence key %s is not a regular file (%s)", path, st.Mode().Type())
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("identity: evidence key %s can be read by other users (mode %04o): run 'chmod 600 %s'", path, st.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10+1))
	if err != nil {
		return nil, fmt.Errorf("identity: reading evidence key %s: %w", path, err)
	}
	if len(b) > 64<<10 {
		return nil, corrupt(path, "the file is far larger than a key")
	}
	priv, err := parsePrivate(b)
	if err != nil {
		return nil, corrupt(path, err.Error())
	}
	return &Key{path: path, priv: priv}, nil
}

func corrupt(path, why string) error {
	return fmt.Errorf("identity: evidence key %s is damaged (%s). It was left as it is: what the unit signed with it can only be checked with it. Restore it from a backup; or, to start a new key, move it aside (mv %s %s.damaged), run 'outpost provision' again and register the new key in the control room", path, why, path, path)
}

func parsePrivate(b []byte) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("a PEM %q block, not PRIVATE KEY", block.Type)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("data after the key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an Ed25519 key", k)
	}
	return priv, nil
}

// LoadOrCreate reads the evidence key of the unit whose data directory is
// dataDir, creating it if there is none; created says whether it was made
// now. An existing key is never replaced, whatever its state: a damaged
// or unreadable one is an error that says what to do.
func LoadOrCreate(dataDir string) (k *Key, created bool, err error) {
	path := Path(dataDir)
	k, err = load(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	// A symbolic link that points nowhere is not "missing": refuse it
	// rather than create a key somewhere unexpected.
	if _, lerr := os.Lstat(path); lerr == nil {
		return nil, false, fmt.Errorf("identity: %s exists but cannot be opened (a dangling link?): remove it, or point it at the key", path)
	}
	if err := create(dataDir, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process made it between our look and our link.
			k, err = load(path)
			return k, false, err
		}
		return nil, false, err
	}
	k, err = load(path)
	return k, err == nil, err
}

func create(dataDir, path string) error {
	if st, err := os.Stat(dataDir); err != nil {
		return fmt.Errorf("identity: data_dir: %w: create it (the packaged agent has /var/lib/outpost) or check data_dir in the config", err)
	} else if !st.IsDir() {
		return fmt.Errorf("identity: data_dir %s is not a directory", dataDir)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("identity: generating the key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("identity: encoding the key: %w", err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	f, err := os.CreateTemp(dir, ".evidence.key.tmp*")
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	werr := f.Chmod(0o600)
	if werr == nil {
		_, werr = f.Write(pemBytes)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("identity: writing the key: %w", werr)
	}
	// Match the data directory's owner when run as root for the agent's
	// user, so that the agent can read the key it will sign with.
	if err := chownLike(dataDir, dir, tmp); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	// link(2), unlike rename(2), never replaces an existing file.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		// File systems without hard links: create exclusively instead.
		if err := writeExclusive(path, pemBytes); err != nil {
			return err
		}
		if err := chownLike(dataDir, dir, path); err != nil {
			return fmt.Errorf("identity: %w", err)
		}
	}
	os.Remove(tmp)
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	return nil
}

func writeExclusive(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("identity: creating %s: %w", path, err)
	}
	_, werr := f.Write(b)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return fmt.Errorf("identity: writing %s: %w", path, werr)
	}
	return nil
}
