package ota

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"
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

// FuzzApplyDelta feeds the bsdiff-zstd decoder arbitrary payloads against
// a fixed base: it must never panic, never write more than the manifest's
// size, and fail only with a refusal; what it accepts through Decode has
// the manifest's SHA-256.
func FuzzApplyDelta(f *testing.F) {
	base := fakeBinary(3, 2<<10)
	bin := changed(base)
	good, err := EncodeBsdiff(base, bin)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	for _, other := range [][]byte{base, nil, bin[:100], fakeBinary(4, 3<<10)} {
		p, err := EncodeBsdiff(base, other)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	f.Add(pack(f, cat(rec(0, 0, 5), rec(10, 2, -3)), nil, nil, nil, []byte("ab")))
	f.Add(pack(f, rec(16, 0, 0), []byte{0, 1}, []byte{1, 4}, []byte{9, 9}, nil))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 2, 0x91, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{})
	m := bsdiffManifest(base, bin)
	f.Fuzz(func(t *testing.T, p []byte) {
		var out bytes.Buffer
		err := applyBsdiff(context.Background(), base, bytes.NewReader(p), m.Size, &out)
		if err != nil {
			var r *RefusedError
			if !errors.As(err, &r) {
				t.Fatalf("not a refusal: %v", err)
			}
		}
		if int64(out.Len()) > m.Size {
			t.Fatalf("wrote %d bytes, the binary has %d", out.Len(), m.Size)
		}
		var got bytes.Buffer
		if err := Decode(context.Background(), m, bytes.NewReader(p), base, &got); err == nil {
			if !bytes.Equal(got.Bytes(), bin) {
				t.Fatal("Decode accepted another binary")
			}
		} else if !errors.Is(err, ErrBinaryHash) {
			t.Fatalf("Decode: %v, want ErrBinaryHash", err)
		}
	})
}

// FuzzDeltaRoundTrip: the delta between any two byte strings rebuilds the
// second from the first. The streams are compressed at zstd's fastest
// level (the best level's tables make each run take seconds under the
// fuzzer): the levels share the format, and the round trip tests the diff,
// the split of the diff stream and the apply. Each run takes milliseconds,
// so the fuzzer's minimizing of a new input takes its whole default minute
// with no exec counted: run it with -fuzzminimizetime 3s.
func FuzzDeltaRoundTrip(f *testing.F) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false), zstd.WithWindowSize(bsdiffEncWindow))
	if err != nil {
		f.Fatal(err)
	}
	defer enc.Close()
	old := fakeBinary(5, 1<<10)
	f.Add(old, changed(old))
	f.Add(old, relocated(old, 1))
	f.Add([]byte{}, []byte("new"))
	f.Add([]byte("old"), []byte{})
	f.Add(bytes.Repeat([]byte{0}, 100), bytes.Repeat([]byte{0, 1}, 70))
	f.Fuzz(func(t *testing.T, old, bin []byte) {
		p := encodeBsdiff(enc, old, bin)
		got, err := applyAll(old, p, int64(len(bin)))
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		if !bytes.Equal(got, bin) {
			t.Fatalf("rebuilt %x, want %x", got, bin)
		}
	})
}
