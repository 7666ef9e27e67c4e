package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/agent/identity"
)

func provisionCA(t *testing.T) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "test fleet CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	d := t.TempDir()
	c, k := filepath.Join(d, "ca.crt"), filepath.Join(d, "ca.key")
	os.WriteFile(c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return c, k
}

func runProvision(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	g := &globals{
		env: Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }},
		log: slog.New(slog.DiscardHandler),
	}
	code := provisionCmd(context.Background(), g, args)
	return out.String(), errb.String(), code
}

func TestProvisionUnit(t *testing.T) {
	caCrt, caKey := provisionCA(t)
	reg, out := filepath.Join(t.TempDir(), "reg"), t.TempDir()
	base := []string{"--ca", caCrt, "--ca-key", caKey, "--registry", reg, "--broker", "ssl://mqtt.example:8883", "-o", out}
	stdout, stderr, code := runProvision(t, append([]string{"lamp-14", "--site", "Fly-tip lane: north"}, base...)...)
	if code != ExitOK {
		t.Fatalf("provision: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Unit lamp-14 provisioned", "outpost provision --config /etc/outpost/outpost.yaml", "register-key lamp-14 --registry " + reg, "/etc/outpost/tls"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	dir := filepath.Join(out, "lamp-14")
	if st, err := os.Stat(filepath.Join(dir, "unit.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("unit.key: %v %v", err, st)
	}
	cfg, err := config.Load(filepath.Join(dir, "outpost.yaml"))
	if err != nil {
		t.Fatalf("outpost.yaml is not a valid config: %v", err)
	}
	if cfg.Unit.ID != "lamp-14" || cfg.Unit.Site != "Fly-tip lane: north" || cfg.Uplink.Broker != "ssl://mqtt.example:8883" ||
		cfg.Uplink.TLS.CA != "/etc/outpost/tls/ca.crt" || cfg.Uplink.TLS.Cert != "/etc/outpost/tls/unit.crt" || cfg.Uplink.TLS.Key != "/etc/outpost/tls/unit.key" {
		t.Errorf("config: %+v %+v", cfg.Unit, cfg.Uplink)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "unit.crt"), filepath.Join(dir, "unit.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil || leaf.Subject.CommonName != "lamp-14" {
		t.Fatalf("unit.crt: CN %q: %v", leaf.Subject.CommonName, err)
	}

	// Again: refused, files untouched.
	before, _ := os.ReadFile(filepath.Join(dir, "unit.crt"))
	_, stderr, code = runProvision(t, append([]string{"lamp-14"}, base...)...)
	if code != ExitFailure || !strings.Contains(stderr, "--renew") {
		t.Fatalf("second provision: exit %d: %s", code, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "unit.crt")); !bytes.Equal(before, after) {
		t.Fatal("a refused provision changed the unit's files")
	}
	// With another output directory the registry still refuses it.
	_, stderr, code = runProvision(t, "lamp-14", "--ca", caCrt, "--ca-key", caKey, "--registry", reg, "--broker", "ssl://mqtt.example:8883", "-o", t.TempDir())
	if code != ExitFailure || !strings.Contains(stderr, "already registered") {
		t.Fatalf("provision into another dir: exit %d: %s", code, stderr)
	}
	stdout, stderr, code = runProvision(t, append([]string{"lamp-14", "--renew"}, base...)...)
	if code != ExitOK || !strings.Contains(stdout, "new certificate") {
		t.Fatalf("renew: exit %d: %s%s", code, stdout, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "unit.crt")); bytes.Equal(before, after) {
		t.Fatal("renew left the old certificate")
	}

	// The unit's evidence key, then the list.
	k, _, _ := identity.LoadOrCreate(t.TempDir())
	stdout, stderr, code = runProvision(t, "register-key", "lamp-14", "--registry", reg, "--key", k.PublicKeyString())
	if code != ExitOK || !strings.Contains(stdout, "evidence key registered") {
		t.Fatalf("register-key: exit %d: %s%s", code, stdout, stderr)
	}
	stdout, _, code = runProvision(t, "register-key", "lamp-14", "--registry", reg, "--key", k.PublicKeyString())
	if code != ExitOK || !strings.Contains(stdout, "nothing changed") {
		t.Fatalf("register-key again: exit %d: %s", code, stdout)
	}
	stdout, stderr, code = runProvision(t, "list", "--registry", reg)
	if code != ExitOK || !strings.Contains(stdout, "lamp-14") || !strings.Contains(stdout, "Fly-tip lane: north") || !strings.Contains(stdout, "registered 20") {
		t.Fatalf("list: exit %d: %s%s", code, stdout, stderr)
	}
	stdout, _, _ = runProvision(t, "list", "--registry", reg, "--json")
	var l struct {
		Units []struct {
			ID              string   `json:"id"`
			EvidenceKey     string   `json:"evidence_key"`
			PreviousSerials []string `json:"previous_serials"`
		} `json:"units"`
	}
	if err := json.Unmarshal([]byte(stdout), &l); err != nil || len(l.Units) != 1 || l.Units[0].EvidenceKey != k.PublicKeyString() || len(l.Units[0].PreviousSerials) != 1 {
		t.Fatalf("list --json: %v: %s", err, stdout)
	}
}

func TestProvisionUsageErrors(t *testing.T) {
	caCrt, caKey := provisionCA(t)
	reg, out := t.TempDir(), t.TempDir()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no args", nil, "usage"},
		{"missing flags", []string{"lamp-1", "--ca", caCrt}, "--ca-key, --registry, --broker, -o OUTDIR"},
		{"bad id", []string{"Lamp_1", "--ca", caCrt, "--ca-key", caKey, "--registry", reg, "--broker", "ssl://h:8883", "-o", out}, "a-z, 0-9"},
		{"operator id", []string{"operator-bob", "--ca", caCrt, "--ca-key", caKey, "--registry", reg, "--broker", "ssl://h:8883", "-o", out}, "operators"},
		{"plain broker", []string{"lamp-1", "--ca", caCrt, "--ca-key", caKey, "--registry", reg, "--broker", "tcp://h:1883", "-o", out}, "ssl://"},
		{"bad broker", []string{"lamp-1", "--ca", caCrt, "--ca-key", caKey, "--registry", reg, "--broker", "ssl://h", "-o", out}, "uplink.broker"},
		{"key missing", []string{"register-key", "lamp-1", "--registry", reg}, "--key"},
		{"two ids", []string{"a", "b"}, "one unit id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := runProvision(t, c.args...)
			if code != ExitUsage || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr lacks %q:\n%s", code, c.want, stderr)
			}
		})
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("usage errors wrote files: %v", ents)
	}
	// Failures that are not usage errors.
	_, stderr, code := runProvision(t, "register-key", "nobody", "--registry", reg, "--key", "outpost-evidence-ed25519 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
	if code != ExitFailure || !strings.Contains(stderr, "provision it first") {
		t.Errorf("key of an unknown unit: exit %d: %s", code, stderr)
	}
	_, stderr, code = runProvision(t, "list", "--registry", filepath.Join(reg, "none"))
	if code != ExitFailure || !strings.Contains(stderr, "no registry") {
		t.Errorf("list of a missing registry: exit %d: %s", code, stderr)
	}
	_, stderr, code = runProvision(t, "lamp-1", "--ca", caCrt, "--ca-key", caCrt, "--registry", reg, "--broker", "ssl://h:8883", "-o", out)
	if code != ExitFailure || !strings.Contains(stderr, "CA key") {
		t.Errorf("certificate given as the CA key: exit %d: %s", code, stderr)
	}
}

func TestProvisionOperator(t *testing.T) {
	caCrt, caKey := provisionCA(t)
	reg, out := t.TempDir(), t.TempDir()
	stdout, stderr, code := runProvision(t, "operator", "alice", "--ca", caCrt, "--ca-key", caKey, "--registry", reg, "-o", out)
	if code != ExitOK || !strings.Contains(stdout, "user operator-alice") || !strings.Contains(stdout, "topic read outpost/#") {
		t.Fatalf("operator: exit %d: %s%s", code, stdout, stderr)
	}
	dir := filepath.Join(out, "operator-alice")
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "operator.crt"), filepath.Join(dir, "operator.key")); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runProvision(t, "operator", "alice", "--ca", caCrt, "--ca-key", caKey, "--registry", reg, "-o", out); code != ExitFailure {
		t.Fatalf("second operator alice: exit %d: %s", code, stderr)
	}
	stdout, _, _ = runProvision(t, "list", "--registry", reg)
	if !strings.Contains(stdout, "operator-alice") {
		t.Errorf("list lacks the operator:\n%s", stdout)
	}
}

// TestProvisionWithOperatorKeys: given the operators' keys, the unit's
// configuration requires signed commands and lists them; a bad key line
// issues nothing.
func TestProvisionWithOperatorKeys(t *testing.T) {
	caCrt, caKey := provisionCA(t)
	reg, out := filepath.Join(t.TempDir(), "reg"), t.TempDir()
	keys := t.TempDir()
	alice, _, code := runMain(t, nil, "operator", "keygen", "alice", "-o", keys)
	bob, _, code2 := runMain(t, nil, "operator", "keygen", "bob", "-o", keys)
	if code != ExitOK || code2 != ExitOK {
		t.Fatal("operator keygen failed")
	}
	base := []string{"--ca", caCrt, "--ca-key", caKey, "--registry", reg, "--broker", "ssl://mqtt.example:8883", "-o", out}

	_, stderr, code := runProvision(t, append([]string{"lamp-20", "--operator-key", "outpost-operator-ed25519 AAAA alice"}, base...)...)
	if code != ExitUsage || !strings.Contains(stderr, "--operator-key") {
		t.Fatalf("a bad key line: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "lamp-20")); err == nil {
		t.Fatal("a refused provision wrote the unit's files")
	}

	stdout, stderr, code := runProvision(t, append([]string{"lamp-20", "--operator-key", strings.TrimSpace(alice), "--operator-key", strings.TrimSpace(bob)}, base...)...)
	if code != ExitOK || !strings.Contains(stdout, "only those signed by the 2 operator key(s)") {
		t.Fatalf("provision: exit %d\n%s%s", code, stdout, stderr)
	}
	cfg, err := config.Load(filepath.Join(out, "lamp-20", "outpost.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ks := cfg.Security.Keys()
	if cfg.Security.SignedCommands != config.SignedRequired || len(ks) != 2 || ks["alice"] == nil || ks["bob"] == nil {
		t.Fatalf("security: %+v", cfg.Security)
	}

	// Without keys the file says the unit takes unsigned commands.
	stdout, _, _ = runProvision(t, append([]string{"lamp-21"}, base...)...)
	cfg, err = config.Load(filepath.Join(out, "lamp-21", "outpost.yaml"))
	if err != nil || cfg.Security.SignedCommands != config.SignedOptional || !strings.Contains(stdout, "unsigned ones accepted") {
		t.Fatalf("without keys: %v %+v\n%s", err, cfg.Security, stdout)
	}
}
