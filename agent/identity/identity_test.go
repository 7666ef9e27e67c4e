package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIdentityCreatedOnceAndKept(t *testing.T) {
	data := t.TempDir()
	if _, err := Load(data); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load before creation: %v, want not exist", err)
	}
	k1, created, err := LoadOrCreate(data)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate: created=%v err=%v", created, err)
	}
	st, err := os.Stat(Path(data))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %04o, want 0600", st.Mode().Perm())
	}
	if dst, _ := os.Stat(filepath.Dir(Path(data))); dst.Mode().Perm() != 0o700 {
		t.Errorf("identity dir mode %04o, want 0700", dst.Mode().Perm())
	}
	before, _ := os.ReadFile(Path(data))

	k2, created, err := LoadOrCreate(data)
	if err != nil || created {
		t.Fatalf("second LoadOrCreate: created=%v err=%v", created, err)
	}
	after, _ := os.ReadFile(Path(data))
	if !bytes.Equal(before, after) || k1.PublicKeyString() != k2.PublicKeyString() {
		t.Fatal("the key changed on the second call")
	}
	// No temporary file is left beside it.
	ents, _ := os.ReadDir(filepath.Dir(Path(data)))
	if len(ents) != 1 {
		t.Errorf("identity dir holds %d entries, want only the key", len(ents))
	}

	msg := []byte("manifest")
	sig := k2.Sign(msg)
	pub, err := ParsePublicKey(k1.PublicKeyString())
	if err != nil {
		t.Fatal(err)
	}
	if !Verify(pub, msg, sig) || Verify(pub, []byte("altered"), sig) {
		t.Fatal("signature does not verify with the parsed public key, or verifies an altered message")
	}
	if !strings.HasPrefix(k1.PublicKeyString(), KeyType+" ") {
		t.Errorf("public key line %q", k1.PublicKeyString())
	}
}

func TestIdentityDamagedKeyRefused(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	good := func(t *testing.T) []byte {
		d := t.TempDir()
		if _, _, err := LoadOrCreate(d); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(Path(d))
		return b
	}
	cases := []struct {
		name string
		body func(t *testing.T) []byte
		want string
	}{
		{"empty", func(*testing.T) []byte { return nil }, "damaged"},
		{"garbage", func(*testing.T) []byte { return []byte("not a key\n") }, "damaged"},
		{"truncated", func(t *testing.T) []byte { b := good(t); return b[:len(b)/2] }, "damaged"},
		{"flipped", func(t *testing.T) []byte {
			b := good(t)
			blk, _ := pem.Decode(b)
			blk.Bytes[5] ^= 0xff
			return pem.EncodeToMemory(blk)
		}, "damaged"},
		{"trailing", func(t *testing.T) []byte { return append(good(t), "junk"...) }, "damaged"},
		{"ecdsa", func(*testing.T) []byte { return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}) }, "not an Ed25519 key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := t.TempDir()
			p := Path(data)
			os.MkdirAll(filepath.Dir(p), 0o700)
			body := c.body(t)
			if err := os.WriteFile(p, body, 0o600); err != nil {
				t.Fatal(err)
			}
			_, created, err := LoadOrCreate(data)
			if err == nil || created {
				t.Fatalf("a damaged key was accepted (created=%v)", created)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "mv ") {
				t.Errorf("error does not say what is wrong and what to do: %v", err)
			}
			if got, _ := os.ReadFile(p); !bytes.Equal(got, body) {
				t.Fatal("the damaged key was replaced")
			}
		})
	}
}

func TestIdentityOpenModeRefused(t *testing.T) {
	data := t.TempDir()
	if _, _, err := LoadOrCreate(data); err != nil {
		t.Fatal(err)
	}
	os.Chmod(Path(data), 0o644)
	_, _, err := LoadOrCreate(data)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a key readable by others: %v", err)
	}
}

func TestIdentityUnreadableKeyRefused(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file; the unreadable case cannot be made")
	}
	data := t.TempDir()
	if _, _, err := LoadOrCreate(data); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(Path(data))
	os.Chmod(Path(data), 0o000)
	t.Cleanup(func() { os.Chmod(Path(data), 0o600) })
	if _, _, err := LoadOrCreate(data); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an unreadable key: %v", err)
	}
	os.Chmod(Path(data), 0o600)
	if after, _ := os.ReadFile(Path(data)); !bytes.Equal(before, after) {
		t.Fatal("the unreadable key was replaced")
	}
}

func TestIdentityLeftoverTempIgnored(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Dir(Path(data))
	os.MkdirAll(dir, 0o700)
	// A crash between writing the temporary file and linking it.
	os.WriteFile(filepath.Join(dir, ".evidence.key.tmp123"), []byte("half a ke"), 0o600)
	k, created, err := LoadOrCreate(data)
	if err != nil || !created || k == nil {
		t.Fatalf("created=%v err=%v", created, err)
	}
}

func TestIdentityDanglingLinkRefused(t *testing.T) {
	data := t.TempDir()
	p := Path(data)
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.Symlink(filepath.Join(data, "elsewhere"), p)
	if _, _, err := LoadOrCreate(data); err == nil {
		t.Fatal("a dangling link was replaced by a new key")
	}
	if _, err := os.Stat(filepath.Join(data, "elsewhere")); err == nil {
		t.Fatal("a key was created through the dangling link")
	}
}

func TestIdentityMissingDataDir(t *testing.T) {
	_, _, err := LoadOrCreate(filepath.Join(t.TempDir(), "nope"))
	if err == nil || !strings.Contains(err.Error(), "data_dir") {
		t.Fatalf("missing data dir: %v", err)
	}
}

func TestIdentityParsePublicKey(t *testing.T) {
	for _, s := range []string{
		"",
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
		KeyType + " !!!",
		KeyType + " AAAA",
		KeyType,
	} {
		if _, err := ParsePublicKey(s); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", s)
		}
	}
	data := t.TempDir()
	k, _, _ := LoadOrCreate(data)
	pub, err := ParsePublicKey("  " + k.PublicKeyString() + "\n")
	if err != nil || !pub.Equal(k.PublicKey()) {
		t.Fatalf("round trip: %v", err)
	}
}

func FuzzParsePublicKey(f *testing.F) {
	f.Add(KeyType + " 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
	f.Add("x")
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := ParsePublicKey(s)
		if err != nil {
			return
		}
		if again, err := ParsePublicKey(FormatPublicKey(pub)); err != nil || !again.Equal(pub) {
			t.Fatalf("round trip of %q: %v", s, err)
		}
	})
}
