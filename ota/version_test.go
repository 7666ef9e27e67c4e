package ota

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersionCompare(t *testing.T) {
	// Each version is older than the next.
	order := []string{
		"v0.9.0",
		"v1.2.3-alpha",
		"v1.2.3-alpha.1",
		"v1.2.3-alpha.beta",
		"v1.2.3-beta.2",
		"v1.2.3-beta.11",
		"v1.2.3-rc.1",
		"v1.2.3-rc.1-2-gdeadbeef",
		"v1.2.3",
		"v1.2.3-1-g0123abc",
		"v1.2.3-4-gabcdef-dirty",
		"v1.2.3-10-gabcdef",
		"v1.2.4",
		"v1.10.0",
		"v2.0.0",
	}
	for i := range order {
		for j := range order {
			a, err := ParseVersion(order[i])
			if err != nil {
				t.Fatalf("ParseVersion(%q): %v", order[i], err)
			}
			b, _ := ParseVersion(order[j])
			want := sign(i - j)
			if got := a.Compare(b); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	same := [][2]string{{"v1.2.3", "1.2.3"}, {"v1.2.3+build.5", "v1.2.3"}, {"v1.2.3-dirty", "v1.2.3"}}
	for _, p := range same {
		a, _ := ParseVersion(p[0])
		b, _ := ParseVersion(p[1])
		if a.Compare(b) != 0 {
			t.Errorf("%s and %s should be the same version", p[0], p[1])
		}
	}
	for _, bad := range []string{"", "dev", "9ce8594-dirty", "v1.2", "v01.2.3", "v1.2.3-", "v1.2.3-a..b", "latest"} {
		if _, err := ParseVersion(bad); !errors.Is(err, ErrVersion) {
			t.Errorf("ParseVersion(%q): %v, want ErrVersion", bad, err)
		}
	}
}

func TestCheckPolicy(t *testing.T) {
	base := Manifest{Version: "v1.2.4", Arch: "arm64", Encoding: EncodingZstd}
	with := func(f func(*Manifest)) Manifest { m := base; f(&m); return m }
	cases := []struct {
		name string
		m    Manifest
		t    Target
		want error
	}{
		{"upgrade", base, Target{Version: "v1.2.3", Arch: "arm64"}, nil},
		{"upgrade from a build after the tag", base, Target{Version: "v1.2.3-4-gabcdef", Arch: "arm64"}, nil},
		{"wrong arch", base, Target{Version: "v1.2.3", Arch: "armv6"}, ErrArch},
		{"same version", base, Target{Version: "v1.2.4", Arch: "arm64"}, ErrDowngrade},
		{"downgrade", base, Target{Version: "v1.3.0", Arch: "arm64"}, ErrDowngrade},
		{"build after the release's tag is newer", base, Target{Version: "v1.2.4-1-gabcdef", Arch: "arm64"}, ErrDowngrade},
		{"downgrade allowed", with(func(m *Manifest) { m.AllowDowngrade = true }), Target{Version: "v1.3.0", Arch: "arm64"}, nil},
		{"min_from met", with(func(m *Manifest) { m.MinFromVersion = "v1.0.0" }), Target{Version: "v1.0.0", Arch: "arm64"}, nil},
		{"min_from not met", with(func(m *Manifest) { m.MinFromVersion = "v1.0.0" }), Target{Version: "v0.9.9", Arch: "arm64"}, ErrMinFrom},
		{"min_from not met even with downgrade allowed", with(func(m *Manifest) { m.MinFromVersion = "v1.0.0"; m.AllowDowngrade = true }), Target{Version: "v0.9.9", Arch: "arm64"}, ErrMinFrom},
		{"untagged running version", base, Target{Version: "dev", Arch: "arm64"}, ErrVersion},
		{"untagged running version, any order allowed", with(func(m *Manifest) { m.AllowDowngrade = true }), Target{Version: "dev", Arch: "arm64"}, nil},
		{"nothing to check", base, Target{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPolicy(tc.m, tc.t)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("CheckPolicy: %v, want %v", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), tc.m.Version) {
				t.Errorf("the reason %q does not name the release", err)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	k := testKey(t)
	k.Comment = "release 2026"
	dir := t.TempDir()
	priv, pub, err := WriteKeyFiles(dir, k)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(priv)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %o, want 600", priv, fi.Mode().Perm())
	}
	pemBytes, _ := os.ReadFile(priv)
	if !strings.Contains(string(pemBytes), "BEGIN OUTPOST RELEASE SIGNING KEY") || !strings.Contains(string(pemBytes), "keep it offline") {
		t.Errorf("private key file lacks its header:\n%s", pemBytes)
	}
	k2, err := LoadPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if k2.Public().ID() != k.Public().ID() || k2.Comment != k.Comment {
		t.Errorf("loaded key %s %q, want %s %q", k2.Public().ID(), k2.Comment, k.Public().ID(), k.Comment)
	}
	pubs, err := LoadPublicKeys(pub)
	if err != nil || len(pubs) != 1 || pubs[0].ID() != k.Public().ID() || pubs[0].Comment != "release 2026" {
		t.Fatalf("LoadPublicKeys: %v %v", pubs, err)
	}
	line, _ := os.ReadFile(pub)
	if !strings.HasPrefix(string(line), "outpost-release-ed25519 ") || strings.Count(string(line), "\n") != 1 {
		t.Errorf("public key file %q is not one line", line)
	}
	if _, _, err := WriteKeyFiles(dir, k); err == nil {
		t.Error("WriteKeyFiles overwrote a key")
	}
	os.Chmod(priv, 0o644)
	if _, err := LoadPrivateKey(priv); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("LoadPrivateKey of a world-readable key: %v", err)
	}
	// Two keys pinned, comments and blank lines allowed.
	k3 := testKey(t)
	both := "# release keys\n" + k.Public().String() + "\n\n" + k3.Public().String() + "\n"
	keys, err := ParsePublicKeys([]byte(both))
	if err != nil || len(keys) != 2 {
		t.Fatalf("ParsePublicKeys: %v %v", keys, err)
	}
	for _, bad := range []string{"ssh-ed25519 AAAA", "outpost-release-ed25519", "outpost-release-ed25519 !!!", "outpost-release-ed25519 AAAA"} {
		if _, err := ParsePublicKeys([]byte(bad)); err == nil {
			t.Errorf("ParsePublicKeys(%q) succeeded", bad)
		}
	}
	if _, err := ParsePrivateKey([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")); err == nil {
		t.Error("ParsePrivateKey accepted another PEM type")
	}
	if _, err := LoadPublicKeys(filepath.Join(dir, "missing.pub")); err == nil {
		t.Error("LoadPublicKeys of a missing file succeeded")
	}
}
