package control

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/outpost-cctv/outpost/ota"
)

// bundles writes signed bundles of release v2.0.0 of newBin: the full one,
// and a delta from base.
func bundles(t *testing.T, base, newBin []byte) (delta, full string) {
	t.Helper()
	k, err := ota.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, o ota.BuildOptions) string {
		var buf bytes.Buffer
		o.Version, o.Arch = "v2.0.0", "arm64"
		if _, err := ota.Build(&buf, k, newBin, o); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("delta.bundle", ota.BuildOptions{Base: base}), write("full.bundle", ota.BuildOptions{})
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestPushFallsBackToFull drives the choice between a delta and the full
// bundle against a fake unit: its update status, and the outcome of each
// bundle pushed.
func TestPushFallsBackToFull(t *testing.T) {
	base := bytes.Repeat([]byte("the binary the delta was made from "), 200)
	other := bytes.Repeat([]byte("another binary "), 300)
	newBin := append(slices.Clone(base), []byte("and a fix")...)
	delta, full := bundles(t, base, newBin)
	baseSum, otherSum := hexSum(base), hexSum(other)
	running := func(sum string) ota.Status {
		return ota.Status{State: ota.StateCommitted, Running: ota.Slot{Version: "v1.0.0", SHA256: sum}}
	}
	rejected := func(sum, reason string) ota.Status {
		st := running(sum)
		st.State, st.Reason = ota.StateFailed, reason
		return st
	}
	committed := ota.Status{State: ota.StateCommitted, Running: ota.Slot{Version: "v2.0.0"}}
	for _, tc := range []struct {
		name     string
		before   ota.Status
		outcomes map[string]ota.Status // by bundle
		pushed   []string
		outcome  string
		fellBack string // in the reason, "" for none
	}{
		{"the unit runs the base: the delta", running(baseSum), map[string]ota.Status{delta: committed}, []string{delta}, "committed", ""},
		{"the unit runs another binary: the full one, nothing of the delta sent", running(otherSum), map[string]ota.Status{full: committed}, []string{full}, "committed", "the unit runs v1.0.0"},
		{"the status does not tell: the delta, refused, then the full one", running(""),
			map[string]ota.Status{delta: rejected(otherSum, "the release is a delta from another binary"), full: committed},
			[]string{delta, full}, "committed", "the unit refused the delta: the release is a delta from another binary"},
		{"refused for another reason: no fall-back", running(""),
			map[string]ota.Status{delta: rejected(baseSum, "not signed by a pinned key")}, []string{delta}, "rejected", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pushed []string
			var told string
			r := PushRequest{Unit: "u1", Bundle: delta, Full: full, FellBack: func(why string) { told = why }}
			res, err := pushWithFallback(context.Background(), r,
				func(context.Context) (ota.Status, error) { return tc.before, nil },
				func(_ context.Context, b string) (PushResult, error) {
					pushed = append(pushed, b)
					return PushResult{Bundle: b, Status: tc.outcomes[b]}, nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pushed, tc.pushed) {
				t.Fatalf("pushed %v, want %v", pushed, tc.pushed)
			}
			if got := res.Status.Outcome(); got != tc.outcome {
				t.Fatalf("outcome %q, want %q", got, tc.outcome)
			}
			if res.FellBack != told {
				t.Fatalf("result says fell back %q, the callback was told %q", res.FellBack, told)
			}
			if (tc.fellBack == "") != (told == "") || !strings.Contains(told, tc.fellBack) {
				t.Fatalf("fell back %q, want %q", told, tc.fellBack)
			}
		})
	}
}

func TestPushFallbackRefusesMismatchedBundles(t *testing.T) {
	base := bytes.Repeat([]byte("base "), 500)
	delta, full := bundles(t, base, append(slices.Clone(base), 'x'))
	_, otherFull := bundles(t, base, append(slices.Clone(base), 'y'))
	for _, tc := range []struct {
		name, bundle, full, want string
	}{
		{"full given as the delta", full, full, "is a full bundle already"},
		{"delta given as the full", delta, delta, "is not the full bundle"},
		{"another binary", delta, otherFull, "is not the full bundle"},
		{"not a bundle", delta, "/nonexistent/full.bundle", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := PushRequest{Unit: "u1", Bundle: tc.bundle, Full: tc.full}
			_, err := pushWithFallback(context.Background(), r,
				func(context.Context) (ota.Status, error) { return ota.Status{}, nil },
				func(context.Context, string) (PushResult, error) {
					t.Fatal("pushed a bundle")
					return PushResult{}, nil
				})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzBundleManifest: the manifest of any bytes is read without a panic.
func FuzzBundleManifest(f *testing.F) {
	var buf bytes.Buffer
	k, _ := ota.GenerateKey()
	if _, err := ota.Build(&buf, k, []byte("a binary"), ota.BuildOptions{Version: "v1.0.0", Arch: "arm64"}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("OPXB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := BundleManifest(bytes.NewReader(b))
		if err == nil && len(b) < 88 {
			t.Fatalf("read a manifest %+v from %d bytes", m, len(b))
		}
	})
}
