package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"github.com/outpost-cctv/outpost/agent/config"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-cctv/outpost/uplink/cmdauth"
)

func runMain(t *testing.T, getenv map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return getenv[k] }}
	code := Main(context.Background(), env, args)
	return out.String(), errb.String(), code
}

func TestOperatorKeygen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	out, errs, code := runMain(t, nil, "operator", "keygen", "alice", "-o", dir)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	line := strings.TrimSpace(out)
	pub, err := cmdauth.ParsePublicKey(line)
	if err != nil {
		t.Fatalf("printed %q: %v", out, err)
	}
	// The line is what a unit's configuration lists, as it is.
	if name, k, err := config.ParseOperatorKey(line); err != nil || name != "alice" || !k.Equal(pub) {
		t.Fatalf("the printed line is not a unit's operator key line: %q %v", name, err)
	}
	keyPath := filepath.Join(dir, "alice.key")
	st, err := os.Stat(keyPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", st, err)
	}
	priv, name, err := cmdauth.LoadPrivateKey(keyPath)
	if err != nil || name != "alice" || !priv.Public().(ed25519.PublicKey).Equal(pub) {
		t.Fatalf("key %q does not match the printed line: %v", name, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "alice.pub")); strings.TrimSpace(string(b)) != line {
		t.Errorf("alice.pub holds %q", b)
	}
	if !strings.Contains(errs, "sign_key: "+keyPath) {
		t.Errorf("no guidance: %s", errs)
	}

	// Never overwritten.
	before, _ := os.ReadFile(keyPath)
	if _, errs, code := runMain(t, nil, "operator", "keygen", "alice", "-o", dir); code == ExitOK || !strings.Contains(errs, "never overwritten") {
		t.Errorf("second keygen: exit %d: %s", code, errs)
	}
	if after, _ := os.ReadFile(keyPath); !bytes.Equal(before, after) {
		t.Error("the key was overwritten")
	}

	// pubkey prints the same line.
	if out, errs, code := runMain(t, nil, "operator", "pubkey", keyPath); code != ExitOK || strings.TrimSpace(out) != line {
		t.Errorf("pubkey: exit %d, %q: %s", code, out, errs)
	}

	for _, args := range [][]string{
		{"operator", "keygen", "a/b", "-o", dir},
		{"operator", "keygen", "bob"},
		{"operator"},
		{"operator", "rotate"},
		{"operator", "pubkey", filepath.Join(dir, "alice.pub")},
	} {
		if _, _, code := runMain(t, nil, args...); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, ExitUsage)
		}
	}
}

// A signing key that cannot be loaded, from the flag, the environment or
// ctl.yaml, stops the command before anything is sent.
func TestSignKeySettings(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nobody.key")
	cfg := filepath.Join(dir, "ctl.yaml")
	if err := os.WriteFile(cfg, []byte("broker: tcp://127.0.0.1:1\nsign_key: "+missing+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notKey := filepath.Join(dir, "ops.key")
	if err := os.WriteFile(notKey, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--config", cfg, "trigger", "u1"}, "nobody.key"},
		{nil, []string{"--broker", "tcp://127.0.0.1:1", "trigger", "u1", "--sign-key", notKey}, "holds no PEM block"},
		{nil, []string{"--sign-key", notKey, "--broker", "tcp://127.0.0.1:1", "trigger", "u1"}, "holds no PEM block"},
		{map[string]string{"OUTPOST_SIGN_KEY": missing}, []string{"--broker", "tcp://127.0.0.1:1", "trigger", "u1"}, "nobody.key"},
	} {
		_, errs, code := runMain(t, tc.env, tc.args...)
		if code != ExitUsage || !strings.Contains(errs, "--sign-key") || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d: %s", tc.args, code, errs)
		}
	}
}
