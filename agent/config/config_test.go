package config

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestExampleIsDefault(t *testing.T) {
	path := filepath.Join("..", "..", "configs", "outpost.example.yaml")
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("the example config must be valid: %v", err)
	}
	if def := Default(); !reflect.DeepEqual(cfg, def) {
		t.Errorf("configs/outpost.example.yaml and Default() disagree:\n file: %+v\n code: %+v", cfg, def)
	}
}

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestBadConfigs checks the message for each broken file against a golden
// file in testdata; run with -update to rewrite them after a deliberate
// change.
func TestBadConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) < 5 {
		t.Fatalf("expected the bad configs in testdata, found %d", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			if err == nil {
				t.Fatal("loaded without error")
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("message changed:\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

func TestErrorsNameFileLineField(t *testing.T) {
	_, err := Load("testdata/unknown-key.yaml")
	es, ok := err.(Errors)
	if !ok || len(es) != 1 {
		t.Fatalf("want one FieldError, got %#v", err)
	}
	e := es[0]
	if e.File != "testdata/unknown-key.yaml" || e.Line != 5 || e.Field != "camera.fsp" || !strings.Contains(e.Msg, `"fps"`) {
		t.Errorf("got %+v", e)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if err == nil || !strings.Contains(err.Error(), "does-not-exist.yaml") {
		t.Fatalf("want an error naming the file, got %v", err)
	}
}

func TestPartialFileKeepsDefaults(t *testing.T) {
	cfg, err := Parse("x.yaml", []byte("unit:\n  id: lamp-14\nretention:\n  max_age: 14d\n  quota: 32GiB\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Unit.ID != "lamp-14" || cfg.Retention.MaxAge.D() != 14*24*time.Hour || cfg.Retention.Quota.Bytes != 32<<30 {
		t.Errorf("values not read: %+v", cfg)
	}
	if cfg.Camera.FPS != 25 || cfg.Recording.SyncInterval.D() != time.Second {
		t.Errorf("defaults lost: %+v", cfg)
	}
}

func TestSecretRedacted(t *testing.T) {
	s := Secret("hunter2")
	if strings.Contains(s.String(), "hunter2") || strings.Contains(s.LogValue().String(), "hunter2") {
		t.Error("secret leaks")
	}
}

func TestParseUnits(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Size
		ok   bool
	}{
		{"4096", 4096, true}, {"512KiB", 512 << 10, true}, {"64MiB", 64 << 20, true},
		{"32GiB", 32 << 30, true}, {"1.5GiB", 3 << 29, true}, {"32GB", 32e9, true},
		{"-1", 0, false}, {"lots", 0, false}, {"1e30TiB", 0, false}, {"", 0, false},
	} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30s", 30 * time.Second, true}, {"28d", 28 * 24 * time.Hour, true}, {"1h30m", 90 * time.Minute, true},
		{"5 days", 0, false}, {"-d", 0, false}, {"d", 0, false},
	} {
		got, err := ParseDuration(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got.D() != tc.want) {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	var p SizeOrPercent
	if err := p.UnmarshalText([]byte("90%")); err != nil || p.Of(1000) != 900 {
		t.Errorf("90%%: %v %v", p, err)
	}
	if err := p.UnmarshalText([]byte("0%")); err == nil {
		t.Error("0% accepted")
	}
}

// FuzzParse checks that no input makes the loader panic, and that whatever
// it accepts also passes Validate.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	files = append(files, filepath.Join("..", "..", "configs", "outpost.example.yaml"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := Parse("fuzz.yaml", b)
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("accepted an invalid config: %v", verr)
			}
		}
	})
}
