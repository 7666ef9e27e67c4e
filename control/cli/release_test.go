package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runRelease(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	g := &globals{env: Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}}
	code := releaseCmd(context.Background(), g, args)
	return code, out.String(), errb.String()
}

func TestReleaseCommands(t *testing.T) {
	dir := t.TempDir()
	keys, other := filepath.Join(dir, "keys"), filepath.Join(dir, "other")
	if code, out, errs := runRelease(t, "keygen", "--out", keys, "--comment", "release desk"); code != ExitOK || !strings.Contains(out, "outpost-release-ed25519 ") {
		t.Fatalf("keygen: %d\n%s%s", code, out, errs)
	}
	if code, _, _ := runRelease(t, "keygen", "--out", other); code != ExitOK {
		t.Fatal("keygen other")
	}
	if code, _, errs := runRelease(t, "keygen", "--out", keys); code == ExitOK || !strings.Contains(errs, "not overwriting") {
		t.Errorf("keygen over an existing key: %d %s", code, errs)
	}
	key, pub := filepath.Join(keys, "release.key"), filepath.Join(keys, "release.pub")

	old := bytes.Repeat([]byte("the agent v1.2.3 with its code and strings\x00\x01\x02"), 20000)
	bin := append(bytes.Clone(old[:len(old)/2]), []byte("a small change in v1.2.4")...)
	bin = append(bin, old[len(old)/2:]...)
	oldPath, binPath := filepath.Join(dir, "outpost-old"), filepath.Join(dir, "outpost")
	os.WriteFile(oldPath, old, 0o755)
	os.WriteFile(binPath, bin, 0o755)

	full, delta := filepath.Join(dir, "full.otab"), filepath.Join(dir, "delta.otab")
	code, out, errs := runRelease(t, "build", "--key", key, "--arch", "arm64", "--version", "v1.2.4", "--min-from", "v1.0.0", binPath, "-o", full)
	if code != ExitOK || !strings.Contains(out, "v1.2.4 for arm64, full") {
		t.Fatalf("build: %d\n%s%s", code, out, errs)
	}
	code, out, errs = runRelease(t, "build", "--key", key, "--arch", "arm64", "--version", "v1.2.4", "--delta-from", oldPath, binPath, "-o", delta)
	if code != ExitOK || !strings.Contains(out, "delta from") {
		t.Fatalf("build delta: %d\n%s%s", code, out, errs)
	}

	code, out, errs = runRelease(t, "verify", "--pub", pub, full, "--running-version", "v1.2.3", "--arch", "arm64")
	if code != ExitOK {
		t.Fatalf("verify: %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"version          v1.2.4", "min_from_version v1.0.0", "signature OK by key ", "(release desk)", "binary rebuilt from the payload", "would install it"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runRelease(t, "verify", "--pub", pub, delta, "--running-binary", oldPath)
	if code != ExitOK || !strings.Contains(out, "bsdiff-zstd") || !strings.Contains(out, "binary rebuilt") {
		t.Errorf("verify delta: %d\n%s", code, out)
	}
	code, out, _ = runRelease(t, "verify", "--pub", pub, delta)
	if code != ExitOK || !strings.Contains(out, "give --running-binary") {
		t.Errorf("verify delta without its base: %d\n%s", code, out)
	}
	code, out, _ = runRelease(t, "verify", "--json", "--pub", pub, full)
	if code != ExitOK || !strings.Contains(out, `"key_id"`) {
		t.Errorf("verify --json: %d\n%s", code, out)
	}

	refusals := []struct {
		name string
		args []string
		want string
	}{
		{"another key", []string{"verify", "--pub", filepath.Join(other, "release.pub"), full}, "not signed by a pinned key"},
		{"no key", []string{"verify", full}, "no release key configured"},
		{"downgrade", []string{"verify", "--pub", pub, full, "--running-version", "v1.3.0"}, "does not allow a downgrade"},
		{"min_from", []string{"verify", "--pub", pub, full, "--running-version", "v0.9.0"}, "installs only over v1.0.0"},
		{"arch", []string{"verify", "--pub", pub, full, "--arch", "armv6"}, "is for arm64"},
		{"delta base", []string{"verify", "--pub", pub, delta, "--running-binary", binPath}, "delta from the binary"},
		{"not a bundle", []string{"verify", "--pub", pub, binPath}, "not a release bundle"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runRelease(t, tc.args...)
			if code != ExitFailure || !strings.Contains(errs, tc.want) {
				t.Errorf("%v: exit %d, stderr %q (stdout %q), want %q", tc.args, code, errs, out, tc.want)
			}
		})
	}

	os.Chmod(key, 0o644)
	if code, _, errs := runRelease(t, "build", "--key", key, "--arch", "arm64", "--version", "v1.2.4", binPath, "-o", full); code == ExitOK || !strings.Contains(errs, "chmod 600") {
		t.Errorf("build with a world-readable key: %d %s", code, errs)
	}
	os.Chmod(key, 0o600)
	if code, _, errs := runRelease(t, "build", "--key", key, "--arch", "arm64", "--version", "1.2", binPath, "-o", full); code != ExitUsage || !strings.Contains(errs, "not a release version") {
		t.Errorf("build with a bad version: %d %s", code, errs)
	}
	for _, args := range [][]string{nil, {"frobnicate"}, {"build", binPath}, {"keygen"}, {"verify"}} {
		if code, _, _ := runRelease(t, args...); code != ExitUsage {
			t.Errorf("%v: exit %d, want usage", args, code)
		}
	}
}
