package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/identity"
	"github.com/outpost-cctv/outpost/internal/testbroker"
	"github.com/outpost-cctv/outpost/uplink/cmdauth"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// End-to-end test of privacy and evidence: a unit with a privacy mask that
// accepts only signed commands; what it hands over is masked, comes with a
// signed evidence manifest that outpostctl verifies (and refuses when
// tampered with), and every access, refused ones too, is in its audit
// trail.

// The mask: the top right quarter of the 1280x720 picture. Snapped to the
// 16-pixel blocks of 4:2:0 it covers x 640-1279, y 0-367.
const privacyMask = "[[[0.5, 0], [1, 0], [1, 0.5], [0.5, 0.5]]]"

func TestPrivacyEvidenceAndAudit(t *testing.T) {
	t.Parallel()
	b := testbroker.Start(t, testbroker.Options{})
	const id = "cam-privacy"

	// The operator's signing key.
	keys := t.TempDir()
	opLine, errs, code := ctl(t, b, "operator", "keygen", "alice", "-o", keys)
	if code != 0 {
		t.Fatalf("operator keygen: exit %d: %s", code, errs)
	}
	opLine = strings.TrimSpace(opLine)
	signKey := filepath.Join(keys, "alice.key")

	data := t.TempDir()
	path := filepath.Join(data, "outpost.yaml")
	// The footage key, kept apart from the footage (on a board: not on
	// its card).
	keyFile := filepath.Join(t.TempDir(), "footage.key")
	fk := make([]byte, 32)
	rand.Read(fk)
	if err := os.WriteFile(keyFile, fk, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`unit:
  id: %s
  site: e2e
  purpose: fly-tipping enforcement
  dpia_ref: DPIA-E2E-1
data_dir: %s
camera:
  fps: 10
recording:
  segment_duration: 5s
uplink:
  broker: %s
  keepalive: 10s
privacy:
  masks: %s
  sign_every: 10s
  encryption_key_file: %s
security:
  signed_commands: required
  operator_keys: [%q]
`, id, data, b.URL(), privacyMask, keyFile, opLine)
	if err := os.WriteFile(path, []byte(cfg), 0o640); err != nil {
		t.Fatal(err)
	}
	// The unit's evidence key, as on a board.
	prov, err := exec.Command(bins.outpost, "provision", "--config", path).CombinedOutput()
	if err != nil {
		t.Fatalf("outpost provision: %v\n%s", err, prov)
	}
	var unitKey string
	for _, l := range strings.Split(string(prov), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, identity.KeyType+" ") {
			unitKey = l
			break
		}
	}
	if unitKey == "" {
		t.Fatalf("outpost provision printed no key:\n%s", prov)
	}
	run, _ := startRun(t, path)
	waitOnline(t, b, id)
	signed := func(args ...string) (string, string, int) {
		return ctl(t, b, append([]string{"--sign-key", signKey}, args...)...)
	}

	// Unsigned: refused.
	snap := filepath.Join(t.TempDir(), "s.jpg")
	if _, errs, code := ctl(t, b, "snapshot", id, "--full", "-o", snap); code == 0 || !strings.Contains(errs, "unauthorized") {
		t.Fatalf("an unsigned snapshot: exit %d: %s", code, errs)
	}

	// Signed: the live picture, masked.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		_, errs, code := signed("snapshot", id, "--full", "-o", snap, "--recipient", "control room", "--reason", "mask check")
		if code == 0 {
			break
		}
		if !strings.Contains(errs, "no frame") || time.Now().After(deadline) {
			t.Fatalf("signed snapshot: exit %d: %s", code, errs)
		}
	}
	jpg, _ := os.ReadFile(snap)
	checkMasked(t, "full snapshot", jpg)

	// A clip of footage already sealed in a segment, pulled for the
	// police.
	from := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	to := from.Add(3 * time.Second)
	time.Sleep(time.Until(to.Add(7 * time.Second))) // the segment rotates after 5 s
	clipPath := filepath.Join(t.TempDir(), "incident.mp4")
	stdout, errs, code := signed("clip", "pull", id, "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339), "-o", clipPath,
		"--recipient", "PC 1234, Met Police", "--reason", "crime ref 01/123456/26")
	if code != 0 {
		t.Fatalf("clip pull: exit %d: %s", code, errs)
	}
	manifest := clipPath + ".evidence.json"
	mustHave(t, "clip pull", stdout, "evidence manifest signed by "+id)
	frames, _, codec := ffprobe(t, clipPath)
	if codec != "mjpeg" || frames < 10 {
		t.Fatalf("ffprobe: %d frames of %s", frames, codec)
	}
	frame := filepath.Join(t.TempDir(), "f.jpg")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", clipPath, "-frames:v", "1", "-c:v", "copy", "-f", "image2", frame).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	jpg, _ = os.ReadFile(frame)
	checkMasked(t, "a frame of the clip", jpg)

	// The manifest says what the control room needs to hand it over.
	var doc struct {
		Manifest struct {
			Unit      string         `json:"unit"`
			Masks     [][][2]float64 `json:"masks"`
			Frames    int            `json:"frames"`
			Segments  []any          `json:"segments"`
			Requester string         `json:"requester"`
			Recipient string         `json:"recipient"`
			DPIARef   string         `json:"dpia_ref"`
		} `json:"manifest"`
	}
	mb, err := os.ReadFile(manifest)
	if err != nil || json.Unmarshal(mb, &doc) != nil {
		t.Fatalf("evidence manifest: %v\n%s", err, mb)
	}
	m := doc.Manifest
	if m.Unit != id || len(m.Masks) != 1 || m.Frames != frames || len(m.Segments) == 0 || m.Requester != "alice (signed)" || m.Recipient != "PC 1234, Met Police" || m.DPIARef != "DPIA-E2E-1" {
		t.Fatalf("evidence manifest: %+v", m)
	}

	// Verified against the unit's registered key; a tampered copy, a
	// tampered manifest and another key are not.
	out, errs, code := ctl(t, b, "evidence", "verify", clipPath, "--pubkey", unitKey)
	if code != 0 {
		t.Fatalf("evidence verify: exit %d\n%s%s", code, out, errs)
	}
	mustHave(t, "evidence verify", out, "EVIDENCE VERIFIED")
	mustHave(t, "evidence verify", out, "PC 1234, Met Police")
	t.Logf("the certificate:\n%s", out)

	clipBytes, _ := os.ReadFile(clipPath)
	tampered := filepath.Join(t.TempDir(), "tampered.mp4")
	flipped := bytes.Clone(clipBytes)
	flipped[len(flipped)/2] ^= 0x20
	os.WriteFile(tampered, flipped, 0o644)
	if out, errs, code := ctl(t, b, "evidence", "verify", tampered, manifest, "--pubkey", unitKey); code == 0 || !strings.Contains(out, "NOT VERIFIED") || !strings.Contains(out, "altered") {
		t.Fatalf("a tampered clip: exit %d\n%s%s", code, out, errs)
	}
	badManifest := filepath.Join(t.TempDir(), "m.json")
	os.WriteFile(badManifest, bytes.Replace(mb, []byte("PC 1234"), []byte("PC 4321"), 1), 0o644)
	if out, errs, code := ctl(t, b, "evidence", "verify", clipPath, badManifest, "--pubkey", unitKey); code == 0 || !strings.Contains(out, "NOT VERIFIED") {
		t.Fatalf("a tampered manifest: exit %d\n%s%s", code, out, errs)
	}
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	if out, errs, code := ctl(t, b, "evidence", "verify", clipPath, "--pubkey", identity.FormatPublicKey(otherPub)); code == 0 || !strings.Contains(out, "not a key registered") {
		t.Fatalf("another unit's key: exit %d\n%s%s", code, out, errs)
	}

	// A configuration change: unsigned, refused (even with a version far
	// ahead, which must not shut out later changes); signed, applied.
	c := dialControl(t, b)
	start := reportedWhere(t, c, id, 20*time.Second, "the first report", func(r wire.ConfigReported) bool { return true })
	patch := json.RawMessage(`{"telemetry":{"power":{"interval":"7s"}}}`)
	if err := c.PushConfig(context.Background(), id, wire.ConfigDesired{Version: 1 << 40, BaseVersion: start.Version, RequestedBy: "mallory", Config: patch}); err != nil {
		t.Fatal(err)
	}
	rep := reportedWhere(t, c, id, 20*time.Second, "the unsigned change refused", func(r wire.ConfigReported) bool {
		return r.DesiredVersion == 1<<40 && r.Result == wire.ConfigRejected
	})
	mustHave(t, "refusal", strings.Join(rep.Errors, "; "), "unauthorized")
	priv, name, err := cmdauth.LoadPrivateKey(signKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetSigner(name, priv); err != nil {
		t.Fatal(err)
	}
	if err := c.PushConfig(context.Background(), id, wire.ConfigDesired{Version: start.Version + 1, BaseVersion: start.Version, RequestedBy: "alice", Config: patch}); err != nil {
		t.Fatal(err)
	}
	reportedWhere(t, c, id, 30*time.Second, "the signed change applied", func(r wire.ConfigReported) bool {
		return r.Version == start.Version+1 && r.Result == wire.ConfigApplied
	})

	// Requests sent by hand through the broker, as an attacker with a
	// broker account could: each is refused, and a signed request seen
	// before is refused after the unit restarts too.
	raw := func(id string, sign func(*wire.Request)) []byte {
		req := wire.Request{Header: wire.NewHeader(time.Now()), ID: id}
		sign(&req)
		p, _ := json.Marshal(req)
		return p
	}
	now := time.Now()
	genuine := raw("replayed-1", func(r *wire.Request) { must(t, cmdauth.Sign(priv, name, id, "ping", r, now, 10*time.Minute)) })
	forged := []struct{ id, why string }{
		{"expired-1", "expired"}, {"other-unit-1", "another unit"}, {"altered-1", "changed after signing"},
	}
	publish := func(payload []byte) {
		t.Helper()
		if out, err := exec.Command("mosquitto_pub", "-h", b.Host, "-p", fmt.Sprint(b.Port), "-q", "1", "-t", "outpost/"+id+"/cmd/ping", "-m", string(payload)).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, out)
		}
	}
	publish(genuine)
	publish(raw("expired-1", func(r *wire.Request) {
		must(t, cmdauth.Sign(priv, name, id, "ping", r, now.Add(-2*time.Hour), time.Hour))
	}))
	publish(raw("other-unit-1", func(r *wire.Request) { must(t, cmdauth.Sign(priv, name, "cam-other", "ping", r, now, time.Minute)) }))
	publish(raw("altered-1", func(r *wire.Request) {
		must(t, cmdauth.Sign(priv, name, id, "ping", r, now, time.Minute))
		r.Auth.Expires = r.Auth.Expires.Add(time.Hour)
	}))
	waitAudit(t, signed, id, "altered-1")
	run.Process.Signal(syscall.SIGTERM)
	run.Wait()
	startRun(t, path)
	waitOnline(t, b, id)
	publish(genuine) // the same signed request again, after the restart
	var entries []auditEntry
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		entries = auditEntries(t, signed, id)
		n := 0
		for _, e := range entries {
			if e.RequestID == "replayed-1" {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replayed request is in the audit trail %d times, want twice", n)
		}
	}
	for _, f := range append(forged, struct{ id, why string }{"replayed-1", "replay"}) {
		var results []string
		for _, e := range entries {
			if e.RequestID == f.id {
				results = append(results, e.Result+": "+e.Detail)
			}
		}
		want := []string{"unauthorized"}
		if f.id == "replayed-1" {
			want = []string{"ok", "unauthorized"} // run once, refused when replayed
		}
		if len(results) != len(want) {
			t.Fatalf("request %s (%s): audit has %q, want %q", f.id, f.why, results, want)
		}
		for i := range want {
			if !strings.HasPrefix(results[i], want[i]) {
				t.Fatalf("request %s (%s): audit has %q, want %q", f.id, f.why, results, want)
			}
		}
		t.Logf("%s (%s): %s", f.id, f.why, results[len(results)-1])
	}

	// The footage on the card: encrypted (a frame's bytes appear nowhere),
	// and its chain verifies against the unit's key, with the footage key
	// and without it.
	segs, _ := filepath.Glob(filepath.Join(data, "footage", "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no footage segments")
	}
	for _, seg := range segs {
		raw, _ := os.ReadFile(seg)
		if bytes.Contains(raw, jpg[:64]) || bytes.Contains(raw, []byte("JFIF")) {
			t.Fatalf("%s holds a picture in clear", seg)
		}
	}
	for _, args := range [][]string{{"--key-file", keyFile}, {}} {
		out, err := exec.Command(bins.outpost, append([]string{"footage", "verify", "--data", data, "--pubkey", unitKey}, args...)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "chain intact") {
			t.Fatalf("outpost footage verify %v: %v\n%s", args, err, out)
		}
		t.Logf("outpost footage verify %v:\n%s", args, out)
	}

	// The audit trail lists the pull with its recipient, and the refusals.
	var audit string
	deadline := time.Now().Add(20 * time.Second)
	for {
		var errs string
		audit, errs, code = signed("audit", id, "--since", "all")
		if code == 0 && strings.Contains(audit, "config.desired") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit: exit %d\n%s%s", code, audit, errs)
		}
		time.Sleep(time.Second)
	}
	t.Logf("the audit trail:\n%s", audit)
	for _, want := range []string{"transfer.start", "PC 1234, Met Police", "crime ref 01/123456/26", "alice (signed)", "unauthorized", "config.desired", "chain intact"} {
		mustHave(t, "audit", audit, want)
	}
	refused := 0
	sc := bufio.NewScanner(strings.NewReader(audit))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "unauthorized") {
			refused++
		}
	}
	if refused < 2 {
		t.Errorf("audit: %d refusals listed, want the unsigned snapshot and the unsigned configuration", refused)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type auditEntry struct {
	Seq       uint64 `json:"seq"`
	Action    string `json:"action"`
	RequestID string `json:"request_id"`
	Result    string `json:"result"`
	Detail    string `json:"detail"`
}

// auditEntries reads the unit's whole audit trail.
func auditEntries(t *testing.T, signed func(...string) (string, string, int), unit string) []auditEntry {
	t.Helper()
	out, errs, code := signed("audit", unit, "--since", "all", "--json")
	if code != 0 {
		t.Fatalf("audit --json: exit %d: %s", code, errs)
	}
	var l struct {
		Entries []auditEntry `json:"entries"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("audit --json: %v: %s", err, out)
	}
	return l.Entries
}

// waitAudit waits until the unit's audit trail mentions what (a request
// id, or a word of a detail).
func waitAudit(t *testing.T, signed func(...string) (string, string, int), unit, what string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		out, _, code := signed("audit", unit, "--since", "all", "--json")
		if code == 0 && strings.Contains(out, what) {
			return
		}
	}
	t.Fatalf("the audit trail never mentioned %q", what)
}

// checkMasked decodes a 1280x720 frame and checks that the masked area is
// one flat grey and the rest of the picture is not.
func checkMasked(t *testing.T, what string, jpg []byte) {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(jpg))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	yc, ok := img.(*image.YCbCr)
	if !ok || yc.Rect.Dx() != 1280 || yc.Rect.Dy() != 720 {
		t.Fatalf("%s: a %T of %v, want a 1280x720 YCbCr picture", what, img, img.Bounds())
	}
	first := yc.Y[yc.YOffset(640, 0)]
	for y := 0; y < 368; y++ {
		for x := 640; x < 1280; x++ {
			if v := yc.Y[yc.YOffset(x, y)]; v != first {
				t.Fatalf("%s: the masked area is not uniform: (%d,%d) is %d, (640,0) is %d", what, x, y, v, first)
			}
		}
	}
	lo, hi := uint8(255), uint8(0)
	for y := 0; y < 368; y++ {
		for x := 0; x < 640; x++ {
			v := yc.Y[yc.YOffset(x, y)]
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if hi-lo < 40 {
		t.Fatalf("%s: the unmasked area is flat too (luma %d-%d): the whole picture was blanked?", what, lo, hi)
	}
}
