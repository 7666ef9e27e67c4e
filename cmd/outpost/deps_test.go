package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestUnitBinaryDeps keeps the unit's binary small and its attack surface
// narrow: it must not pull in the control room's packages, test equipment,
// or terminal niceties meant for operators.
func TestUnitBinaryDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"github.com/outpost-cctv/outpost/control", // the control room's client and CLI
		"github.com/outpost-cctv/outpost/internal/testbroker",
		"github.com/outpost-cctv/outpost/internal/faultproxy",
		"github.com/schollz/progressbar", // outpostctl's progress bar
		"testing",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("cmd/outpost imports %s, which belongs to the control room or to tests", dep)
			}
		}
	}
}
