package ota

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPushArgsValidate(t *testing.T) {
	ok := PushArgs{ID: PushID(strings.Repeat("ab", 32)), Version: "v1.2.3", Size: 1 << 20, SHA256: strings.Repeat("ab", 32), ChunkSize: 65536, Window: 8}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*PushArgs){
		"id":         func(a *PushArgs) { a.ID = "clip-0123" },
		"size":       func(a *PushArgs) { a.Size = MaxBundleSize + 1 },
		"size small": func(a *PushArgs) { a.Size = 10 },
		"sha256":     func(a *PushArgs) { a.SHA256 = "XYZ" },
		"chunk_size": func(a *PushArgs) { a.ChunkSize = 10 },
		"window":     func(a *PushArgs) { a.Window = 0 },
	} {
		a := ok
		mut(&a)
		if err := a.Validate(); err == nil || !strings.Contains(err.Error(), strings.Fields(strings.ReplaceAll(name, "_", " "))[0]) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestStatusOutcome(t *testing.T) {
	for s, want := range map[State]string{StateCommitted: "committed", StateRolledBack: "rolled_back", StateFailed: "rejected", StateTrial: "", StateDownloading: ""} {
		if got := (Status{State: s}).Outcome(); got != want {
			t.Errorf("%s: %q, want %q", s, got, want)
		}
	}
}

// FuzzPushArgs: arguments from the control room never panic the checks,
// and what passes them survives a round trip.
func FuzzPushArgs(f *testing.F) {
	f.Add([]byte(`{"id":"ota-0123456789abcdef01234567","version":"v1.0.0","size":1000,"sha256":"` + strings.Repeat("0", 64) + `","chunk_size":1024,"window":8}`))
	f.Add([]byte(`{"id":"","size":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var a PushArgs
		if json.Unmarshal(b, &a) != nil || a.Validate() != nil {
			return
		}
		out, _ := json.Marshal(a)
		var back PushArgs
		if err := json.Unmarshal(out, &back); err != nil || back != a {
			t.Fatalf("round trip: %+v → %+v (%v)", a, back, err)
		}
	})
}
