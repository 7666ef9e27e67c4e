package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/identity"
	"github.com/outpost-cctv/outpost/evidence"
)

// TestEvidenceVerifyAgainstTheRegistry: the key comes from the registry
// entry of the unit the manifest names; a unit whose key was replaced
// still has its earlier evidence verified; another unit's key, an altered
// file and an unknown unit are refused.
func TestEvidenceVerifyAgainstTheRegistry(t *testing.T) {
	caCrt, caKey := provisionCA(t)
	reg := t.TempDir()
	for _, id := range []string{"lamp-14", "lamp-15"} {
		if _, errs, code := runProvision(t, id, "--ca", caCrt, "--ca-key", caKey, "--registry", reg, "--broker", "ssl://mqtt.example:8883", "-o", t.TempDir()); code != ExitOK {
			t.Fatalf("provision %s: %s", id, errs)
		}
	}
	keys := map[string]*identity.Key{}
	for _, id := range []string{"lamp-14", "lamp-15"} {
		k, _, err := identity.LoadOrCreate(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		keys[id] = k
		if _, errs, code := runProvision(t, "register-key", id, "--registry", reg, "--key", k.PublicKeyString()); code != ExitOK {
			t.Fatalf("register-key %s: %s", id, errs)
		}
	}

	dir := t.TempDir()
	clip := filepath.Join(dir, "incident.mp4")
	body := []byte(strings.Repeat("an mp4 of the incident ", 500))
	os.WriteFile(clip, body, 0o644)
	seal := func(unit string, key *identity.Key, path string) {
		sum := sha256.Sum256(body)
		doc, err := evidence.Seal(evidence.Manifest{Kind: "clip", Unit: unit, Camera: "/dev/video0 1920x1080",
			From: time.Unix(1_764_000_000, 0), To: time.Unix(1_764_000_060, 0), Frames: 1500,
			File:     evidence.File{Type: "video/mp4", Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])},
			Exported: time.Unix(1_764_003_600, 0), Requester: "alice (signed)", AgentVersion: "v1.0.0"}, key)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(path, doc, 0o644)
	}
	env := map[string]string{"OUTPOST_REGISTRY": reg}

	seal("lamp-14", keys["lamp-14"], clip+".evidence.json")
	out, errs, code := runMain(t, env, "evidence", "verify", clip)
	if code != ExitOK || !strings.Contains(out, "EVIDENCE VERIFIED") || !strings.Contains(out, "1500 frames") {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errs)
	}

	// Signed by lamp-15's key but naming lamp-14.
	forged := filepath.Join(dir, "forged.json")
	seal("lamp-14", keys["lamp-15"], forged)
	if out, _, code := runMain(t, env, "evidence", "verify", clip, forged); code != ExitFailure || !strings.Contains(out, "not a key registered for unit lamp-14") {
		t.Fatalf("another unit's key: exit %d\n%s", code, out)
	}

	// A unit the registry does not know.
	unknown := filepath.Join(dir, "unknown.json")
	seal("lamp-99", keys["lamp-14"], unknown)
	if _, errs, code := runMain(t, env, "evidence", "verify", clip, unknown); code != ExitFailure || !strings.Contains(errs, "not in the registry") {
		t.Fatalf("an unknown unit: exit %d\n%s", code, errs)
	}

	// The unit's key replaced (a new card): what the old key signed
	// still verifies, as the unit's earlier key.
	newKey, _, _ := identity.LoadOrCreate(t.TempDir())
	if _, errs, code := runProvision(t, "register-key", "lamp-14", "--registry", reg, "--key", newKey.PublicKeyString(), "--replace"); code != ExitOK {
		t.Fatalf("register-key --replace: %s", errs)
	}
	if out, errs, code := runMain(t, env, "evidence", "verify", clip); code != ExitOK || !strings.Contains(out, "earlier key") {
		t.Fatalf("after the key was replaced: exit %d\n%s%s", code, out, errs)
	}

	// One byte of the clip changed.
	altered := append([]byte(nil), body...)
	altered[100] ^= 1
	os.WriteFile(clip, altered, 0o644)
	if out, _, code := runMain(t, env, "evidence", "verify", clip); code != ExitFailure || !strings.Contains(out, "NOT VERIFIED") || !strings.Contains(out, "altered") {
		t.Fatalf("an altered clip: exit %d\n%s", code, out)
	}

	// Usage: neither or both of --registry and --pubkey.
	if _, _, code := runMain(t, nil, "evidence", "verify", clip); code != ExitUsage {
		t.Fatalf("no key source: exit %d", code)
	}
}
