package footage

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func TestSegHeaderEncrypted(t *testing.T) {
	for _, h := range []segHeader{
		{version: schemaVersion, run: 3, firstSeq: 77, created: 12345},
		{version: schemaEncrypted, run: 4, firstSeq: 78, created: 12346, keyID: 0xdeadbeef},
	} {
		got, err := decodeSegHeader(h.encode())
		if err != nil || got != h {
			t.Fatalf("header %+v decodes to %+v, %v", h, got, err)
		}
	}
	b := segHeader{version: 3}.encode()
	if _, err := decodeSegHeader(b); err == nil {
		t.Fatal("schema version 3 accepted")
	}
	// The summary keeps the flag, in the footer and in index.log.
	s := summary{firstSeq: 1, lastSeq: 9, flags: sumEncrypted}
	d, _, err := decodeSummary(s.encode(nil))
	if err != nil || !d.encrypted() {
		t.Fatalf("summary flags lost: %+v %v", d, err)
	}
}

// FuzzParseKey: a key file's contents never panic the parser, and what it
// accepts is a key of KeySize bytes that its hex form parses back to.
func FuzzParseKey(f *testing.F) {
	key := bytes.Repeat([]byte{0xa5}, KeySize)
	f.Add(key)
	f.Add([]byte(hex.EncodeToString(key) + "\n"))
	f.Add([]byte(" " + hex.EncodeToString(key) + "\r\n"))
	f.Add([]byte("zz"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseKey(b)
		if err != nil {
			return
		}
		if len(k) != KeySize {
			t.Fatalf("key of %d bytes accepted", len(k))
		}
		again, err := parseKey([]byte(hex.EncodeToString(k)))
		if err != nil || !bytes.Equal(again, k) {
			t.Fatalf("hex of an accepted key does not parse back: %v", err)
		}
	})
}

// FuzzOpenSealed: a sealed payload and its additional data, changed in
// any way, never open, and never panic; unchanged, they open to the
// plaintext.
func FuzzOpenSealed(f *testing.F) {
	c, err := newSealer(bytes.Repeat([]byte{7}, KeySize), "test")
	if err != nil {
		f.Fatal(err)
	}
	plain := []byte("\xff\xd8\xff\xe0 a picture")
	ad := bytes.Repeat([]byte{1}, recHeaderSize-8)
	// A fixed nonce, so that every fuzzing process has the same orig.
	nonce := bytes.Repeat([]byte{9}, sealOverhead-16)
	orig := c.aead.Seal(nonce, nonce, plain, ad)
	if got, ok := c.open(ad, append([]byte(nil), c.seal(nil, ad, plain)...)); !ok || !bytes.Equal(got, plain) {
		f.Fatal("seal and open do not round-trip")
	}
	f.Add(ad, orig)
	f.Add(ad, orig[:sealOverhead])
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, a, stored []byte) {
		same := bytes.Equal(a, ad) && bytes.Equal(stored, orig)
		got, ok := c.open(a, append([]byte(nil), stored...))
		if ok != same || (ok && !bytes.Equal(got, plain)) {
			t.Fatalf("open of a payload changed %v: ok %v", !same, ok)
		}
	})
}
