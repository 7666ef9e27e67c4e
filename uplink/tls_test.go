package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/testbroker"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// tlsBroker starts mosquitto with mutual TLS: clients must present a
// certificate of the test CA, their user name is the certificate's common
// name, and the ACL confines each unit to outpost/<its name>/.
func tlsBroker(t *testing.T, p *pki, crl bool) *testbroker.Broker {
	t.Helper()
	cert, key := p.files("server", "localhost", 2, true)
	acl := p.write("acl", []byte("user control-room\ntopic readwrite outpost/#\n\npattern readwrite outpost/%u/#\n"))
	extra := []string{
		"cafile " + p.path("ca.pem"),
		"certfile " + cert,
		"keyfile " + key,
		"require_certificate true",
		"use_identity_as_username true",
		"tls_version tlsv1.2",
		"acl_file " + acl,
	}
	if crl {
		extra = append(extra, "crlfile "+p.crl())
	}
	return testbroker.Start(t, testbroker.Options{Extra: extra})
}

func sslURL(b *testbroker.Broker) string { return "ssl://" + b.Addr() }

func unitSession(t *testing.T, b *testbroker.Broker, p *pki, unit string) *liveSession {
	t.Helper()
	cert, key := p.path(unit+".pem"), p.path(unit+".key")
	if _, err := os.Stat(cert); err != nil {
		p.files(unit, unit, int64(len(unit))*1000, false)
	}
	return runSession(t, Options{
		Broker: sslURL(b), Topics: wire.Topics{Prefix: "outpost", Unit: unit},
		CAFile: p.path("ca.pem"), CertFile: cert, KeyFile: key,
	})
}

// TestMutualTLSAndACL: units connect with their certificates; the ACL
// keeps unit A out of unit B's topics, and a subscription to "#" gives A
// nothing of B's.
//
// mosquitto drops an unauthorised publish silently (MQTT 3.1.1 has no
// error for it; the publisher even gets its PUBACK). So the test sends A's
// forbidden publish and then a marker on A's own topic, both QoS 1 from
// the same connection: mosquitto handles one client's messages in order,
// and delivers to one subscriber in order, so once the control room has
// the marker, the forbidden message would have arrived before it had it
// been let through.
//
// mosquitto 2.0's acl_file does not check subscriptions at all (its
// default ACL check returns success for SUBSCRIBE): "#" is granted and
// the broker filters each message at delivery by the read ACL. Brokers
// that refuse (the dynamic-security plugin, others) answer 0x80 in the
// SUBACK, which Subscribe returns as ErrRefused (TestRefusedSubscription-
// IsAnErrorAndNotKept). So here A's client subscribes to "#", accepting
// either answer, and the assertion is on what it receives: B publishes,
// then the control room publishes a marker A may read; A's client reads
// in order, and must see the marker without B's message before it.
func TestMutualTLSAndACL(t *testing.T) {
	p := newPKI(t)
	b := tlsBroker(t, p, false)
	ctlCert, ctlKey := p.files("ctl", "control-room", 10, false)
	ctl := mustCtl(t, ctlOptions{broker: sslURL(b), tls: p.clientTLS(ctlCert, ctlKey)})
	ctl.sub("outpost/#", 1)

	a := unitSession(t, b, p, "unit-a")
	bs := unitSession(t, b, p, "unit-b")
	ran := make(chan string, 1)
	bs.s.Handle("reboot", func(ctx context.Context, req Request) (any, error) {
		ran <- req.ID
		return nil, nil
	})
	waitUntil(t, 15*time.Second, "both units connected", func() bool { return a.s.Connected() && bs.s.Connected() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A's publish to B's command topic is acknowledged but dropped.
	if err := a.s.Publish(ctx, "outpost/unit-b/cmd/reboot", 1, false, []byte(`{"v":1,"id":"evil"}`)); err != nil {
		t.Fatalf("mosquitto acknowledges an unauthorised publish; got %v", err)
	}
	if err := a.s.Publish(ctx, "outpost/unit-a/events", 1, false, []byte(`{"marker":1}`)); err != nil {
		t.Fatal(err)
	}
	markerSeen(t, ctl.ch, "outpost/unit-a/events", "outpost/unit-b/cmd/")
	select {
	case id := <-ran:
		t.Fatalf("unit B ran a command published by unit A (id %s)", id)
	default:
	}

	// A subscribing to everything, or to B's topics, gets none of B's
	// messages.
	aCert, aKey := p.path("unit-a.pem"), p.path("unit-a.key")
	spy := mustCtl(t, ctlOptions{broker: sslURL(b), id: "unit-a-spy", tls: p.clientTLS(aCert, aKey)})
	for _, f := range []string{"#", "outpost/unit-b/#", "outpost/+/events"} {
		if q := spy.sub(f, 1); q != 0x80 && q > 2 {
			t.Fatalf("subscribe %s: granted %#x", f, q)
		}
	}
	if err := bs.s.Publish(ctx, "outpost/unit-b/events", 1, false, []byte(`{"secret":true}`)); err != nil {
		t.Fatal(err)
	}
	ctl.pub("outpost/unit-a/marker", 1, []byte(`{"marker":2}`))
	markerSeen(t, spy.ch, "outpost/unit-a/marker", "outpost/unit-b/")

	// Without a certificate, or trusting another CA, nobody gets in.
	if _, err := dialCtl(t, ctlOptions{broker: sslURL(b), tls: p.clientTLS("", "")}); err == nil {
		t.Error("connected without a client certificate")
	}
	other := newPKI(t)
	c := newPahoClient(clientOptions{Broker: sslURL(b), ClientID: "pinning", KeepAlive: time.Second,
		ConnectTimeout: 3 * time.Second, WriteTimeout: time.Second, TLS: other.clientTLS(aCert, aKey)})
	_, err := c.Connect(ctx)
	c.Disconnect(0)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a unit pinned to another CA connected: %v", err)
	}
}

// markerSeen reads ch up to a message on marker, failing if a message
// whose topic starts with forbidden arrives first.
func markerSeen(t *testing.T, ch <-chan fakeMsg, marker, forbidden string) {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		select {
		case m := <-ch:
			if strings.HasPrefix(m.topic, forbidden) {
				t.Fatalf("the broker delivered %s: %s", m.topic, m.payload)
			}
			if m.topic == marker {
				return
			}
		case <-timer.C:
			t.Fatalf("marker %s not received", marker)
		}
	}
}

// TestRenewedCertificatePickedUp: a certificate renewed on disk is used at
// the next connection, without a restart. The broker's revocation list
// then revokes the old certificate, so the reconnection can only succeed
// with the new one.
func TestRenewedCertificatePickedUp(t *testing.T) {
	p := newPKI(t)
	b := tlsBroker(t, p, true)
	cert, key := p.files("unit-a", "unit-a", 100, false)
	ls := runSession(t, Options{Broker: sslURL(b), Topics: wire.Topics{Prefix: "outpost", Unit: "unit-a"},
		CAFile: p.path("ca.pem"), CertFile: cert, KeyFile: key})
	waitUntil(t, 15*time.Second, "first connection", ls.s.Connected)

	// Renewal: new key and certificate replace the files; the old
	// certificate is revoked; the broker restarts and drops the unit.
	p.files("unit-a", "unit-a", 200, false)
	p.crl(100)
	b.Restart()
	// The old certificate no longer gets in.
	oldCert, oldKey := p.issue("unit-a", 100, false)
	oc, ok := p.write("old.pem", oldCert), p.write("old.key", oldKey)
	if _, err := dialCtl(t, ctlOptions{broker: sslURL(b), tls: p.clientTLS(oc, ok)}); err == nil {
		t.Fatal("the revoked certificate still connects: the test proves nothing")
	}
	waitUntil(t, 15*time.Second, "reconnection with the renewed certificate", func() bool {
		return ls.s.Connected() && ls.s.Stats().Reconnects >= 1
	})
}

// TestUsernamePassword: a broker with a password file lets the unit in
// with its password and refuses a wrong one with an error that says what
// to check.
func TestUsernamePassword(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Fatal("mosquitto_passwd is not installed: apt-get install mosquitto")
	}
	pw := filepath.Join(readableTempDir(t), "passwords")
	if out, err := exec.Command(bin, "-c", "-b", pw, "lamp-14", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	os.Chmod(pw, 0o644)
	b := testbroker.Start(t, testbroker.Options{Extra: []string{"allow_anonymous false", "password_file " + pw}})

	ls := runSession(t, Options{Broker: b.URL(), Topics: wire.Topics{Prefix: "outpost", Unit: "lamp-14"}, Username: "lamp-14", Password: "s3cret"})
	waitUntil(t, 15*time.Second, "connection with the right password", ls.s.Connected)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct{ user, pass string }{{"lamp-14", "wrong"}, {"", ""}} {
		c := newPahoClient(clientOptions{Broker: b.URL(), ClientID: "outpost-x", Username: tc.user, Password: tc.pass,
			KeepAlive: time.Second, ConnectTimeout: 3 * time.Second, WriteTimeout: time.Second})
		_, err := c.Connect(ctx)
		c.Disconnect(0)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "uplink.username") {
			t.Errorf("user %q password %q: %v", tc.user, tc.pass, err)
		}
	}
}

// The online status carries the connection's local address.
func TestStatusCarriesIP(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	ctl := mustCtl(t, ctlOptions{broker: b.URL()})
	ctl.sub("outpost/u1/status", 1)
	ls := runSession(t, Options{Broker: b.URL()})
	waitUntil(t, 10*time.Second, "connected", ls.s.Connected)
	var st wire.Status
	collect(t, ctl.ch, 10*time.Second, func(m fakeMsg) bool {
		return json.Unmarshal(m.payload, &st) == nil
	}, func() bool { return st.State == wire.Online })
	if st.IP != "127.0.0.1" {
		t.Errorf("status ip %q", st.IP)
	}
}
