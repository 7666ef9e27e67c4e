package fleet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/identity"
)

// testCA writes a CA certificate and key valid for life and returns their
// paths.
func testCA(t *testing.T, life time.Duration) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Outpost test CA", Organization: []string{"Outpost test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(life),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	kder, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	// As openssl ecparam -genkey writes it: parameters, then the SEC 1 key.
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
	os.WriteFile(keyFile, append(params, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})...), 0o600)
	return certFile, keyFile
}

func loadTestCA(t *testing.T) *CA {
	t.Helper()
	c, k := testCA(t, 10*365*24*time.Hour)
	ca, err := LoadCA(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func openReg(t *testing.T) *Registry {
	t.Helper()
	r, err := Open(filepath.Join(t.TempDir(), "registry"), true)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFleetIssueRoundTrip(t *testing.T) {
	ca := loadTestCA(t)
	r := openReg(t)
	var delivered *Issued
	u, iss, err := r.Issue(ca, "lamp-14", IssueOptions{Site: "Fly-tip lane"}, func(i *Issued) error { delivered = i; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if delivered != iss {
		t.Fatal("deliver did not get the issued certificate")
	}
	// The certificate chains to the CA for client authentication only.
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := iss.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("unit certificate does not verify for client auth: %v", err)
	}
	if _, err := iss.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("unit certificate verifies for server auth")
	}
	c := iss.Cert
	if c.Subject.CommonName != "lamp-14" || c.IsCA || len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("certificate: CN %q, CA %v, ext key usage %v", c.Subject.CommonName, c.IsCA, c.ExtKeyUsage)
	}
	if life := c.NotAfter.Sub(c.NotBefore); life < Validity || life > Validity+time.Hour {
		t.Errorf("validity %s, want 2 years", life)
	}
	if c.SerialNumber.BitLen() < 64 {
		t.Errorf("serial %s is not random enough", c.SerialNumber)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", c.PublicKey)
	}
	if _, err := tls.X509KeyPair(iss.CertPEM, iss.KeyPEM); err != nil {
		t.Fatalf("certificate and key do not pair: %v", err)
	}
	// Recorded, and read back from disk.
	r2, _ := Open(r.Dir(), false)
	got, ok, err := r2.Unit("lamp-14")
	if err != nil || !ok {
		t.Fatalf("unit not in the registry: %v", err)
	}
	if got.Serial != iss.Serial() || got.Fingerprint != iss.Fingerprint() || !got.NotAfter.Equal(c.NotAfter) || got.Site != "Fly-tip lane" || got.Created.IsZero() {
		t.Errorf("record %+v does not match the certificate", got)
	}
	if u.Serial != got.Serial {
		t.Errorf("returned record %+v differs from the stored one", u)
	}
	if len(got.Fingerprint) != 32*3-1 {
		t.Errorf("fingerprint %q", got.Fingerprint)
	}
}

func TestFleetDuplicateRefusedUnlessRenew(t *testing.T) {
	ca := loadTestCA(t)
	r := openReg(t)
	first, _, err := r.Issue(ca, "trailer-2", IssueOptions{Site: "Fair"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, _, _ := identity.LoadOrCreate(t.TempDir())
	if _, _, err := r.RegisterKey("trailer-2", k.PublicKeyString(), false); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(r.Path())
	called := false
	_, _, err = r.Issue(ca, "trailer-2", IssueOptions{}, func(*Issued) error { called = true; return nil })
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--renew") {
		t.Fatalf("duplicate: %v", err)
	}
	if called {
		t.Error("a certificate was delivered for a refused duplicate")
	}
	if after, _ := os.ReadFile(r.Path()); string(after) != string(before) {
		t.Error("a refused duplicate changed the registry")
	}
	renewed, _, err := r.Issue(ca, "trailer-2", IssueOptions{Renew: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.Serial == first.Serial || len(renewed.PreviousSerials) != 1 || renewed.PreviousSerials[0] != first.Serial {
		t.Errorf("renewal: serial %s, previous %v (first %s)", renewed.Serial, renewed.PreviousSerials, first.Serial)
	}
	if !renewed.Created.Equal(first.Created) || renewed.Renewed == nil || renewed.Site != "Fair" || renewed.EvidenceKey != k.PublicKeyString() {
		t.Errorf("renewal lost the record's details: %+v", renewed)
	}
}

func TestFleetDeliverFailureRecordsNothing(t *testing.T) {
	ca := loadTestCA(t)
	r := openReg(t)
	_, _, err := r.Issue(ca, "lamp-1", IssueOptions{}, func(*Issued) error { return errors.New("disk full") })
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err %v", err)
	}
	if us, _ := r.Units(); len(us) != 0 {
		t.Fatalf("a unit whose files were not written was recorded: %+v", us)
	}
	if _, _, err := r.Issue(ca, "lamp-1", IssueOptions{}, nil); err != nil {
		t.Fatalf("issuing again after a failed delivery: %v", err)
	}
}

func TestFleetUnitIDs(t *testing.T) {
	ca := loadTestCA(t)
	r := openReg(t)
	for _, id := range []string{"", "Lamp-14", "lamp_14", "lamp 14", "../x", strings.Repeat("a", 65), "operator-alice"} {
		if _, _, err := r.Issue(ca, id, IssueOptions{}, nil); err == nil {
			t.Errorf("unit id %q accepted", id)
		}
	}
	for _, id := range []string{"a", "lamp-14", strings.Repeat("a", 64)} {
		if _, _, err := r.Issue(ca, id, IssueOptions{}, nil); err != nil {
			t.Errorf("unit id %q refused: %v", id, err)
		}
	}
}

func TestFleetRegistryTempFileIgnored(t *testing.T) {
	ca := loadTestCA(t)
	r := openReg(t)
	if _, _, err := r.Issue(ca, "lamp-1", IssueOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	// A crash during a later change left its temporary file: a complete
	// one (before the rename) and a torn one.
	whole := `{"version":1,"units":{"ghost":{"id":"ghost","serial":"1"}}}`
	os.WriteFile(filepath.Join(r.Dir(), "."+FileName+".tmp111"), []byte(whole), 0o640)
	os.WriteFile(filepath.Join(r.Dir(), "."+FileName+".tmp222"), []byte(`{"version":1,"uni`), 0o640)

	r2, _ := Open(r.Dir(), false)
	us, err := r2.Units()
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 1 || us[0].ID != "lamp-1" {
		t.Fatalf("units %+v, want only lamp-1", us)
	}
	if _, _, err := r2.Issue(ca, "lamp-2", IssueOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(r.Dir(), "."+FileName+".tmp*")); len(left) != 0 {
		t.Errorf("temporary files left after a change: %v", left)
	}
	if us, _ := r2.Units(); len(us) != 2 {
		t.Errorf("units %+v", us)
	}
}

func TestFleetDamagedRegistryKept(t *testing.T) {
	ca := loadTestCA(t)
	r := openReg(t)
	r.Issue(ca, "lamp-1", IssueOptions{}, nil)
	b, _ := os.ReadFile(r.Path())
	torn := b[:len(b)/2]
	os.WriteFile(r.Path(), torn, 0o640)
	if _, _, err := r.Issue(ca, "lamp-2", IssueOptions{}, nil); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("issue on a damaged registry: %v", err)
	}
	if got, _ := os.ReadFile(r.Path()); string(got) != string(torn) {
		t.Fatal("a damaged registry was overwritten")
	}
	os.WriteFile(r.Path(), []byte(`{"version":2,"units":{}}`), 0o640)
	if _, err := r.Units(); err == nil || !strings.Contains(err.Error(), "newer outpostctl") {
		t.Fatalf("future version: %v", err)
	}
}

func TestFleetConcurrentIssues(t *testing.T) {
	ca := loadTestCA(t)
	r := openReg(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Separate Registry values, as separate processes would have.
			ri, _ := Open(r.Dir(), false)
			_, _, err := ri.Issue(ca, fmt.Sprintf("unit-%d", i), IssueOptions{}, nil)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if us, _ := r.Units(); len(us) != 8 {
		t.Fatalf("%d units recorded, want 8", len(us))
	}
}

func TestFleetRegisterKey(t *testing.T) {
	ca := loadTestCA(t)
	r := openReg(t)
	k1, _, _ := identity.LoadOrCreate(t.TempDir())
	k2, _, _ := identity.LoadOrCreate(t.TempDir())
	if _, _, err := r.RegisterKey("lamp-1", k1.PublicKeyString(), false); !errors.Is(err, ErrUnknown) {
		t.Fatalf("key of an unknown unit: %v", err)
	}
	r.Issue(ca, "lamp-1", IssueOptions{}, nil)
	if _, _, err := r.RegisterKey("lamp-1", "ssh-ed25519 AAAA", false); err == nil {
		t.Fatal("a malformed key was accepted")
	}
	u, changed, err := r.RegisterKey("lamp-1", k1.PublicKeyString(), false)
	if err != nil || !changed || u.EvidenceKey != k1.PublicKeyString() || u.EvidenceKeyAdded == nil {
		t.Fatalf("register: %+v %v %v", u, changed, err)
	}
	if _, changed, err := r.RegisterKey("lamp-1", " "+k1.PublicKeyString()+"\n", false); err != nil || changed {
		t.Fatalf("registering the same key again: changed=%v %v", changed, err)
	}
	if _, _, err := r.RegisterKey("lamp-1", k2.PublicKeyString(), false); err == nil || !strings.Contains(err.Error(), "--replace") {
		t.Fatalf("another key without --replace: %v", err)
	}
	u, changed, err = r.RegisterKey("lamp-1", k2.PublicKeyString(), true)
	if err != nil || !changed || u.EvidenceKey != k2.PublicKeyString() || len(u.PreviousEvidenceKeys) != 1 || u.PreviousEvidenceKeys[0] != k1.PublicKeyString() {
		t.Fatalf("replace: %+v %v", u, err)
	}
	var f file
	b, _ := os.ReadFile(r.Path())
	if err := json.Unmarshal(b, &f); err != nil || f.Units["lamp-1"].EvidenceKey != k2.PublicKeyString() {
		t.Fatalf("on disk: %s", b)
	}
}

func TestFleetOperator(t *testing.T) {
	ca := loadTestCA(t)
	r := openReg(t)
	op, iss, err := r.IssueOperator(ca, "alice", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if op.Name != "operator-alice" || iss.Cert.Subject.CommonName != "operator-alice" {
		t.Errorf("operator %q, CN %q", op.Name, iss.Cert.Subject.CommonName)
	}
	if _, _, err := r.IssueOperator(ca, "operator-alice", false, nil); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate operator: %v", err)
	}
	if _, _, err := r.IssueOperator(ca, "Alice!", false, nil); err == nil {
		t.Error("bad operator name accepted")
	}
	if ops, _ := r.Operators(); len(ops) != 1 {
		t.Errorf("operators %+v", ops)
	}
}

func TestFleetLoadCA(t *testing.T) {
	certFile, keyFile := testCA(t, 365*24*time.Hour)
	ca, err := LoadCA(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	// A CA expiring before two years bounds the certificates it issues.
	iss, err := ca.IssueClient("lamp-1", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !iss.Cert.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("certificate valid until %s, beyond the CA's %s", iss.Cert.NotAfter, ca.Cert.NotAfter)
	}
	otherCert, otherKey := testCA(t, time.Hour*24)
	leaf := filepath.Join(t.TempDir(), "leaf.crt")
	os.WriteFile(leaf, iss.CertPEM, 0o644)
	enc := filepath.Join(t.TempDir(), "enc.key")
	os.WriteFile(enc, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), 0o600)
	for _, c := range []struct{ name, cert, key, want string }{
		{"mismatched key", certFile, otherKey, "does not belong"},
		{"not a CA", leaf, keyFile, "not a CA"},
		{"encrypted key", otherCert, enc, "encrypted"},
		{"key as cert", keyFile, keyFile, "no PEM certificate"},
		{"missing", filepath.Join(t.TempDir(), "no.crt"), keyFile, "no such file"},
	} {
		if _, err := LoadCA(c.cert, c.key); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestFleetOpenRegistry(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "none"), false); err == nil || !strings.Contains(err.Error(), "--registry") {
		t.Errorf("missing registry: %v", err)
	}
	if _, err := Open("", true); err == nil {
		t.Error("empty registry path accepted")
	}
}
