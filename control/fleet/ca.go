package fleet

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"
)

// Validity is how long an issued certificate is valid.
const Validity = 2 * 365 * 24 * time.Hour

// backdate allows for clocks a little behind the control room's.
const backdate = 5 * time.Minute

// CA is the fleet's certificate authority: its certificate and key.
type CA struct {
	Cert *x509.Certificate
	// PEM is the certificate as read.
	PEM []byte
	key crypto.Signer
}

// LoadCA reads the CA certificate and its private key (PEM: PKCS #8
// "PRIVATE KEY", SEC 1 "EC PRIVATE KEY" or PKCS #1 "RSA PRIVATE KEY"),
// and checks that they belong together and may sign certificates.
func LoadCA(certFile, keyFile string) (*CA, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("fleet: CA certificate: %w", err)
	}
	blk := firstBlock(cb, func(t string) bool { return t == "CERTIFICATE" })
	if blk == nil {
		return nil, fmt.Errorf("fleet: %s holds no PEM certificate: give the CA's certificate (ca.crt from scripts/dev-ca.sh)", certFile)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("fleet: CA certificate %s: %w", certFile, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("fleet: %s (%s) is not a CA certificate (basicConstraints CA:TRUE missing): give the fleet CA's certificate, not a unit's or the broker's", certFile, cert.Subject)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("fleet: CA certificate %s may not sign certificates (keyUsage lacks keyCertSign)", certFile)
	}
	if now := time.Now(); now.After(cert.NotAfter) {
		return nil, fmt.Errorf("fleet: CA certificate %s expired on %s: make a new CA and reissue the fleet's certificates", certFile, cert.NotAfter.Format(time.DateOnly))
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("fleet: CA key: %w", err)
	}
	key, err := parseKey(kb)
	if err != nil {
		return nil, fmt.Errorf("fleet: CA key %s: %w", keyFile, err)
	}
	if !publicEqual(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("fleet: CA key %s does not belong to the certificate %s (%s): give the key made with that certificate", keyFile, certFile, cert.Subject)
	}
	return &CA{Cert: cert, PEM: pem.EncodeToMemory(blk), key: key}, nil
}

func parseKey(b []byte) (crypto.Signer, error) {
	// openssl ecparam -genkey writes "EC PARAMETERS" before the key.
	blk := firstBlock(b, func(t string) bool { return !strings.HasSuffix(t, "PARAMETERS") })
	if blk == nil {
		return nil, errors.New("no PEM private key in it")
	}
	if blk.Type == "ENCRYPTED PRIVATE KEY" || blk.Headers["Proc-Type"] != "" {
		return nil, errors.New("the key is encrypted; outpostctl needs it unencrypted: keep the CA key on an offline machine and provision there")
	}
	var k any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("a PEM %q block, not a private key", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign", k)
	}
	return s, nil
}

// firstBlock is the first PEM block of b whose type is wanted, or nil.
func firstBlock(b []byte, want func(string) bool) *pem.Block {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil || want(blk.Type) {
			return blk
		}
	}
}

func publicEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// Issued is a certificate made by the CA, with the key made for it.
type Issued struct {
	Cert    *x509.Certificate
	CertPEM []byte
	// KeyPEM is the new private key (PKCS #8): the holder's secret.
	KeyPEM []byte
}

// Serial is the certificate's serial in upper-case hex.
func (i *Issued) Serial() string { return serialHex(i.Cert.SerialNumber) }

// Fingerprint is the SHA-256 of the certificate, as openssl prints it.
func (i *Issued) Fingerprint() string { return fingerprint(i.Cert.Raw) }

func serialHex(n *big.Int) string { return strings.ToUpper(n.Text(16)) }

func fingerprint(der []byte) string {
	s := sha256.Sum256(der)
	parts := make([]string, len(s))
	for i, b := range s {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// IssueClient makes a new ECDSA P-256 key and a client certificate for it
// whose common name is cn, valid from now (a few minutes back, for clocks
// behind) for Validity, or until the CA expires if that is sooner.
func (ca *CA) IssueClient(cn, ou string, now time.Time) (*Issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("fleet: generating a key: %w", err)
	}
	// 127 random bits: positive, at most 20 octets (RFC 5280 4.1.2.2).
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("fleet: serial: %w", err)
	}
	if serial.Sign() == 0 {
		serial.SetInt64(1)
	}
	notAfter := now.Add(Validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	subj := pkix.Name{CommonName: cn, Organization: ca.Cert.Subject.Organization}
	if ou != "" {
		subj.OrganizationalUnit = []string{ou}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subj,
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("fleet: signing the certificate for %s: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("fleet: encoding the key: %w", err)
	}
	return &Issued{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}, nil
}
