package config

import (
	"strings"
	"testing"
)

func TestValidateOTA(t *testing.T) {
	const good = "outpost-release-ed25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= release 2026"
	for _, tc := range []struct {
		name string
		mut  func(*OTA)
		want string // "" valid
	}{
		{"defaults", func(*OTA) {}, ""},
		{"a key", func(o *OTA) { o.Keys = []string{good} }, ""},
		{"bad key", func(o *OTA) { o.Keys = []string{good, "ssh-ed25519 AAAA"} }, "ota.keys[1]"},
		{"relative root", func(o *OTA) { o.Root = "ota" }, "ota.root"},
		{"arch", func(o *OTA) { o.Arch = "mips" }, "ota.arch"},
		{"min_soc", func(o *OTA) { o.MinSOC = 120 }, "ota.min_soc"},
		{"trial_window", func(o *OTA) { o.TrialWindow = Duration(1) }, "ota.trial_window"},
		{"max_trial_boots", func(o *OTA) { o.MaxTrialBoots = 0 }, "ota.max_trial_boots"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mut(&c.OTA)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
