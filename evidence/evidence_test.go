package evidence

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/identity"
)

type testKey struct{ priv ed25519.PrivateKey }

func (k testKey) Sign(msg []byte) []byte       { return ed25519.Sign(k.priv, msg) }
func (k testKey) PublicKey() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

func newKey(t testing.TB) testKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv}
}

func line(k testKey) string { return identity.FormatPublicKey(k.PublicKey()) }

func sample(file []byte) Manifest {
	sum := sha256.Sum256(file)
	t0 := time.Date(2026, 11, 3, 3, 12, 0, 0, time.UTC)
	return Manifest{
		Kind: "clip", Unit: "cam-07", Site: "Fly-tip lane", Camera: "/dev/video0 1920x1080",
		Purpose: "fly-tipping enforcement", DPIARef: "DPIA-2026-014",
		Masks: [][][2]float64{{{0.6, 0}, {1, 0}, {1, 0.3}, {0.6, 0.3}}},
		From:  t0, To: t0.Add(time.Minute), Frames: 1500,
		File:     File{Type: "video/mp4", Size: int64(len(file)), SHA256: hex.EncodeToString(sum[:])},
		Segments: []Segment{{First: 1, SHA256: strings.Repeat("ab", 32), Link: strings.Repeat("cd", 32)}},
		Exported: t0.Add(time.Hour), Requester: "alice (signed)", Recipient: "PC 1234, Met Police", Reason: "crime ref 01/123456/26",
		AgentVersion: "v1.2.3",
	}
}

func TestSealAndVerify(t *testing.T) {
	k := newKey(t)
	file := bytes.Repeat([]byte("mp4 "), 1000)
	doc, err := Seal(sample(file), k)
	if err != nil {
		t.Fatal(err)
	}
	keys := Keys{Unit: "cam-07", Current: line(k)}
	c, err := Verify(doc, keys, bytes.NewReader(file))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Manifest.Frames != 1500 || c.Previous {
		t.Fatalf("certificate: %+v", c)
	}
	txt := c.String()
	for _, want := range []string{"EVIDENCE VERIFIED", "cam-07", "1500 frames", "PC 1234, Met Police", "DPIA-2026-014", "1 in force"} {
		if !strings.Contains(txt, want) {
			t.Errorf("certificate lacks %q:\n%s", want, txt)
		}
	}

	// Re-indenting the document does not break it.
	var compact bytes.Buffer
	json.Compact(&compact, doc)
	if _, err := Verify(compact.Bytes(), keys, bytes.NewReader(file)); err != nil {
		t.Errorf("re-formatted document: %v", err)
	}

	// The unit's earlier key still verifies what it signed.
	if c, err := Verify(doc, Keys{Unit: "cam-07", Current: line(newKey(t)), Previous: []string{line(k)}}, bytes.NewReader(file)); err != nil || !c.Previous {
		t.Errorf("previous key: %v %+v", err, c)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	k := newKey(t)
	file := bytes.Repeat([]byte{1, 2, 3, 4, 5}, 2000)
	doc, err := Seal(sample(file), k)
	if err != nil {
		t.Fatal(err)
	}
	keys := Keys{Unit: "cam-07", Current: line(k)}

	flipped := bytes.Clone(file)
	flipped[4321] ^= 0x01
	other := newKey(t)
	otherDoc, _ := Seal(sample(file), other)
	otherUnit := sample(file)
	otherUnit.Unit = "cam-08"
	otherUnitDoc, _ := Seal(otherUnit, k)

	cases := []struct {
		name string
		doc  []byte
		keys Keys
		file []byte
		want string
	}{
		{"flipped byte in the clip", doc, keys, flipped, "the file was altered"},
		{"truncated clip", doc, keys, file[:len(file)-1], "not the file the unit handed over"},
		{"altered manifest", bytes.Replace(doc, []byte(`"frames": 1500`), []byte(`"frames": 1499`), 1), keys, file, "the manifest was altered"},
		{"altered time", bytes.Replace(doc, []byte("03:12:00Z"), []byte("03:13:00Z"), 1), keys, file, "the manifest was altered"},
		{"signed by another unit's key", otherDoc, keys, file, "not a key registered for unit cam-07"},
		{"manifest of another unit", otherUnitDoc, keys, file, "of unit cam-08"},
		{"no registered key", doc, Keys{Unit: "cam-07"}, file, "no registered evidence key"},
		{"not a document", []byte("{}x"), keys, file, "not a signed evidence document"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.doc, tc.keys, bytes.NewReader(tc.file))
			if err == nil || !IsProblem(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a problem saying %q", err, tc.want)
			}
		})
	}

	// Every single flipped byte of the signed document is caught (or
	// leaves it meaning the same: whitespace).
	for i := range doc {
		d := bytes.Clone(doc)
		d[i] ^= 0x04
		if _, err := Verify(d, keys, bytes.NewReader(file)); err == nil {
			var ja, jb bytes.Buffer
			if json.Compact(&ja, d) != nil || json.Compact(&jb, doc) != nil || !bytes.Equal(ja.Bytes(), jb.Bytes()) {
				t.Fatalf("flipping byte %d (%q) changed the document and was not detected", i, doc[i])
			}
		}
	}
}

func FuzzVerify(f *testing.F) {
	k := newKey(f)
	file := []byte("a clip")
	doc, _ := Seal(sample(file), k)
	f.Add(doc, file)
	f.Add([]byte(`{"manifest":{},"signature":{"alg":"ed25519","key":"x","sig":""}}`), []byte{})
	f.Add([]byte(`null`), []byte{})
	keys := Keys{Unit: "cam-07", Current: line(k)}
	f.Fuzz(func(t *testing.T, doc, file []byte) {
		c, err := Verify(doc, keys, bytes.NewReader(file))
		if err == nil && c.Manifest.File.Size != int64(len(file)) {
			t.Fatalf("accepted a file of %d bytes for a manifest of %d", len(file), c.Manifest.File.Size)
		}
	})
}
