package uplink

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/outpost-cctv/outpost/uplink/wire"
)

// ctlClient is the control room's side in tests: a plain paho client that
// records what it receives. (Tests may use paho directly; the agent sees
// it only through mqttClient.)
type ctlClient struct {
	t  testing.TB
	c  mqtt.Client
	ch chan fakeMsg
}

type ctlOptions struct {
	broker   string
	id       string
	tls      *tls.Config
	user     string
	password string
}

func dialCtl(t testing.TB, o ctlOptions) (*ctlClient, error) {
	t.Helper()
	cc := &ctlClient{t: t, ch: make(chan fakeMsg, 8192)}
	if o.id == "" {
		o.id = fmt.Sprintf("ctl-%d", time.Now().UnixNano())
	}
	po := mqtt.NewClientOptions().AddBroker(o.broker).SetClientID(o.id).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			select {
			case cc.ch <- fakeMsg{topic: m.Topic(), payload: append([]byte(nil), m.Payload()...), retained: m.Retained()}:
			default:
				t.Errorf("control client: message buffer full")
			}
		})
	if o.tls != nil {
		po.SetTLSConfig(o.tls)
	}
	if o.user != "" {
		po.SetUsername(o.user).SetPassword(o.password)
	}
	cc.c = mqtt.NewClient(po)
	tok := cc.c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("control client connect: %v", tok.Error())
	}
	t.Cleanup(cc.close)
	return cc, nil
}

func mustCtl(t testing.TB, o ctlOptions) *ctlClient {
	t.Helper()
	c, err := dialCtl(t, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *ctlClient) close() { c.c.Disconnect(50) }

// sub subscribes and returns the granted QoS (0x80 when refused).
func (c *ctlClient) sub(filter string, qos byte) byte {
	c.t.Helper()
	tok := c.c.Subscribe(filter, qos, nil)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		c.t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return tok.(*mqtt.SubscribeToken).Result()[filter]
}

func (c *ctlClient) pub(topic string, qos byte, payload []byte) {
	c.t.Helper()
	tok := c.c.Publish(topic, qos, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		c.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// liveSession runs a session against a real broker until the test ends.
type liveSession struct {
	s    *Session
	stop func()
}

func runSession(t testing.TB, o Options) *liveSession {
	t.Helper()
	if o.Topics == (wire.Topics{}) {
		o.Topics = wire.Topics{Prefix: "outpost", Unit: "u1"}
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = time.Second
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 2 * time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 2 * time.Second
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = time.Second
	}
	if o.Online == nil {
		o.Online = func() wire.Status { return wire.Status{Header: wire.NewHeader(time.Now()), State: wire.Online} }
	}
	log := quiet()
	if os.Getenv("UPLINK_TEST_LOG") != "" {
		log = testLog(t)
	}
	s := NewSession(log, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	var once sync.Once
	ls := &liveSession{s: s, stop: func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("session did not stop within 10s")
			}
		})
	}}
	t.Cleanup(ls.stop)
	return ls
}

// collect reads messages under prefix from ch until stop says enough, or
// fails after d.
func collect(t testing.TB, ch <-chan fakeMsg, d time.Duration, keep func(fakeMsg) bool, done func() bool) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for !done() {
		select {
		case m := <-ch:
			keep(m)
		case <-timer.C:
			t.Fatalf("timed out after %s", d)
		}
	}
}

// goroutinesBackTo waits until the goroutine count is at most base, or
// fails with the stacks after d.
func goroutinesBackTo(t testing.TB, base int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d at the start:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pki is a CA with the files a TLS broker and its clients need.
type pki struct {
	t   testing.TB
	dir string
	ca  *testCA
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	dir := readableTempDir(t)
	p := &pki{t: t, dir: dir, ca: newTestCA(t)}
	p.write("ca.pem", p.ca.certPEM)
	return p
}

// readableTempDir is a temporary directory mosquitto can read: started as
// root, it drops privileges to its own user before reading certificates,
// ACL and password files.
func readableTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

func (p *pki) write(name string, b []byte) string {
	p.t.Helper()
	path := p.path(name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // a renewal replaces files atomically
		p.t.Fatal(err)
	}
	return path
}

// issue signs a leaf certificate; server certificates are for 127.0.0.1.
func (p *pki) issue(cn string, serial int64, server bool) (certPEM, keyPEM []byte) {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca.cert, &key.PublicKey, p.ca.key)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// files issues a certificate and writes it as NAME.pem and NAME.key.
func (p *pki) files(name, cn string, serial int64, server bool) (cert, key string) {
	c, k := p.issue(cn, serial, server)
	return p.write(name+".pem", c), p.write(name+".key", k)
}

// crl writes a revocation list of the given serials.
func (p *pki) crl(serials ...int64) string {
	p.t.Helper()
	var revoked []x509.RevocationListEntry
	for _, s := range serials {
		revoked = append(revoked, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(time.Now().UnixNano()), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(24 * time.Hour),
		RevokedCertificateEntries: revoked,
	}, p.ca.cert, p.ca.key)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.write("crl.pem", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
}

// clientTLS is a tls.Config for a test client with the given files.
func (p *pki) clientTLS(cert, key string) *tls.Config {
	p.t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.cert)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			p.t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}
