package ota

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func testKey(t testing.TB) PrivateKey {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k.Comment = "test"
	return k
}

// fakeBinary is n bytes that look a little like a program: repeated
// structure with some noise, so that compression and deltas behave as
// they do on real binaries.
func fakeBinary(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	words := make([][]byte, 64)
	for i := range words {
		words[i] = make([]byte, 4+r.IntN(28))
		for j := range words[i] {
			words[i][j] = byte(r.IntN(256))
		}
	}
	for i := 0; i < n; {
		i += copy(b[i:], words[r.IntN(len(words))])
	}
	return b
}

// changed returns a copy of b with a few bytes changed and a few inserted,
// as a small code change does.
func changed(b []byte) []byte {
	out := append([]byte(nil), b[:len(b)/3]...)
	out = append(out, []byte("v1.2.4 has a new string constant")...)
	out = append(out, b[len(b)/3:]...)
	out[len(out)/2] ^= 0xff
	return out
}

func build(t testing.TB, k PrivateKey, bin []byte, opt BuildOptions) []byte {
	t.Helper()
	if opt.Version == "" {
		opt.Version = "v1.2.4"
	}
	if opt.Arch == "" {
		opt.Arch = "arm64"
	}
	var buf bytes.Buffer
	if _, err := Build(&buf, k, bin, opt); err != nil {
		t.Fatalf("Build: %v", err)
	}
	return buf.Bytes()
}

func open(b []byte, keys ...PublicKey) (*Bundle, error) {
	return OpenBundle(bytes.NewReader(b), int64(len(b)), keys)
}

func decodeAll(t *testing.T, b *Bundle, base []byte) ([]byte, error) {
	t.Helper()
	var out bytes.Buffer
	err := Decode(context.Background(), b.Manifest, b.Payload(), base, &out)
	return out.Bytes(), err
}

func TestBundleRoundTrip(t *testing.T) {
	k := testKey(t)
	old := fakeBinary(1, 300<<10)
	bin := changed(old)
	for _, tc := range []struct {
		name string
		base []byte
	}{{"full", nil}, {"delta", old}} {
		t.Run(tc.name, func(t *testing.T) {
			raw := build(t, k, bin, BuildOptions{Base: tc.base, MinFromVersion: "v1.0.0"})
			b, err := open(raw, k.Public())
			if err != nil {
				t.Fatalf("OpenBundle: %v", err)
			}
			if b.Key.ID() != k.Public().ID() {
				t.Errorf("signed by %s, want %s", b.Key.ID(), k.Public().ID())
			}
			m := b.Manifest
			if m.Version != "v1.2.4" || m.Arch != "arm64" || m.Size != int64(len(bin)) || m.SHA256 != sha256Hex(bin) || m.MinFromVersion != "v1.0.0" {
				t.Errorf("manifest %+v", m)
			}
			if tc.base != nil && (m.Encoding != EncodingBsdiffZstd || m.DeltaBaseSHA256 != sha256Hex(old)) {
				t.Errorf("delta manifest %+v", m)
			}
			if err := b.CheckPayload(); err != nil {
				t.Fatalf("CheckPayload: %v", err)
			}
			got, err := decodeAll(t, b, tc.base)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !bytes.Equal(got, bin) {
				t.Fatal("decoded binary differs")
			}
			t.Logf("%s: binary %d bytes, payload %d bytes", tc.name, len(bin), m.PayloadSize)
		})
	}
}

func TestDeltaRefusedAgainstAnotherBase(t *testing.T) {
	k := testKey(t)
	old := fakeBinary(1, 200<<10)
	bin := changed(old)
	raw := build(t, k, bin, BuildOptions{Base: old})
	b, err := open(raw, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	other := fakeBinary(2, 200<<10)
	if _, err := decodeAll(t, b, other); !errors.Is(err, ErrDeltaBase) {
		t.Errorf("Decode against another base: %v, want ErrDeltaBase", err)
	}
	if _, err := decodeAll(t, b, nil); !errors.Is(err, ErrDeltaBase) {
		t.Errorf("Decode without a base: %v, want ErrDeltaBase", err)
	}
	if err := CheckPolicy(b.Manifest, Target{BinarySHA256: sha256Hex(other)}); !errors.Is(err, ErrDeltaBase) {
		t.Errorf("CheckPolicy against another base: %v, want ErrDeltaBase", err)
	}
}

// recordingReader remembers every range read.
type recordingReader struct {
	r     *bytes.Reader
	mu    sync.Mutex
	reads [][2]int64
}

func (r *recordingReader) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	r.reads = append(r.reads, [2]int64{off, off + int64(len(p))})
	r.mu.Unlock()
	return r.r.ReadAt(p, off)
}

// maxRead is the end of the furthest range read.
func (r *recordingReader) maxRead() int64 {
	var m int64
	for _, x := range r.reads {
		m = max(m, x[1])
	}
	return m
}

// zstdBomb is a 32 KiB zstd frame that decompresses to a gibibyte of
// zeros: 8192 RLE blocks of 128 KiB.
func zstdBomb(t testing.TB) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3} // magic, no content size, 128 KiB window
	const blocks, size = 8192, 128 << 10
	for n := range blocks {
		h := uint32(1<<1 | size<<3) // RLE block
		if n == blocks-1 {
			h |= 1 // last block
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return b
}

// forged signs a manifest describing payload (its hash and length) with k.
func forged(t testing.TB, k PrivateKey, m Manifest, payload []byte) []byte {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeBundle(&buf, k, raw, payload); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func bombManifest(payload []byte) Manifest {
	return Manifest{
		Schema: ManifestSchema, Version: "v9.9.9", Arch: "arm64", Size: 1 << 30,
		SHA256: sha256Hex([]byte("not this")), Encoding: EncodingZstd,
		PayloadSize: int64(len(payload)), PayloadSHA256: sha256Hex(payload),
	}
}

func TestBundleRefused(t *testing.T) {
	k := testKey(t)
	other := testKey(t)
	bin := fakeBinary(3, 64<<10)
	good := build(t, k, bin, BuildOptions{})
	mlen := int(binary.BigEndian.Uint32(good[12:]))
	payloadOff := int64(prefixSize + mlen)
	bomb := zstdBomb(t)
	flip := func(off int) []byte {
		b := bytes.Clone(good)
		b[off] ^= 0x01
		return b
	}
	grow := func(off int) []byte {
		b := bytes.Clone(good)
		b[off] += 0x10
		return b
	}
	cases := []struct {
		name string
		b    []byte
		keys []PublicKey
		want error
		// payloadUntouched: the verifier must not read the payload region.
		payloadUntouched bool
	}{
		{"no key", good, nil, ErrNoKeys, true},
		{"wrong key", good, []PublicKey{other.Public()}, ErrSignature, true},
		{"magic", flip(0), []PublicKey{k.Public()}, ErrNotBundle, true},
		{"format version", flip(9), []PublicKey{k.Public()}, ErrFormat, true},
		{"reserved", flip(11), []PublicKey{k.Public()}, ErrFormat, true},
		{"manifest length", grow(14), []PublicKey{k.Public()}, ErrTruncated, true},
		{"payload length", grow(21), []PublicKey{k.Public()}, ErrTruncated, true},
		{"signature byte", flip(headerSize + 5), []PublicKey{k.Public()}, ErrSignature, true},
		{"manifest first byte", flip(prefixSize), []PublicKey{k.Public()}, ErrSignature, true},
		{"manifest last byte", flip(int(payloadOff) - 1), []PublicKey{k.Public()}, ErrSignature, true},
		{"truncated in header", good[:20], []PublicKey{k.Public()}, ErrTruncated, true},
		{"truncated in manifest", good[:prefixSize+10], []PublicKey{k.Public()}, ErrTruncated, true},
		{"truncated in payload", good[:len(good)-1], []PublicKey{k.Public()}, ErrTruncated, true},
		{"trailing byte", append(bytes.Clone(good), 0), []PublicKey{k.Public()}, ErrFormat, true},
		{"empty", nil, []PublicKey{k.Public()}, ErrTruncated, true},
		{"zstd bomb signed by another key", forged(t, other, bombManifest(bomb), bomb), []PublicKey{k.Public()}, ErrSignature, true},
		{"garbage payload signed by another key", forged(t, other, bombManifest([]byte("garbage")), []byte("garbage")), []PublicKey{k.Public()}, ErrSignature, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rr := &recordingReader{r: bytes.NewReader(tc.b)}
			_, err := OpenBundle(rr, int64(len(tc.b)), tc.keys)
			if !errors.Is(err, tc.want) {
				t.Fatalf("OpenBundle: %v, want %v", err, tc.want)
			}
			var r *RefusedError
			if !errors.As(err, &r) || r.Reason == "" {
				t.Errorf("error %v is not a RefusedError with a reason", err)
			}
			// The payload region of the bundle as built.
			if tc.payloadUntouched && rr.maxRead() > payloadOff {
				t.Errorf("the verifier read up to offset %d, past the manifest (payload starts at %d)", rr.maxRead(), payloadOff)
			}
		})
	}
	t.Run("payload byte", func(t *testing.T) {
		b, err := open(flip(len(good)-3), k.Public())
		if err != nil {
			t.Fatalf("OpenBundle: %v (the payload is not under the signature itself)", err)
		}
		if err := b.CheckPayload(); !errors.Is(err, ErrPayloadHash) {
			t.Fatalf("CheckPayload: %v, want ErrPayloadHash", err)
		}
	})
	t.Run("zstd bomb under a valid signature and a wrong hash", func(t *testing.T) {
		m := bombManifest(bomb)
		m.PayloadSHA256 = sha256Hex([]byte("another payload"))
		_, err := Verify(bytes.NewReader(forged(t, k, m, bomb)), int64(len(forged(t, k, m, bomb))), []PublicKey{k.Public()}, Target{})
		if !errors.Is(err, ErrPayloadHash) {
			t.Fatalf("Verify: %v, want ErrPayloadHash", err)
		}
	})
	t.Run("bomb bounded by the signed size", func(t *testing.T) {
		// Even a signed bomb stops at the manifest's size.
		m := bombManifest(bomb)
		m.Size = 1 << 20
		raw := forged(t, k, m, bomb)
		b, err := open(raw, k.Public())
		if err != nil {
			t.Fatal(err)
		}
		var n countingWriter
		err = Decode(context.Background(), b.Manifest, b.Payload(), nil, &n)
		if !errors.Is(err, ErrBinaryHash) || n > 2<<20 {
			t.Fatalf("Decode: %v after %d bytes, want ErrBinaryHash within ~1 MiB", err, n)
		}
	})
	t.Run("unknown manifest field", func(t *testing.T) {
		raw := []byte(`{"schema":1,"surprise":true}`)
		var buf bytes.Buffer
		writeBundle(&buf, k, raw, []byte("x"))
		if _, err := open(buf.Bytes(), k.Public()); !errors.Is(err, ErrManifest) {
			t.Fatalf("OpenBundle: %v, want ErrManifest", err)
		}
	})
	t.Run("header payload length disagrees with the manifest", func(t *testing.T) {
		m := bombManifest([]byte("payload"))
		raw := forged(t, k, m, []byte("payload+"))
		if _, err := open(raw, k.Public()); !errors.Is(err, ErrFormat) {
			t.Fatalf("OpenBundle: %v, want ErrFormat", err)
		}
	})
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

func TestKeyRotation(t *testing.T) {
	oldKey, newKey := testKey(t), testKey(t)
	raw := build(t, newKey, fakeBinary(4, 10<<10), BuildOptions{})
	b, err := open(raw, oldKey.Public(), newKey.Public())
	if err != nil {
		t.Fatalf("OpenBundle with both keys pinned: %v", err)
	}
	if b.Key.ID() != newKey.Public().ID() {
		t.Errorf("verified by %s, want the new key %s", b.Key.ID(), newKey.Public().ID())
	}
}

func TestBuildRefusesImpossibleRelease(t *testing.T) {
	k := testKey(t)
	var buf bytes.Buffer
	for _, opt := range []BuildOptions{
		{Version: "v1.0.0", Arch: "arm64", MinFromVersion: "v2.0.0"},
		{Version: "latest", Arch: "arm64"},
		{Version: "v1.0.0", Arch: "mips"},
	} {
		if _, err := Build(&buf, k, []byte("binary"), opt); err == nil {
			t.Errorf("Build(%+v) succeeded", opt)
		}
	}
}

func TestManifestCreatedIsUTC(t *testing.T) {
	k := testKey(t)
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.FixedZone("X", 3600))
	var buf bytes.Buffer
	m, err := Build(&buf, k, []byte("binary"), BuildOptions{Version: "v1.0.0", Arch: "armv6", Created: at})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Created.Equal(at) || m.Created.Location() != time.UTC {
		t.Errorf("created %v", m.Created)
	}
}

// TestBundleLayout pins the byte layout doc.go describes.
func TestBundleLayout(t *testing.T) {
	k := testKey(t)
	b := build(t, k, fakeBinary(9, 4096), BuildOptions{})
	if string(b[:8]) != "\x89OTA\r\n\x1a\n" {
		t.Errorf("magic % x", b[:8])
	}
	if v := binary.BigEndian.Uint16(b[8:]); v != 1 {
		t.Errorf("format version %d", v)
	}
	if r := binary.BigEndian.Uint16(b[10:]); r != 0 {
		t.Errorf("reserved %d", r)
	}
	mlen := int(binary.BigEndian.Uint32(b[12:]))
	plen := int(binary.BigEndian.Uint64(b[16:]))
	if len(b) != 88+mlen+plen {
		t.Fatalf("file %d bytes, header says 88+%d+%d", len(b), mlen, plen)
	}
	raw := b[88 : 88+mlen]
	if !ed25519.Verify(k.Public().Key, raw, b[24:88]) {
		t.Error("bytes 24..88 are not the signature of the manifest bytes")
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"schema", "version", "arch", "size", "sha256", "allow_downgrade", "encoding", "payload_size", "payload_sha256"} {
		if _, ok := m[f]; !ok {
			t.Errorf("manifest lacks %q: %s", f, raw)
		}
	}
	if m["payload_sha256"] != sha256Hex(b[88+mlen:]) {
		t.Error("payload_sha256 is not the hash of the bytes after the manifest")
	}
}

func TestManifestEncodings(t *testing.T) {
	base := sha256Hex([]byte("base"))
	for _, tc := range []struct {
		encoding, base string
		ok             bool
	}{
		{EncodingZstd, "", true},
		{EncodingZstd, base, false},
		{EncodingZstdDelta, base, true},
		{EncodingZstdDelta, "", false},
		{EncodingBsdiffZstd, base, true},
		{EncodingBsdiffZstd, "", false},
		{EncodingBsdiffZstd, "abc", false},
		{"xz", "", false},
	} {
		m := Manifest{Schema: ManifestSchema, Version: "v1.2.4", Arch: "arm64", Size: 10, SHA256: base,
			Encoding: tc.encoding, DeltaBaseSHA256: tc.base, PayloadSize: 10, PayloadSHA256: base}
		err := m.check()
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrManifest)) {
			t.Errorf("encoding %q with base %q: %v, want ok=%v", tc.encoding, tc.base, err, tc.ok)
		}
		if want := tc.encoding != EncodingZstd; m.IsDelta() != want && tc.ok {
			t.Errorf("encoding %q: IsDelta %v, want %v", tc.encoding, m.IsDelta(), want)
		}
	}
}
