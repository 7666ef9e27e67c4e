package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/outpost-cctv/outpost/agent"
	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/agent/identity"
)

// provisionCmd makes the unit's evidence key when it has none, prints its
// public half and the command that registers it in the control room, and
// checks the unit's certificate against its config.
func provisionCmd(_ context.Context, env Env, args []string) int {
	fs := newFlagSet("provision", env)
	path := fs.String("config", "/etc/outpost/outpost.yaml", "config file (its data_dir holds the key)")
	data := fs.String("data", "", "data directory, instead of the config's data_dir")
	registry := fs.String("registry", "REGISTRY-DIR", "the control room's registry directory, for the printed command")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: outpost provision [--config /etc/outpost/outpost.yaml] [--data DIR]")
		fmt.Fprintln(env.Stderr, "Makes the unit's evidence key (<data_dir>/identity/evidence.key) if it has none, never")
		fmt.Fprintln(env.Stderr, "replacing one, and prints the command that registers it in the control room.")
		fs.PrintDefaults()
	}
	if fs.Parse(args) != nil {
		return agent.ExitUsage
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return agent.ExitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return agent.ExitUsage
	}
	if *data != "" {
		cfg.DataDir = *data
	}
	key, created, err := identity.LoadOrCreate(cfg.DataDir)
	if err != nil {
		fmt.Fprintln(env.Stderr, "outpost:", err)
		return agent.ExitFailure
	}
	how := "kept: it was made before"
	if created {
		how = "made now"
	}
	line := key.PublicKeyString()
	w := env.Stdout
	fmt.Fprintf(w, "Unit %s\n", cfg.Unit.ID)
	fmt.Fprintf(w, "Evidence key: %s (%s)\n  %s\n", key.Path(), how, line)
	fmt.Fprintf(w, "\nRegister it in the control room (the unit signs its evidence with it):\n")
	fmt.Fprintf(w, "  outpostctl provision register-key %s --registry %s --key %q\n", cfg.Unit.ID, *registry, line)

	t := cfg.Uplink.TLS
	if t.Cert == "" {
		fmt.Fprintf(w, "\nCertificate: none (uplink.tls.cert is not set): the unit connects to %s without one.\n", cfg.Uplink.Broker)
		return agent.ExitOK
	}
	note, err := checkUnitCert(cfg.Unit.ID, t, time.Now())
	if err != nil {
		fmt.Fprintf(w, "\nCertificate: %s: PROBLEM: %v\n", t.Cert, err)
		return agent.ExitFailure
	}
	leaf, _ := loadLeaf(t)
	fmt.Fprintf(w, "\nCertificate: %s: %s, valid until %s, issued by %s: OK\n", t.Cert, leaf.Subject.CommonName, leaf.NotAfter.Format(time.DateOnly), leaf.Issuer.CommonName)
	if note != "" {
		fmt.Fprintf(w, "  Note: %s\n", note)
	}
	return agent.ExitOK
}

func loadLeaf(t config.TLS) (*x509.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: check uplink.tls.cert and uplink.tls.key", err)
	}
	return x509.ParseCertificate(pair.Certificate[0])
}

// checkUnitCert checks what the broker will: the certificate pairs with
// the key, names the unit and is valid now. That it does not chain to
// uplink.tls.ca is only a note: that file is the CA of the broker's
// certificate, which may differ from the fleet CA of the units'.
func checkUnitCert(unitID string, t config.TLS, now time.Time) (note string, err error) {
	leaf, err := loadLeaf(t)
	if err != nil {
		return "", err
	}
	if leaf.Subject.CommonName != unitID {
		return "", fmt.Errorf("it is for %q, but unit.id is %q: the broker would confine the unit to the wrong topics; install the certificate made for %s", leaf.Subject.CommonName, unitID, unitID)
	}
	if now.Before(leaf.NotBefore) {
		return "", fmt.Errorf("it is valid only from %s: is the unit's clock right? (date -u)", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return "", fmt.Errorf("it expired on %s: renew it in the control room (outpostctl provision %s --renew ...)", leaf.NotAfter.Format(time.DateOnly), unitID)
	}
	if t.CA == "" {
		return "", nil
	}
	pem, err := os.ReadFile(t.CA)
	if err != nil {
		return "", fmt.Errorf("CA: %w: check uplink.tls.ca", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return "", fmt.Errorf("%s holds no PEM certificate: check uplink.tls.ca", t.CA)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Sprintf("it does not chain to %s (%v): right only if the broker's certificate comes from another CA than the units' (outpostctl provision --broker-ca)", t.CA, err), nil
	}
	return "", nil
}
