package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent"
	"github.com/outpost-cctv/outpost/agent/identity"
)

func runProvisionCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := provisionCmd(context.Background(), Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, args)
	return out.String(), errb.String(), code
}

func provisionConfig(t *testing.T, id, extra string) (path, data string) {
	t.Helper()
	dir := t.TempDir()
	data = filepath.Join(dir, "data")
	os.Mkdir(data, 0o750)
	path = filepath.Join(dir, "outpost.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf("unit:\n  id: %s\ndata_dir: %s\n%s", id, data, extra)), 0o640)
	return path, data
}

func TestProvisionMakesKeyOnce(t *testing.T) {
	cfg, data := provisionConfig(t, "lamp-14", "")
	out1, stderr, code := runProvisionCmd(t, "--config", cfg)
	if code != agent.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	k, err := identity.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"made now", k.PublicKeyString(), `outpostctl provision register-key lamp-14 --registry REGISTRY-DIR --key "` + k.PublicKeyString() + `"`, "Certificate: none"} {
		if !strings.Contains(out1, want) {
			t.Errorf("output lacks %q:\n%s", want, out1)
		}
	}
	out2, _, code := runProvisionCmd(t, "--config", cfg, "--registry", "/srv/fleet")
	if code != agent.ExitOK || !strings.Contains(out2, "kept") || !strings.Contains(out2, k.PublicKeyString()) || !strings.Contains(out2, "--registry /srv/fleet") {
		t.Fatalf("second run: exit %d:\n%s", code, out2)
	}
}

func TestProvisionDamagedKeyKept(t *testing.T) {
	cfg, data := provisionConfig(t, "lamp-14", "")
	p := identity.Path(data)
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, []byte("-----BEGIN PRIVATE KEY-----\ntruncated"), 0o600)
	_, stderr, code := runProvisionCmd(t, "--config", cfg)
	if code != agent.ExitFailure || !strings.Contains(stderr, "damaged") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(p); string(b) != "-----BEGIN PRIVATE KEY-----\ntruncated" {
		t.Fatal("the damaged key was replaced")
	}
}

func TestProvisionBadConfigAndFlags(t *testing.T) {
	cfg, _ := provisionConfig(t, "Bad_ID", "")
	if _, stderr, code := runProvisionCmd(t, "--config", cfg); code != agent.ExitUsage || !strings.Contains(stderr, "unit.id") {
		t.Errorf("bad config: exit %d: %s", code, stderr)
	}
	if _, _, code := runProvisionCmd(t, "extra"); code != agent.ExitUsage {
		t.Errorf("stray argument: exit %d", code)
	}
}

// writeCert writes a CA and a client certificate for cn signed by it.
func writeCert(t *testing.T, dir, cn string, notAfter time.Time) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour * 365), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-2 * time.Hour),
		NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(k)
	ca, cert, key = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "unit.crt"), filepath.Join(dir, "unit.key")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return ca, cert, key
}

func TestProvisionChecksCertificate(t *testing.T) {
	for _, c := range []struct {
		name     string
		cn       string
		notAfter time.Time
		code     int
		want     string
	}{
		{"good", "lamp-14", time.Now().Add(24 * time.Hour), agent.ExitOK, "lamp-14, valid until"},
		{"other unit", "lamp-15", time.Now().Add(24 * time.Hour), agent.ExitFailure, `it is for "lamp-15"`},
		{"expired", "lamp-14", time.Now().Add(-time.Hour), agent.ExitFailure, "expired"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ca, cert, key := writeCert(t, t.TempDir(), c.cn, c.notAfter)
			cfg, _ := provisionConfig(t, "lamp-14", fmt.Sprintf("uplink:\n  broker: ssl://127.0.0.1:8883\n  tls:\n    ca: %s\n    cert: %s\n    key: %s\n", ca, cert, key))
			out, stderr, code := runProvisionCmd(t, "--config", cfg)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, want %d and %q:\n%s%s", code, c.code, c.want, out, stderr)
			}
			// The key is made whatever the certificate's state.
			if !strings.Contains(out, identity.KeyType) {
				t.Errorf("no key line:\n%s", out)
			}
		})
	}
}
