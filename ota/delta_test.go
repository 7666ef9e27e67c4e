package ota

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// bsdiffManifest is the manifest of a delta from base to bin.
func bsdiffManifest(base, bin []byte) Manifest {
	return Manifest{Size: int64(len(bin)), SHA256: sha256Hex(bin), Encoding: EncodingBsdiffZstd, DeltaBaseSHA256: sha256Hex(base)}
}

// applyAll applies payload to base with applyBsdiff, returning what it wrote.
func applyAll(base, payload []byte, size int64) ([]byte, error) {
	var out bytes.Buffer
	err := applyBsdiff(context.Background(), base, bytes.NewReader(payload), size, &out)
	return out.Bytes(), err
}

// relocated returns a copy of b as a rebuilt program looks: the same code
// with an address field changed in every 48th word, a block inserted, a
// block deleted and a block moved.
func relocated(b []byte, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	out := bytes.Clone(b)
	for i := 1; i < len(out); i += 48 {
		out[i] += 12
	}
	if len(out) < 64 {
		return out
	}
	ins := make([]byte, 1+len(out)/50)
	for i := range ins {
		ins[i] = byte(r.IntN(256))
	}
	at := len(out) / 3
	out = append(out[:at:at], append(ins, out[at:]...)...)
	del := len(out) / 2
	out = append(out[:del:del], out[del+len(out)/40:]...)
	// Move a block from near the end to near the start.
	blk := bytes.Clone(out[len(out)*3/4 : len(out)*3/4+len(out)/30])
	out = append(out[:len(out)*3/4:len(out)*3/4], out[len(out)*3/4+len(blk):]...)
	return append(out[:10:10], append(blk, out[10:]...)...)
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 5))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return b
}

func TestBsdiffRoundTrip(t *testing.T) {
	bin := fakeBinary(11, 200<<10)
	zeros := make([]byte, 64<<10)
	for _, tc := range []struct {
		name     string
		old, new []byte
	}{
		{"both empty", nil, nil},
		{"empty base", []byte{}, fakeBinary(1, 5000)},
		{"empty new", fakeBinary(1, 5000), nil},
		{"one byte", []byte{7}, []byte{8}},
		{"identical", bin, bin},
		{"small change", bin, changed(bin)},
		{"relocated", bin, relocated(bin, 1)},
		{"truncated", bin, bin[:len(bin)/2]},
		{"grown", bin, append(bytes.Clone(bin), fakeBinary(3, 50<<10)...)},
		{"unrelated random", randomBytes(1, 30000), randomBytes(2, 40000)},
		{"random with changes", randomBytes(1, 100000), relocated(randomBytes(1, 100000), 2)},
		{"zeros", zeros, append(bytes.Clone(zeros[:1000]), append([]byte{1, 2, 3}, zeros...)...)},
		{"short texts", []byte("abcabcabc"), []byte("abcXabcabcY")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := EncodeBsdiff(tc.old, tc.new)
			if err != nil {
				t.Fatalf("EncodeBsdiff: %v", err)
			}
			got, err := applyAll(tc.old, p, int64(len(tc.new)))
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if !bytes.Equal(got, tc.new) {
				t.Fatalf("applied delta gives %d bytes, differing from the %d expected", len(got), len(tc.new))
			}
			if len(tc.new) > 0 {
				var out bytes.Buffer
				if err := Decode(context.Background(), bsdiffManifest(tc.old, tc.new), bytes.NewReader(p), tc.old, &out); err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if !bytes.Equal(out.Bytes(), tc.new) {
					t.Fatal("Decode gives another binary")
				}
			}
			t.Logf("%d -> %d bytes: delta %d bytes", len(tc.old), len(tc.new), len(p))
		})
	}
}

// encodeWithSet makes a delta whose runs are placed by counting the
// candidate words of set (with escapes where they cannot be).
func encodeWithSet(t testing.TB, base, bin, set []byte) []byte {
	t.Helper()
	d := diffBsdiff(base, bin)
	op := opcodes(d, base)
	cand := make([]bool, len(op))
	candidates(op, set, cand)
	gaps, shapes, values := splitDiff(d.diff, cand, nil)
	return packSet(t, set, d.ctrl, gaps, shapes, values, d.extra)
}

// Runs placed by counting candidate words, whatever the set: common
// opcodes, rare ones, every byte value, words across add segments.
func TestBsdiffCandidates(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	all := make([]byte, maxCandidates)
	for i := range all {
		all[i] = byte(i * 16)
	}
	for i := 0; i < 16; i++ {
		var old, bin []byte
		switch i % 4 {
		case 0:
			old = fakeBinary(uint64(i), 2000+r.IntN(20000))
			bin = relocated(old, uint64(i))
		case 1:
			old = randomBytes(uint64(i), 1000+r.IntN(5000))
			bin = relocated(old, uint64(i))
		case 2:
			// Small alphabet: many words are candidates, runs long
			// and adjacent, segments short.
			old = make([]byte, 3000+r.IntN(3000))
			for j := range old {
				old[j] = byte(r.IntN(3))
			}
			bin = relocated(old, uint64(i))
			for j := 0; j < len(bin); j += 1 + r.IntN(9) {
				bin[j] = byte(r.IntN(3))
			}
		case 3:
			old = fakeBinary(uint64(i), 5000)
			bin = changed(old)
		}
		for _, set := range [][]byte{{0}, {1, 2}, {old[len(old)/2]}, all, {0xff}} {
			p := encodeWithSet(t, old, bin, set)
			got, err := applyAll(old, p, int64(len(bin)))
			if err != nil {
				t.Fatalf("case %d, set %x: apply: %v", i, set, err)
			}
			if !bytes.Equal(got, bin) {
				t.Fatalf("case %d, set %x: the applied delta differs", i, set)
			}
		}
	}
}

// A payload given as a plain io.Reader is read into memory first.
func TestBsdiffPlainReader(t *testing.T) {
	old := fakeBinary(4, 50<<10)
	bin := relocated(old, 3)
	p, err := EncodeBsdiff(old, bin)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Decode(context.Background(), bsdiffManifest(old, bin), io.MultiReader(bytes.NewReader(p)), old, &out); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !bytes.Equal(out.Bytes(), bin) {
		t.Fatal("Decode gives another binary")
	}
}

// On code-like data with moved addresses, bsdiff-zstd is smaller than
// zstd-delta: the reason Build makes it.
func TestBsdiffSmallerThanZstdDelta(t *testing.T) {
	old := fakeBinary(5, 300<<10)
	bin := relocated(old, 4)
	bs, err := EncodeBsdiff(old, bin)
	if err != nil {
		t.Fatal(err)
	}
	zd, err := EncodeDelta(old, bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) >= len(zd) {
		t.Errorf("bsdiff-zstd %d bytes, zstd-delta %d: bsdiff-zstd should be the smaller", len(bs), len(zd))
	}
	t.Logf("bsdiff-zstd %d bytes, zstd-delta %d bytes", len(bs), len(zd))
}

// Old bundles, made before bsdiff-zstd, still decode.
func TestZstdDeltaStillDecodes(t *testing.T) {
	old := fakeBinary(6, 100<<10)
	bin := changed(old)
	p, err := EncodeDelta(old, bin)
	if err != nil {
		t.Fatal(err)
	}
	m := Manifest{Size: int64(len(bin)), SHA256: sha256Hex(bin), Encoding: EncodingZstdDelta, DeltaBaseSHA256: sha256Hex(old)}
	var out bytes.Buffer
	if err := Decode(context.Background(), m, bytes.NewReader(p), old, &out); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !bytes.Equal(out.Bytes(), bin) {
		t.Fatal("Decode gives another binary")
	}
}

// rec is a ctrl record.
func rec(add, cp uint64, seek int64) []byte {
	b := binary.AppendUvarint(nil, add)
	b = binary.AppendUvarint(b, cp)
	return binary.AppendVarint(b, seek)
}

func pack(t testing.TB, ctrl, gaps, shapes, values, extra []byte) []byte {
	t.Helper()
	return packSet(t, nil, ctrl, gaps, shapes, values, extra)
}

// testEncoder is shared by the tests' payloads: each encoder at zstd's
// best level allocates some 30 MB of tables. EncodeAll may be called
// concurrently.
var testEncoder = sync.OnceValues(newStreamEncoder)

func packSet(t testing.TB, set, ctrl, gaps, shapes, values, extra []byte) []byte {
	t.Helper()
	enc, err := testEncoder()
	if err != nil {
		t.Fatal(err)
	}
	return packBsdiff(enc, set, [bsdiffStreams][]byte{ctrl, gaps, shapes, values, extra})
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// withExtraFrame is a payload whose one record copies 4 bytes from the
// extra stream, given as it is.
func withExtraFrame(t testing.TB, frame []byte) []byte {
	p := pack(t, rec(0, 4, 0), nil, nil, nil, nil) // 1, 0, L, 0, 0, 0, 0, ctrl
	return cat(p[:6], binary.AppendUvarint(nil, uint64(len(frame))), p[7:], frame)
}

// Deltas that do not hold together are refused with a reason, never
// applied, never a panic.
func TestBsdiffMalformed(t *testing.T) {
	base := []byte("0123456789abcdef")
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	// A zstd frame of "0123" as a raw block, declaring a window of
	// 1<<log bytes.
	frame := func(log byte) []byte {
		return cat([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, (log - 10) << 3, 4<<3 | 1, 0, 0}, []byte("0123"))
	}
	if out, err := applyAll(base, withExtraFrame(t, frame(20)), 4); err != nil || string(out) != "0123" {
		t.Fatalf("a frame with a 1 MiB window gives %q, %v; want 0123", out, err)
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		size    int64
		want    string
	}{
		{"empty payload", nil, 4, "empty"},
		{"wrong version", []byte{2, 0, 0, 0, 0, 0, 0}, 4, "format version 2"},
		{"header cut", []byte{1, 0, 0}, 4, "unreadable"},
		{"too many candidates", []byte{1, 17, 0, 0, 0, 0, 0}, 4, "17 candidate opcodes"},
		{"candidates cut", []byte{1, 3, 0x91}, 4, "3 candidate opcodes"},
		{"streams longer than payload", []byte{1, 0, 9, 0, 0, 0, 0}, 4, "the ctrl stream has 9 bytes"},
		{"bytes after the streams", []byte{1, 0, 0, 0, 0, 0, 0, 0}, 4, "add up to"},
		{"no records", pack(t, nil, nil, nil, nil, nil), 4, "record 0 unreadable"},
		{"record moves nothing", pack(t, cat(rec(0, 0, 3), rec(1, 0, 0), rec(0, 0, 1)), nil, nil, nil, nil), 4, "record 2 moves no byte"},
		{"add beyond the binary", pack(t, rec(5, 0, 0), nil, nil, nil, nil), 4, "beyond the binary"},
		{"copy beyond the binary", pack(t, rec(2, 3, 0), nil, nil, nil, []byte("xyz")), 4, "beyond the binary"},
		{"huge add", pack(t, rec(1<<63, 1<<63, 0), nil, nil, nil, nil), 4, "beyond the binary"},
		{"add beyond the base", pack(t, cat(rec(2, 0, 13), rec(2, 0, 0)), nil, nil, nil, nil), 4, "beyond its 16"},
		{"seek before the base", pack(t, rec(2, 0, -3), nil, nil, nil, nil), 4, "outside the base"},
		{"seek after the base", pack(t, rec(2, 0, 15), nil, nil, nil, nil), 4, "outside the base"},
		{"extra short", pack(t, rec(0, 4, 0), nil, nil, nil, []byte("xy")), 4, "extra stream ends early"},
		{"extra long", pack(t, rec(0, 4, 0), nil, nil, nil, []byte("wxyz!")), 4, "extra stream holds more"},
		{"ctrl long", pack(t, cat(rec(4, 0, 0), rec(1, 0, 0)), nil, nil, nil, nil), 4, "ctrl stream holds more"},
		{"values short", pack(t, rec(4, 0, 0), uv(0), uv(1<<2), []byte{1}, nil), 4, "values stream ends early"},
		{"values long", pack(t, rec(4, 0, 0), uv(0), uv(0), []byte{1, 2}, nil), 4, "values stream holds more"},
		{"shapes missing", pack(t, rec(4, 0, 0), uv(0), nil, []byte{1}, nil), 4, "shapes stream"},
		{"run beyond the binary", pack(t, rec(4, 0, 0), uv(1), uv(0), []byte{1}, nil), 4, "beyond the binary"},
		{"run beyond the diff", pack(t, rec(2, 2, 0), uv(0), uv(3), []byte{1}, []byte("xy")), 4, "runs beyond"},
		{"runs overlap", pack(t, rec(8, 0, 0), cat(uv(0), uv(0)), cat(uv(1<<2), uv(0)), []byte{1, 2, 3}, nil), 8, "overlaps"},
		{"huge run", pack(t, rec(4, 0, 0), uv(0), uv(1<<62), []byte{1}, nil), 4, "longer than the binary"},
		{"huge gap", pack(t, rec(4, 0, 0), uv(1<<62), uv(0), []byte{1}, nil), 4, "beyond the binary"},
		{"candidate never found", packSet(t, []byte{0x91}, rec(4, 0, 0), uv(1), uv(0), []byte{1}, nil), 4, "runs beyond"},
		{"candidate run beyond the binary", packSet(t, []byte{'3'}, rec(4, 0, 0), uv(1), uv(3|1<<2), []byte{1, 1}, nil), 4, "lies beyond the binary"},
		{"huge candidate count", packSet(t, []byte{'3'}, rec(4, 0, 0), uv(1<<40), uv(0), []byte{1}, nil), 4, "candidates ahead"},
		{"escape cut", packSet(t, []byte{'3'}, rec(4, 0, 0), uv(0), uv(0), []byte{1}, nil), 4, "gaps stream"},
		{"bomb in extra", pack(t, rec(0, 4, 0), nil, nil, nil, make([]byte, 10<<20)), 4, "extra stream holds more"},
		{"not zstd", withExtraFrame(t, []byte("junk")), 4, "extra stream"},
		{"window too large", withExtraFrame(t, frame(26)), 4, "extra stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := applyAll(base, tc.payload, tc.size)
			var r *RefusedError
			if !errors.As(err, &r) || !errors.Is(err, ErrBinaryHash) {
				t.Fatalf("got %v, want a refusal (ErrBinaryHash)", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if int64(len(out)) > tc.size {
				t.Errorf("wrote %d bytes, more than the %d of the binary", len(out), tc.size)
			}
		})
	}
}

// Every damaged copy of a real delta is refused by Decode: truncated at
// any length, or any byte changed.
func TestBsdiffDamaged(t *testing.T) {
	old := fakeBinary(7, 20<<10)
	bin := relocated(old, 5)
	p, err := EncodeBsdiff(old, bin)
	if err != nil {
		t.Fatal(err)
	}
	m := bsdiffManifest(old, bin)
	// A damaged delta is refused, or (when the damage happens not to
	// matter) gives the right binary, which Decode's SHA-256 check
	// proves: never a panic, never another kind of error.
	refused := 0
	check := func(what string, q []byte) {
		t.Helper()
		err := Decode(context.Background(), m, bytes.NewReader(q), old, io.Discard)
		switch {
		case err == nil:
		case errors.Is(err, ErrBinaryHash):
			refused++
		default:
			t.Fatalf("%s: Decode gave %v, want ErrBinaryHash", what, err)
		}
	}
	for n := 0; n < len(p); n++ {
		check("truncated", p[:n])
	}
	for i := range p {
		for _, x := range []byte{1, 0x80} {
			q := bytes.Clone(p)
			q[i] ^= x
			check("flipped", q)
		}
	}
	t.Logf("%d of %d damaged copies of a %d-byte delta refused, the others gave the right binary", refused, 3*len(p), len(p))
	if refused < len(p) {
		t.Errorf("only %d of %d damaged copies refused", refused, 3*len(p))
	}
}

type failingWriter struct{ after int }

var errDiskFull = errors.New("no space left on device")

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.after {
		n := f.after
		f.after = 0
		return n, errDiskFull
	}
	f.after -= len(p)
	return len(p), nil
}

// A write error is the writer's, not a damaged bundle; a cancelled
// context stops the apply.
func TestBsdiffWriteErrorAndCancel(t *testing.T) {
	old := fakeBinary(8, 300<<10)
	bin := relocated(old, 6)
	p, err := EncodeBsdiff(old, bin)
	if err != nil {
		t.Fatal(err)
	}
	m := bsdiffManifest(old, bin)
	err = Decode(context.Background(), m, bytes.NewReader(p), old, &failingWriter{after: 100 << 10})
	if !errors.Is(err, errDiskFull) || errors.Is(err, ErrBinaryHash) {
		t.Errorf("Decode to a full disk: %v, want the disk's error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Decode(ctx, m, bytes.NewReader(p), old, io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("Decode with a cancelled context: %v, want context.Canceled", err)
	}
}

// Applying a delta to a 12 MB base holds neither the new binary nor the
// decompressed streams in memory: what it allocates stays far below the
// binary's size, whatever the payload.
func TestBsdiffApplyMemory(t *testing.T) {
	const size = 12 << 20
	base := fakeBinary(9, size)
	// A delta as bsdiff makes between two builds, written directly (the
	// encoder's suffix sort of 12 MB would dominate the test's time): the
	// whole base with a byte changed every 192 bytes, 1 MB of new bytes
	// in the middle, then the rest of the base.
	var gaps, shapes, values []byte
	half := size / 2
	for i := 1; i < size; i += 192 {
		gap := uint64(48) // words from the previous run
		if i == 1 {
			gap = 0
		}
		gaps = binary.AppendUvarint(gaps, gap)
		shapes = binary.AppendUvarint(shapes, 1)
		values = append(values, 12)
	}
	extra := randomBytes(3, 1<<20)
	ctrl := cat(rec(uint64(half), uint64(len(extra)), 0), rec(uint64(size-half), 0, 0))
	p := pack(t, ctrl, gaps, shapes, values, extra)
	want := cat(base[:half], extra, base[half:])
	for i := 1; i < size; i += 192 {
		if i < half {
			want[i] += 12
		} else {
			want[i+len(extra)] += 12
		}
	}
	m := Manifest{Size: int64(len(want)), SHA256: sha256Hex(want), Encoding: EncodingBsdiffZstd, DeltaBaseSHA256: sha256Hex(base)}

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := Decode(context.Background(), m, bytes.NewReader(p), base, io.Discard); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("applying a %d-byte delta to a %d-byte base allocated %d bytes in %d allocations", len(p), size, alloc, after.Mallocs-before.Mallocs)
	// Five zstd windows of at most 4 MiB is the most a payload can make
	// the decoder take; the encoder's 1 MiB windows need far less.
	const limit = 8 << 20
	if alloc > limit {
		t.Errorf("applying allocated %d bytes, more than %d: the output or a stream is being buffered", alloc, limit)
	}
}
