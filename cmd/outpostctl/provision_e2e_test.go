package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/internal/testbroker"
)

// End-to-end test of provisioning: a fleet CA from scripts/dev-ca.sh, a
// mosquitto with mutual TLS and the fleet's ACL (configs/mosquitto), a
// unit provisioned with outpostctl provision and run from the files it
// wrote, and the control room seeing it with an operator certificate.

func TestProvisionEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed (apt-get install openssl): scripts/dev-ca.sh needs it")
	}
	if _, err := exec.LookPath("mosquitto"); err != nil {
		if _, err := os.Stat("/usr/sbin/mosquitto"); err != nil {
			t.Skip("mosquitto is not installed: run 'make test' (installs it as root) or 'apt-get install mosquitto'")
		}
	}
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	cmd := exec.Command("../../scripts/dev-ca.sh", caDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dev-ca.sh: %v\n%s", err, out)
	} else if !strings.Contains(string(out), "Next steps") {
		t.Errorf("dev-ca.sh did not say what to do next:\n%s", out)
	}
	caCrt, caKey := filepath.Join(caDir, "ca.crt"), filepath.Join(caDir, "ca.key")
	reg := filepath.Join(dir, "registry")
	out := filepath.Join(dir, "out")

	// The control room: an operator certificate, and the broker's ACL
	// with the block outpostctl prints for it.
	// provision talks to no broker; ctl needs one to name, and the real
	// one starts only once its ACL holds the operator's block.
	b0 := &testbroker.Broker{Host: "127.0.0.1", Port: 1}
	stdout, stderr, code := ctl(t, b0, "provision", "operator", "e2e", "--ca", caCrt, "--ca-key", caKey, "--registry", reg, "-o", out)
	if code != 0 {
		t.Fatalf("provision operator: exit %d: %s", code, stderr)
	}
	aclBlock := stdout[strings.Index(stdout, "  user operator-e2e"):]
	acl, err := os.ReadFile("../../configs/mosquitto/outpost.acl")
	if err != nil {
		t.Fatal(err)
	}
	acl = append(acl, "\n"+dedent(aclBlock)...)
	aclFile := filepath.Join(dir, "outpost.acl")
	os.WriteFile(aclFile, acl, 0o644)
	opDir := filepath.Join(out, "operator-e2e")

	// The broker, as configs/mosquitto/outpost-tls.conf sets it up.
	extra := []string{
		"cafile " + caCrt,
		"certfile " + filepath.Join(caDir, "server.crt"),
		"keyfile " + filepath.Join(caDir, "server.key"),
		"require_certificate true",
		"use_identity_as_username true",
		"acl_file " + aclFile,
	}
	if os.Geteuid() == 0 {
		// Else mosquitto drops to its own user and cannot read the test's
		// private directory.
		extra = append(extra, "user root")
	}
	b := testbroker.Start(t, testbroker.Options{Extra: extra})
	broker := fmt.Sprintf("ssl://127.0.0.1:%d", b.Port)

	// Provision the unit.
	stdout, stderr, code = ctl(t, b, "provision", "e2e-unit", "--ca", caCrt, "--ca-key", caKey, "--registry", reg,
		"--broker", broker, "--site", "E2E lane", "-o", out)
	if code != 0 {
		t.Fatalf("provision: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "outpost provision --config /etc/outpost/outpost.yaml") {
		t.Errorf("provision did not print the field engineer's steps:\n%s", stdout)
	}
	unitDir := filepath.Join(out, "e2e-unit")
	if st, err := os.Stat(filepath.Join(unitDir, "unit.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("unit.key: %v", err)
	}
	if _, stderr, code := ctl(t, b, "provision", "e2e-unit", "--ca", caCrt, "--ca-key", caKey, "--registry", reg, "--broker", broker, "-o", t.TempDir()); code != 1 || !strings.Contains(stderr, "--renew") {
		t.Errorf("provisioning the unit again: exit %d: %s", code, stderr)
	}

	// Install it "on the unit": the files where the config says, the
	// data directory a temporary one.
	y, err := os.ReadFile(filepath.Join(unitDir, "outpost.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	s := strings.ReplaceAll(string(y), "/etc/outpost/tls/", unitDir+"/")
	s = strings.Replace(s, "data_dir: /var/lib/outpost", "data_dir: "+data, 1)
	if s == string(y) || !strings.Contains(s, data) {
		t.Fatalf("outpost.yaml has not the expected paths:\n%s", y)
	}
	cfg := filepath.Join(dir, "outpost.yaml")
	os.WriteFile(cfg, []byte(s), 0o640)

	// The unit's evidence key, registered in the control room.
	pcmd := exec.Command(bins.outpost, "provision", "--config", cfg, "--registry", reg)
	pout, err := pcmd.CombinedOutput()
	if err != nil {
		t.Fatalf("outpost provision: %v\n%s", err, pout)
	}
	line := regexp.MustCompile(`outpost-evidence-ed25519 [A-Za-z0-9+/=]+`).FindString(string(pout))
	if line == "" || !strings.Contains(string(pout), "Certificate: "+unitDir+"/unit.crt: e2e-unit") {
		t.Fatalf("outpost provision output:\n%s", pout)
	}
	if _, stderr, code := ctl(t, b, "provision", "register-key", "e2e-unit", "--registry", reg, "--key", line); code != 0 {
		t.Fatalf("register-key: exit %d: %s", code, stderr)
	}
	again, _ := exec.Command(bins.outpost, "provision", "--config", cfg).CombinedOutput()
	if !strings.Contains(string(again), line) || !strings.Contains(string(again), "kept") {
		t.Errorf("second outpost provision changed the key:\n%s", again)
	}
	stdout, _, _ = ctl(t, b, "provision", "list", "--registry", reg, "--json")
	var raw struct {
		Units []map[string]any `json:"units"`
	}
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil || len(raw.Units) != 1 || raw.Units[0]["evidence_key"] != line || raw.Units[0]["site"] != "E2E lane" {
		t.Fatalf("provision list: %v\n%s", err, stdout)
	}

	// Run it, and see it online from the control room.
	startRun(t, cfg)
	tlsArgs := []string{"--broker", broker, "--ca", filepath.Join(opDir, "ca.crt"), "--cert", filepath.Join(opDir, "operator.crt"), "--key", filepath.Join(opDir, "operator.key")}
	deadline := time.Now().Add(30 * time.Second)
	for {
		stdout, stderr, code = ctl(t, b, append([]string{"units"}, tlsArgs...)...)
		if code == 0 && regexp.MustCompile(`e2e-unit\s+E2E lane\s+online`).MatchString(stdout) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("e2e-unit never showed online: exit %d\n%s%s\nbroker log:\n%s", code, stdout, stderr, b.Log())
		}
		time.Sleep(300 * time.Millisecond)
	}

	// Commands, replies and file transfers pass the ACL: a snapshot uses
	// cmd/, reply/ and xfer/ both ways.
	// The unit may be online before its camera's first frame (exit 3).
	snap := filepath.Join(t.TempDir(), "s.jpg")
	for deadline := time.Now().Add(15 * time.Second); ; {
		_, stderr, code := ctl(t, b, append([]string{"snapshot", "e2e-unit", "-o", snap}, tlsArgs...)...)
		if code == 0 {
			break
		}
		if code != 3 || time.Now().After(deadline) {
			t.Fatalf("snapshot over TLS: exit %d: %s\nbroker log:\n%s", code, stderr, b.Log())
		}
		time.Sleep(300 * time.Millisecond)
	}
	if jpg, _ := os.ReadFile(snap); !bytes.HasPrefix(jpg, []byte{0xFF, 0xD8}) {
		t.Fatalf("snapshot is not a JPEG (%d bytes)", len(jpg))
	}

	// The broker lets in no client without a certificate of the fleet CA,
	// and confines a unit's certificate to its own topics.
	if _, stderr, code := ctl(t, b, "units", "--broker", broker, "--ca", caCrt); code != 5 {
		t.Errorf("units without a client certificate: exit %d: %s", code, stderr)
	}
	stdout, stderr, code = ctl(t, b, "units", "--broker", broker, "--ca", caCrt, "--cert", filepath.Join(unitDir, "unit.crt"), "--key", filepath.Join(unitDir, "unit.key"))
	if code == 0 && strings.Contains(stdout, "e2e-unit") {
		t.Errorf("a unit's certificate read the whole fleet:\n%s", stdout)
	}
}

// dedent removes the two-space indent of the lines outpostctl prints.
func dedent(s string) string {
	var b bytes.Buffer
	for _, l := range strings.Split(s, "\n") {
		b.WriteString(strings.TrimPrefix(l, "  ") + "\n")
	}
	return b.String()
}
