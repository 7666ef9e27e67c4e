package ota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"

	"github.com/klauspost/compress/zstd"
)

// dictID is the zstd dictionary id of delta payloads; the base binary is
// the raw dictionary.
const dictID = 0x4f544131 // "OTA1"

// windowFor is the zstd window a payload for a binary of size n (made
// against a base of size base) needs: the base is history the new binary's
// matches reach back into, as with zstd --patch-from.
func windowFor(n, base int) int {
	w := 1 << bits.Len(uint(n+base))
	return min(max(w, zstd.MinWindowSize), zstd.MaxWindowSize)
}

// BuildOptions describe the release Build makes.
type BuildOptions struct {
	Version        string
	Arch           string
	MinFromVersion string
	AllowDowngrade bool
	// Base, when set, is the binary the units run: the payload is then a
	// delta against it ("bsdiff-zstd": between two builds of the agent,
	// about half the size of a "zstd-delta" one), which only units running
	// exactly that binary can apply.
	Base []byte
	// Created is recorded in the manifest (time.Now when zero).
	Created time.Time
}

// Build compresses binary, signs a manifest for it with key and writes the
// bundle to w.
func Build(w io.Writer, key PrivateKey, binary []byte, opt BuildOptions) (Manifest, error) {
	sum := sha256.Sum256(binary)
	m := Manifest{
		Schema:         ManifestSchema,
		Version:        opt.Version,
		Arch:           opt.Arch,
		Size:           int64(len(binary)),
		SHA256:         hex.EncodeToString(sum[:]),
		MinFromVersion: opt.MinFromVersion,
		AllowDowngrade: opt.AllowDowngrade,
		Encoding:       EncodingZstd,
		Created:        opt.Created.UTC().Truncate(time.Second),
	}
	if opt.Created.IsZero() {
		m.Created = time.Now().UTC().Truncate(time.Second)
	}
	if m.MinFromVersion != "" {
		to, err := ParseVersion(m.Version)
		if err != nil {
			return m, err
		}
		from, err := ParseVersion(m.MinFromVersion)
		if err != nil {
			return m, err
		}
		if from.Compare(to) > 0 {
			return m, fmt.Errorf("ota: min_from_version %s is newer than the release %s: no unit could install it", from, to)
		}
	}
	var payload []byte
	var err error
	if opt.Base != nil {
		bsum := sha256.Sum256(opt.Base)
		m.Encoding, m.DeltaBaseSHA256 = EncodingBsdiffZstd, hex.EncodeToString(bsum[:])
		payload, err = EncodeBsdiff(opt.Base, binary)
	} else {
		payload, err = EncodeFull(binary)
	}
	if err != nil {
		return m, err
	}
	psum := sha256.Sum256(payload)
	m.PayloadSize, m.PayloadSHA256 = int64(len(payload)), hex.EncodeToString(psum[:])
	if err := m.check(); err != nil {
		return m, err
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, fmt.Errorf("ota: %w", err)
	}
	return m, writeBundle(w, key, raw, payload)
}

// EncodeFull compresses a binary with zstd.
func EncodeFull(binary []byte) ([]byte, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("ota: zstd: %w", err)
	}
	defer enc.Close()
	return enc.EncodeAll(binary, nil), nil
}

// EncodeDelta makes a "zstd-delta" payload: binary compressed with zstd
// using base as a raw dictionary, as zstd --patch-from does. Build makes
// "bsdiff-zstd" deltas (EncodeBsdiff) instead, which are smaller; units
// still read both.
func EncodeDelta(base, binary []byte) ([]byte, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(windowFor(len(binary), len(base))),
		zstd.WithEncoderDictRaw(dictID, base))
	if err != nil {
		return nil, fmt.Errorf("ota: zstd: %w", err)
	}
	defer enc.Close()
	return enc.EncodeAll(binary, nil), nil
}

// Decode writes the binary a payload holds to w, checking its size and
// SHA-256 against m; base is the running binary for a delta (its hash is
// checked first), nil otherwise. A payload is decoded only after its
// bundle's signature and payload hash were checked.
func Decode(ctx context.Context, m Manifest, payload io.Reader, base []byte, w io.Writer) error {
	if m.IsDelta() {
		if base == nil {
			return refuse(ErrDeltaBase, "the release is a delta and no base binary was given: send a full bundle")
		}
		if got := sha256Hex(base); got != m.DeltaBaseSHA256 {
			return refuse(ErrDeltaBase, fmt.Sprintf("the release is a delta from the binary with sha256 %s…, the unit runs %s…: send a full bundle, or a delta made from the unit's binary", m.DeltaBaseSHA256[:16], got[:16]))
		}
	}
	h := sha256.New()
	var n int64
	var err error
	if m.Encoding == EncodingBsdiffZstd {
		cw := &countWriter{w: io.MultiWriter(w, h)}
		err = applyBsdiff(ctx, base, payload, m.Size, cw)
		n = cw.n
	} else {
		n, err = decodeZstd(ctx, m, payload, base, io.MultiWriter(w, h))
	}
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		var werr *writeError
		if errors.As(err, &werr) {
			return fmt.Errorf("ota: writing the binary: %w", werr.err)
		}
		var r *RefusedError
		if errors.As(err, &r) {
			return err
		}
		return refuse(ErrBinaryHash, fmt.Sprintf("the payload does not decompress (%v): the bundle is damaged; build it again", err))
	}
	if n != m.Size {
		return refuse(ErrBinaryHash, fmt.Sprintf("the payload decompresses to %d bytes (or more), the manifest says %d: the bundle is wrong; build it again", n, m.Size))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.SHA256 {
		return refuse(ErrBinaryHash, fmt.Sprintf("the decompressed binary has sha256 %s…, the manifest says %s…: the bundle is wrong; build it again", got[:16], m.SHA256[:16]))
	}
	return nil
}

// decodeZstd writes the binary of a "zstd" or "zstd-delta" payload to w,
// up to one byte more than the manifest's size.
func decodeZstd(ctx context.Context, m Manifest, payload io.Reader, base []byte, w io.Writer) (int64, error) {
	// The window bounds the decoder's memory; the output is bounded by
	// the manifest's size.
	window := uint64(windowFor(int(m.Size), len(base)))
	opts := []zstd.DOption{
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(window),
		zstd.WithDecoderMaxWindow(window),
	}
	if m.Encoding == EncodingZstdDelta {
		opts = append(opts, zstd.WithDecoderDictRaw(dictID, base))
	}
	dec, err := zstd.NewReader(payload, opts...)
	if err != nil {
		return 0, fmt.Errorf("ota: zstd: %w", err)
	}
	defer dec.Close()
	return copyCtx(ctx, w, io.LimitReader(dec, m.Size+1))
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

// copyCtx copies src to dst in chunks, stopping when ctx is done. Errors
// of dst are returned as *writeError, to tell them from a bad payload.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := src.Read(buf)
		if k > 0 {
			if _, err := dst.Write(buf[:k]); err != nil {
				return n, &writeError{err}
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
