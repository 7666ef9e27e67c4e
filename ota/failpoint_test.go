package ota

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFailpointArmed(t *testing.T) {
	dir := t.TempDir()
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	for _, tc := range []struct {
		name  string
		env   map[string]string
		point string
		want  bool
	}{
		{"unset", nil, FailMidInstall, false},
		{"another point", map[string]string{EnvFailpoint: FailAfterSwitch}, FailMidInstall, false},
		{"named", map[string]string{EnvFailpoint: FailMidInstall}, FailMidInstall, true},
		{"one of a list", map[string]string{EnvFailpoint: "after:verified, mid:install"}, FailMidInstall, true},
		{"a prefix is not a name", map[string]string{EnvFailpoint: "mid:"}, FailMidInstall, false},
		{"once, marker absent", map[string]string{EnvFailpoint: FailMidInstall, EnvFailpointOnce: filepath.Join(dir, "once")}, FailMidInstall, true},
		{"once, marker present", map[string]string{EnvFailpoint: FailMidInstall, EnvFailpointOnce: filepath.Join(dir, "once")}, FailMidInstall, false},
		{"once, marker unwritable", map[string]string{EnvFailpoint: FailMidInstall, EnvFailpointOnce: filepath.Join(dir, "missing", "once")}, FailMidInstall, false},
	} {
		if got := failpointArmed(tc.point, env(tc.env)); got != tc.want {
			t.Errorf("%s: armed %v, want %v", tc.name, got, tc.want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "once")); err != nil || string(b) != FailMidInstall+"\n" {
		t.Fatalf("once marker: %q, %v", b, err)
	}
}
