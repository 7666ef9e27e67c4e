package ota

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
)

// fuzzKey is fixed, so that the seeds stay valid between runs.
func fuzzKey() PrivateKey {
	return PrivateKey{key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))}
}

// FuzzOpenBundle feeds the bundle parser arbitrary bytes: it must never
// panic, every failure must be a refusal or a read error, and a bundle it
// accepts must be exactly what a signer wrote (same header, signature and
// manifest bytes).
func FuzzOpenBundle(f *testing.F) {
	k := fuzzKey()
	old := fakeBinary(1, 4<<10)
	full := build(f, k, changed(old), BuildOptions{})
	delta := build(f, k, changed(old), BuildOptions{Base: old, MinFromVersion: "v1.0.0"})
	f.Add(full)
	f.Add(delta)
	f.Add(full[:prefixSize])
	f.Add(full[:len(full)-1])
	f.Add([]byte(Magic))
	f.Add([]byte{})
	f.Add(append(bytes.Clone(full), 0))
	tampered := bytes.Clone(full)
	tampered[prefixSize+3] ^= 1
	f.Add(tampered)
	keys := []PublicKey{k.Public()}
	f.Fuzz(func(t *testing.T, b []byte) {
		bd, err := OpenBundle(bytes.NewReader(b), int64(len(b)), keys)
		if err != nil {
			var r *RefusedError
			if !errors.As(err, &r) {
				t.Fatalf("not a refusal: %v", err)
			}
			return
		}
		if !ed25519.Verify(k.Public().Key, bd.RawManifest, b[headerSize:prefixSize]) {
			t.Fatal("accepted a manifest the key did not sign")
		}
		if !bytes.Equal(b[prefixSize:prefixSize+len(bd.RawManifest)], bd.RawManifest) {
			t.Fatal("manifest bytes differ from the file's")
		}
		if int64(len(b)) != prefixSize+int64(len(bd.RawManifest))+bd.Manifest.PayloadSize {
			t.Fatal("accepted a bundle whose size is not its header's")
		}
		// Checking the payload must not panic either.
		_ = bd.CheckPayload()
	})
}
