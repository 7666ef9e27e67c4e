package ota

import (
	"fmt"
	"io"
	"os"
)

// Target is what a unit runs, against which a release is checked.
type Target struct {
	// Version of the running agent; empty skips the version checks.
	Version string
	// Arch of the unit (one of Arches); empty skips the check.
	Arch string
	// BinarySHA256 of the running binary, checked against a delta's base;
	// empty skips the check.
	BinarySHA256 string
}

// CheckPolicy decides whether a unit running t may install the release m:
// the architecture, min_from_version, the version order (a downgrade or a
// reinstall of the running version needs allow_downgrade) and a delta's
// base.
func CheckPolicy(m Manifest, t Target) error {
	if t.Arch != "" && m.Arch != t.Arch {
		return refuse(ErrArch, fmt.Sprintf("the release %s is for %s, this unit is %s: build one for %s", m.Version, m.Arch, t.Arch, t.Arch))
	}
	if t.Version != "" {
		to, err := ParseVersion(m.Version)
		if err != nil {
			return err
		}
		from, err := ParseVersion(t.Version)
		switch {
		case err != nil && (m.AllowDowngrade && m.MinFromVersion == ""):
			// A unit running an untagged build may take a release
			// that allows any order and sets no minimum.
		case err != nil:
			return refuse(ErrVersion, fmt.Sprintf("the unit runs %q, which cannot be compared with %s: install a tagged release by package, or sign the release with allow_downgrade and no min_from_version", t.Version, m.Version))
		default:
			if m.MinFromVersion != "" {
				lowest, _ := ParseVersion(m.MinFromVersion)
				if from.Compare(lowest) < 0 {
					return refuse(ErrMinFrom, fmt.Sprintf("the release %s installs only over %s or later, the unit runs %s: install an intermediate release first", m.Version, m.MinFromVersion, t.Version))
				}
			}
			if c := to.Compare(from); c <= 0 && !m.AllowDowngrade {
				what := "older than"
				if c == 0 {
					what = "the same as"
				}
				return refuse(ErrDowngrade, fmt.Sprintf("the release %s is %s the running %s and its manifest does not allow a downgrade: build it with --allow-downgrade to go back on purpose", m.Version, what, t.Version))
			}
		}
	}
	if m.IsDelta() && t.BinarySHA256 != "" && m.DeltaBaseSHA256 != t.BinarySHA256 {
		return refuse(ErrDeltaBase, fmt.Sprintf("the release is a delta from the binary with sha256 %s…, the unit runs %s…: send a full bundle, or a delta made from the unit's binary", m.DeltaBaseSHA256[:16], t.BinarySHA256[:min(16, len(t.BinarySHA256))]))
	}
	return nil
}

// Verify opens a bundle, verifies its signature against the pinned keys,
// hashes its payload and checks it against the unit t. Nothing is
// decompressed. The returned bundle reads from r.
func Verify(r io.ReaderAt, size int64, keys []PublicKey, t Target) (*Bundle, error) {
	b, err := OpenBundle(r, size, keys)
	if err != nil {
		return nil, err
	}
	if err := CheckPolicy(b.Manifest, t); err != nil {
		return nil, err
	}
	if err := b.CheckPayload(); err != nil {
		return nil, err
	}
	return b, nil
}

// VerifyFile is Verify on a file; the caller closes the file.
func VerifyFile(path string, keys []PublicKey, t Target) (*Bundle, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("ota: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("ota: %w", err)
	}
	b, err := Verify(f, fi.Size(), keys, t)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return b, f, nil
}
