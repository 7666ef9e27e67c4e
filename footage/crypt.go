package footage

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/chacha20poly1305"
)

// Encryption at rest (see doc.go): the payloads of frame and event records
// of an encrypted segment are sealed with XChaCha20-Poly1305 under the
// store's key, with a random nonce stored before the ciphertext and the
// record's header as additional data.

// KeySize is the size of a footage encryption key: 32 bytes.
const KeySize = chacha20poly1305.KeySize

// sealOverhead is what sealing adds to a payload: the nonce before the
// ciphertext and the Poly1305 tag after it.
const sealOverhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// Errors of reading encrypted footage, which callers tell apart from
// damage: the footage is intact, the key is what is wrong.
var (
	// ErrNoKey: the footage read is encrypted and the store was opened
	// without a key.
	ErrNoKey = errors.New("footage: the footage is encrypted and no key was given")
	// ErrWrongKey: the footage read is encrypted with another key than
	// the store's.
	ErrWrongKey = errors.New("footage: the footage is encrypted with another key")
)

// keyIDPrefix separates the key id's hash from any other use of the key.
const keyIDPrefix = "outpost footage key id v1\n"

// keyID names a key without revealing it: the first 4 bytes of
// SHA-256(keyIDPrefix || key), stored in the header of every segment it
// encrypts so that a wrong key is told apart from damage.
func keyID(key []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(keyIDPrefix))
	h.Write(key)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// KeyID is the id of key as error messages and listings show it: 8 hex
// digits, the same for the same key on every unit.
func KeyID(key []byte) string { return fmtKeyID(keyID(key)) }

func fmtKeyID(id uint32) string { return fmt.Sprintf("%08x", id) }

// sealer encrypts and authenticates record payloads. It is safe for
// concurrent use.
type sealer struct {
	aead cipher.AEAD
	id   uint32
	// source names where the key came from, for errors: the key file, or
	// "the key given".
	source string
}

func newSealer(key []byte, source string) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("footage: encryption key of %d bytes: it must be %d", len(key), KeySize)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("footage: encryption key: %w", err)
	}
	return &sealer{aead: aead, id: keyID(key), source: source}, nil
}

// seal appends nonce || ciphertext || tag of plain to dst, authenticating
// ad (bytes 8-39 of the record header) with it.
func (c *sealer) seal(dst, ad, plain []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, chacha20poly1305.NonceSizeX)...)
	nonce := dst[n:]
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		// crypto/rand does not fail on the systems Go supports; a nonce
		// that is not random must never be used.
		panic(fmt.Sprintf("footage: no randomness for a nonce: %v", err))
	}
	return c.aead.Seal(dst, nonce, plain, ad)
}

// open authenticates and decrypts a stored payload in place, returning the
// plaintext (a prefix of stored[NonceSizeX:]). ok is false when the
// payload does not authenticate: damaged or altered, or another key.
func (c *sealer) open(ad, stored []byte) ([]byte, bool) {
	if len(stored) < sealOverhead {
		return nil, false
	}
	nonce, ct := stored[:chacha20poly1305.NonceSizeX], stored[chacha20poly1305.NonceSizeX:]
	plain, err := c.aead.Open(ct[:0], nonce, ct, ad)
	if err != nil {
		return nil, false
	}
	return plain, true
}

// sealed reports whether records of kind are encrypted in an encrypted
// segment: frames and events are; clock corrections and the footer, which
// hold only times, sequences and offsets, are not, so that recovery,
// retention and verification work without the key.
func sealed(kind byte) bool { return kind == kindFrame || kind == kindEvent }

// LoadKey reads a footage encryption key from path: exactly 32 raw bytes,
// or 64 hexadecimal digits (a trailing newline allowed). A key file others
// may read is refused, as the unit's evidence key is.
func LoadKey(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("footage: no encryption key file given: set privacy.encryption_key_file to the key's full path")
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("footage: encryption key file %s does not exist: footage is not recorded in clear when encryption is asked for; restore the key file (or create one with 'head -c 32 /dev/urandom > %s; chmod 600 %s' for a new store, keeping a copy off the unit)", path, path, path)
		}
		return nil, fmt.Errorf("footage: encryption key file %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("footage: encryption key file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("footage: encryption key file %s is not a regular file: give the path of the key file itself", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("footage: encryption key file %s can be read by other users (mode %04o): run 'chmod 600 %s'", path, st.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return nil, fmt.Errorf("footage: read encryption key file %s: %w", path, err)
	}
	key, err := parseKey(b)
	if err != nil {
		return nil, fmt.Errorf("footage: encryption key file %s %v", path, err)
	}
	return key, nil
}

// parseKey accepts 32 raw bytes or 64 hex digits with optional surrounding
// white space.
func parseKey(b []byte) ([]byte, error) {
	if len(b) == KeySize {
		return append([]byte(nil), b...), nil
	}
	t := bytes.TrimSpace(b)
	if len(t) == 2*KeySize {
		key := make([]byte, KeySize)
		if _, err := hex.Decode(key, t); err == nil {
			return key, nil
		}
		return nil, fmt.Errorf("holds %d bytes that are not %d hexadecimal digits: it must hold exactly %d raw bytes or %d hex digits", len(b), 2*KeySize, KeySize, 2*KeySize)
	}
	return nil, fmt.Errorf("holds %d bytes: it must hold exactly %d raw bytes or %d hex digits (e.g. 'head -c 32 /dev/urandom')", len(b), KeySize, 2*KeySize)
}

// sealRecord encodes a frame or event record of an encrypted segment: the
// header, the sealed payload and the padding, in a buffer reused from write
// to write (the caller holds wmu). It sets h.length and returns the whole
// record and the stored payload within it.
func (s *Store) sealRecord(h *recHeader, plain []byte) (whole, stored []byte) {
	n := len(plain) + sealOverhead
	size := int(recordSize(n))
	if cap(s.sealBuf) < size {
		s.sealBuf = make([]byte, size)
	}
	b := s.sealBuf[:size]
	h.length = uint32(n)
	h.put(b) // bytes 8-39, the additional data, are final
	stored = s.crypt.seal(b[recHeaderSize:recHeaderSize], b[8:recHeaderSize], plain)
	clear(b[recHeaderSize+n:])
	encodeRecordHeader(*h, stored, b)
	return b, stored
}

// readPayload reads the record e of the segment v (readRecord) and returns
// its payload in clear, decrypting it in buf if the segment is encrypted.
// A payload that fails authentication is errCorrupt, unless the segment
// was encrypted with another key (ErrWrongKey); without a key an encrypted
// payload is ErrNoKey.
func (s *Store) readPayload(f io.ReaderAt, v *segView, e indexEntry, buf []byte) ([]byte, []byte, recHeader, error) {
	buf, h, err := readRecord(f, e, buf)
	if err != nil {
		return buf, nil, h, err
	}
	data := buf[recHeaderSize : recHeaderSize+int(e.length)]
	if !v.sum.encrypted() || !sealed(e.kind) {
		return buf, data, h, nil
	}
	if s.crypt == nil {
		id := "unknown (its header is damaged)"
		if k, err := segKeyID(f); err == nil {
			id = fmtKeyID(k)
		}
		return buf, nil, h, fmt.Errorf("%w: segment %s is encrypted with key %s: open the store with the key file it was recorded with (privacy.encryption_key_file)", ErrNoKey, v.seg.name, id)
	}
	if plain, ok := s.crypt.open(buf[8:recHeaderSize], data); ok {
		return buf, plain, h, nil
	}
	if k, err := segKeyID(f); err == nil && k != s.crypt.id {
		return buf, nil, h, fmt.Errorf("%w: segment %s is encrypted with key %s, %s holds key %s: give the key file the footage was recorded with", ErrWrongKey, v.seg.name, fmtKeyID(k), s.crypt.source, fmtKeyID(s.crypt.id))
	}
	return buf, nil, h, errCorrupt
}

// segKeyID reads the key id from an encrypted segment's header.
func segKeyID(f io.ReaderAt) (uint32, error) {
	b := make([]byte, segHeaderSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		return 0, err
	}
	h, err := decodeSegHeader(b)
	if err != nil {
		return 0, err
	}
	if !h.encrypted() {
		return 0, errors.New("segment is not encrypted")
	}
	return h.keyID, nil
}

// verifySealed authenticates every encrypted record of a segment that
// scanned with res, when the store has the segment's key; without it the
// segment is counted in rep.Unauthenticated.
func (s *Store) verifySealed(f io.ReaderAt, res *scanResult, rep *VerifyReport, problem func(int64, string, ...any)) error {
	rep.Encrypted++
	if s.crypt == nil || s.crypt.id != res.header.keyID {
		rep.Unauthenticated++
		return nil
	}
	var buf []byte
	for _, e := range res.index {
		if !sealed(e.kind) {
			continue
		}
		var err error
		buf, _, err = readRecord(f, e, buf)
		if errors.Is(err, errCorrupt) {
			continue // the scan just read it intact: changed since, reported by the chain
		}
		if err != nil {
			return err
		}
		if _, ok := s.crypt.open(buf[8:recHeaderSize], buf[recHeaderSize:recHeaderSize+int(e.length)]); !ok {
			problem(e.off, "record %d fails authentication: its encrypted payload was altered or damaged (and its CRC made to match); it is not served", e.seq)
		}
	}
	return nil
}
