package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent"
	"github.com/outpost-cctv/outpost/internal/testbroker"
	"github.com/outpost-cctv/outpost/ota"
)

// TestOTADeltaFallsBackToFull pushes a delta with its full bundle beside
// it: a unit running the delta's base takes the delta; one running
// another binary gets the full bundle instead, and the push says so.
func TestOTADeltaFallsBackToFull(t *testing.T) {
	t.Parallel()
	v1, v2 := otaAgents(t)
	b := testbroker.Start(t, testbroker.Options{})
	k := newKit(t)
	base, err := os.ReadFile(v1)
	if err != nil {
		t.Fatal(err)
	}
	// The deltas are made by 'outpostctl release build', as a release
	// desk makes them (and at full speed: this test runs with -race).
	dir := t.TempDir()
	keyFile, _, err := ota.WriteKeyFiles(dir, k.key)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "outpost-other")
	if err := os.WriteFile(other, append(base, "another build"...), 0o755); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	build := func(i int, name string, extra ...string) string {
		out := filepath.Join(dir, name)
		args := append([]string{"release", "build", "--key", keyFile, "--arch", agent.BuildArch(), "--version", "v2.0.0", "-o", out}, extra...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res, err := exec.Command(bins.outpostctl, append(args, v2)...).CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("release build %s: %v\n%s", name, err, res)
			}
		}()
		return out
	}
	full := build(0, "full.bundle")
	fromV1 := build(1, "from-v1.bundle", "--delta-from", v1)
	fromOther := build(2, "from-other.bundle", "--delta-from", other)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, delta string
		say         []string
		not         string
	}{
		{"runs the base", fromV1, []string{"committed v2.0.0 (was v1.0.0)"}, "instead of the delta"},
		{"runs another binary", fromOther, []string{"sending the full bundle " + full + " instead of the delta: the delta v2.0.0 was made from the binary with sha256", "the unit runs v1.0.0", "committed v2.0.0 (was v1.0.0)"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := "ota-delta-base"
			if tc.not == "" {
				id = "ota-delta-other"
			}
			u := newOTAUnit(t, b, id, k)
			u.launch(t, v1)
			waitOnline(t, b, u.id)
			c := dialControl(t, b)
			otaStatus(t, c, u.id, 20*time.Second, "v1 running", runningIs("v1.0.0"))
			out, stderr, code := ctl(t, b, "ota", "push", u.id, tc.delta, "--full", full)
			t.Logf("ota push --full:\n%s", out)
			if code != 0 {
				t.Fatalf("ota push: exit %d\n%s%s", code, out, stderr)
			}
			mustHave(t, "ota push", out, tc.say...)
			if tc.not != "" && strings.Contains(out, tc.not) {
				t.Fatalf("ota push fell back to the full bundle:\n%s", out)
			}
		})
	}
}
