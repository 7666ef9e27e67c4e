package config

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Privacy is what the unit does to protect the people it films (UK GDPR,
// the Surveillance Camera Code): masks over views it must not record, the
// signing of its sealed footage, and encryption at rest.
type Privacy struct {
	// Masks are blanked in every frame before it is stored, and so in
	// every clip, snapshot and thumbnail: polygons of [x, y] corners,
	// fractions of the picture (0,0 top left, 1,1 bottom right), as
	// motion zones. A rectangle is four corners. Each is widened to the
	// JPEG block grid, so a mask covers at least what was drawn.
	Masks [][][2]float64 `yaml:"masks"`
	// SignEvery is how often the head of the sealed-footage hash chain is
	// signed with the unit's evidence key (and at every stop).
	SignEvery Duration `yaml:"sign_every"`
	// EncryptionKeyFile, when set, encrypts footage at rest with the
	// 32-byte key in that file, which must not live on the footage's own
	// card (docs/operations.md, "Encryption at rest"). Empty: footage is
	// stored in clear.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
}

// Security is who may command the unit.
type Security struct {
	// SignedCommands is "required" (commands and remote configuration
	// must be signed by one of OperatorKeys; the production setting: with
	// no key listed yet the unit refuses every command) or "optional"
	// (unsigned ones run, recorded as unverified; the demo).
	SignedCommands string `yaml:"signed_commands"`
	// OperatorKeys are the control room's signing keys, one
	// "outpost-operator-ed25519 <base64> NAME" line each, as
	// `outpostctl operator keygen NAME` prints.
	OperatorKeys []string `yaml:"operator_keys"`
	// ReplayWindow is how far out of order signed commands may arrive.
	ReplayWindow Duration `yaml:"replay_window"`
}

// Settings of security.signed_commands.
const (
	SignedRequired = "required"
	SignedOptional = "optional"
)

// OperatorKeyType is the first word of an operator key line.
const OperatorKeyType = "outpost-operator-ed25519"

var operatorNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ParseOperatorKey reads an "outpost-operator-ed25519 <base64> NAME" line.
func ParseOperatorKey(line string) (name string, key ed25519.PublicKey, err error) {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != OperatorKeyType {
		return "", nil, fmt.Errorf("is not one %q line: paste the line 'outpostctl operator keygen NAME' printed", OperatorKeyType+" <base64> NAME")
	}
	b, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil || len(b) != ed25519.PublicKeySize {
		return "", nil, fmt.Errorf("the key is not the base64 of %d bytes: paste the whole line 'outpostctl operator keygen' printed", ed25519.PublicKeySize)
	}
	if !operatorNameRe.MatchString(f[2]) {
		return "", nil, fmt.Errorf("operator name %q must be 1-64 of [A-Za-z0-9_.-]", f[2])
	}
	return f[2], ed25519.PublicKey(b), nil
}

// Keys returns the configured operator keys by name; lines that do
// not parse are left out (Validate reports them).
func (s Security) Keys() map[string]ed25519.PublicKey {
	keys := make(map[string]ed25519.PublicKey, len(s.OperatorKeys))
	for _, l := range s.OperatorKeys {
		if name, k, err := ParseOperatorKey(l); err == nil {
			keys[name] = k
		}
	}
	return keys
}

func validatePrivacy(v *validator, p Privacy) {
	for i, poly := range p.Masks {
		f := fmt.Sprintf("privacy.masks[%d]", i)
		if len(poly) < 3 {
			v.add(f, "a mask needs at least three [x, y] corners (a rectangle is four), found %d", len(poly))
		}
		for _, pt := range poly {
			if pt[0] < 0 || pt[0] > 1 || pt[1] < 0 || pt[1] > 1 {
				v.add(f, "corner %v: coordinates are fractions of the picture, 0-1 (0,0 top left, 1,1 bottom right)", pt)
				break
			}
		}
	}
	if len(p.Masks) > 32 {
		v.add("privacy.masks", "%d masks is above the limit of 32: merge neighbouring ones", len(p.Masks))
	}
	v.between("privacy.sign_every", p.SignEvery, Duration(10*time.Second), Duration(24*time.Hour))
	if k := p.EncryptionKeyFile; k != "" && !filepath.IsAbs(k) {
		v.add("privacy.encryption_key_file", "%q is not an absolute path: give the key file's full path, on storage other than the footage's card", k)
	}
}

func validateSecurity(v *validator, s Security) {
	switch s.SignedCommands {
	case SignedRequired, SignedOptional:
	default:
		v.add("security.signed_commands", "%q is not known: use required (production) or optional", s.SignedCommands)
	}
	seen := map[string]bool{}
	for i, l := range s.OperatorKeys {
		name, _, err := ParseOperatorKey(l)
		if err != nil {
			v.add(fmt.Sprintf("security.operator_keys[%d]", i), "%v", err)
			continue
		}
		if seen[name] {
			v.add(fmt.Sprintf("security.operator_keys[%d]", i), "operator %q has two keys: give each key its own name", name)
		}
		seen[name] = true
	}
	v.between("security.replay_window", s.ReplayWindow, Duration(10*time.Second), Duration(time.Hour))
}
