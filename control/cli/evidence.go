package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/outpost-cctv/outpost/agent/identity"
	"github.com/outpost-cctv/outpost/control"
	"github.com/outpost-cctv/outpost/control/fleet"
	"github.com/outpost-cctv/outpost/evidence"
)

const evidenceUsage = `usage: outpostctl evidence verify FILE [MANIFEST] (--registry DIR | --pubkey "outpost-evidence-ed25519 BASE64")
  checks a pulled clip or snapshot against the signed evidence manifest the
  unit sent with it (default FILE.evidence.json) and the unit's evidence key
  as registered in the control room's registry`

// evidenceCmd is `outpostctl evidence verify`: the check made before
// footage is handed to the police, and again by whoever receives it.
func evidenceCmd(ctx context.Context, g *globals, args []string) int {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(g.env.Stderr, evidenceUsage)
		return ExitUsage
	}
	fs := flag.NewFlagSet("outpostctl evidence verify", flag.ContinueOnError)
	fs.SetOutput(g.env.Stderr)
	fs.Usage = func() { fmt.Fprintln(g.env.Stderr, evidenceUsage) }
	reg := fs.String("registry", g.env.Getenv("OUTPOST_REGISTRY"), "the control room's registry directory (env OUTPOST_REGISTRY): the unit's registered key")
	pub := fs.String("pubkey", "", "the unit's evidence key line, when the registry is not at hand (take it from the registry's owner, never from the manifest)")
	asJSON := fs.Bool("json", false, "print the verified manifest as JSON")
	pos, ok := parse(fs, args[1:])
	if !ok || len(pos) < 1 || len(pos) > 2 || (*reg == "") == (*pub == "") {
		fmt.Fprintln(g.env.Stderr, evidenceUsage)
		return ExitUsage
	}
	file := pos[0]
	manifest := control.EvidencePath(file)
	if len(pos) == 2 {
		manifest = pos[1]
	}
	doc, err := os.ReadFile(manifest)
	if err != nil {
		fmt.Fprintf(g.env.Stderr, "outpostctl: reading the evidence manifest: %v\n", err)
		return ExitFailure
	}
	unit, err := manifestUnit(doc)
	if err != nil {
		fmt.Fprintf(g.env.Stderr, "outpostctl: NOT VERIFIED: %s: %v\n", manifest, err)
		return ExitFailure
	}
	keys := evidence.Keys{Unit: unit}
	if *pub != "" {
		k, err := identity.ParsePublicKey(*pub)
		if err != nil {
			fmt.Fprintf(g.env.Stderr, "outpostctl: --pubkey: %v\n", err)
			return ExitUsage
		}
		keys.Current = identity.FormatPublicKey(k)
	} else {
		r, err := fleet.Open(*reg, false)
		if err != nil {
			return g.fail(err)
		}
		u, found, err := r.Unit(unit)
		if err != nil {
			return g.fail(err)
		}
		if !found {
			fmt.Fprintf(g.env.Stderr, "outpostctl: NOT VERIFIED: the manifest names unit %s, which is not in the registry %s\n", unit, *reg)
			return ExitFailure
		}
		keys.Current, keys.Previous = u.EvidenceKey, u.PreviousEvidenceKeys
	}
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintf(g.env.Stderr, "outpostctl: %v\n", err)
		return ExitFailure
	}
	defer f.Close()
	cert, err := evidence.Verify(doc, keys, f)
	if err != nil {
		if evidence.IsProblem(err) {
			fmt.Fprintf(g.env.Stdout, "NOT VERIFIED: %s with %s\n  %s\n", file, manifest, strings.TrimPrefix(err.Error(), "evidence: "))
			return ExitFailure
		}
		return g.fail(err)
	}
	if *asJSON {
		return g.printJSON(cert.Manifest)
	}
	fmt.Fprintf(g.env.Stdout, "%s\nchecked: %s against %s\n", cert, file, manifest)
	return ExitOK
}

// manifestUnit reads the unit a manifest names, to find its key; nothing
// in it is trusted before the signature is checked.
func manifestUnit(doc []byte) (string, error) {
	var d struct {
		Manifest struct {
			Unit string `json:"unit"`
		} `json:"manifest"`
	}
	if err := json.Unmarshal(doc, &d); err != nil || d.Manifest.Unit == "" {
		return "", fmt.Errorf("not a signed evidence manifest")
	}
	if err := fleet.ValidUnitID(d.Manifest.Unit); err != nil {
		return "", err
	}
	return d.Manifest.Unit, nil
}
