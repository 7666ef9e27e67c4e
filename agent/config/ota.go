package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/outpost-cctv/outpost/ota"
)

// validateOTA checks the ota section.
func validateOTA(v *validator, o OTA) {
	if o.Root != "" && !filepath.IsAbs(o.Root) {
		v.add("ota.root", "%q is not an absolute path: use e.g. /var/lib/outpost/ota, or leave it empty for <data_dir>/ota", o.Root)
	}
	for i, k := range o.Keys {
		keys, err := ota.ParsePublicKeys([]byte(k))
		if err != nil || len(keys) != 1 || strings.Contains(strings.TrimSpace(k), "\n") {
			v.add(fmt.Sprintf("ota.keys[%d]", i), "is not one \"outpost-release-ed25519 <base64> [comment]\" line: paste the line of the release.pub 'outpostctl release keygen' wrote")
		}
	}
	if o.Arch != "" && !validArch(o.Arch) {
		v.add("ota.arch", "%q is not one of %s (or empty: the agent's own)", o.Arch, strings.Join(ota.Arches, ", "))
	}
	if o.MinSOC < 0 || o.MinSOC > 100 {
		v.add("ota.min_soc", "%g is outside 0-100 (%%)", o.MinSOC)
	}
	if o.DataHeadroom == (SizeOrPercent{}) {
		v.add("ota.data_headroom", "must be set: a size such as 300MiB, or a share of uplink.monthly_budget such as 10%%")
	}
	v.between("ota.trial_window", o.TrialWindow, Duration(5*time.Second), Duration(24*time.Hour))
	if o.MaxTrialBoots < 1 || o.MaxTrialBoots > 20 {
		v.add("ota.max_trial_boots", "%d is outside 1-20", o.MaxTrialBoots)
	}
}

func validArch(a string) bool {
	for _, x := range ota.Arches {
		if x == a {
			return true
		}
	}
	return false
}
