package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/outpost-cctv/outpost/internal/atomicfile"
	"github.com/outpost-cctv/outpost/ota"
)

const releaseUsage = `usage:
  outpostctl release keygen --out DIR [--comment TEXT]
      a new release signing key: DIR/release.key (0600, keep it offline) and
      DIR/release.pub (the line units pin)
  outpostctl release build --key release.key --arch ARCH --version vX.Y.Z [--min-from vX.Y.Z]
                           [--allow-downgrade] [--delta-from OLD_BINARY] BINARY -o BUNDLE
      a signed release bundle of BINARY; with --delta-from, a delta that only units
      running exactly OLD_BINARY can install
  outpostctl release verify --pub release.pub [--pub old.pub] BUNDLE
                            [--running-version vX.Y.Z] [--arch ARCH] [--running-binary FILE]
      check a bundle as a unit would, and print its manifest
ARCH is arm64, armv7, armv6 or amd64.`

func releaseCmd(ctx context.Context, g *globals, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(g.env.Stderr, releaseUsage)
		return ExitUsage
	}
	switch args[0] {
	case "keygen":
		return releaseKeygenCmd(g, args[1:])
	case "build":
		return releaseBuildCmd(g, args[1:])
	case "verify":
		return releaseVerifyCmd(ctx, g, args[1:])
	case "help", "-h", "--help":
		fmt.Fprintln(g.env.Stdout, releaseUsage)
		return ExitOK
	}
	fmt.Fprintf(g.env.Stderr, "outpostctl release: unknown subcommand %q\n%s\n", args[0], releaseUsage)
	return ExitUsage
}

// releaseFlags is a flag set of its own: release commands talk to no
// broker, and their --key is the signing key, not the broker's client key.
func releaseFlags(g *globals, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("outpostctl release "+name, flag.ContinueOnError)
	fs.SetOutput(g.env.Stderr)
	fs.BoolVar(&g.json, "json", g.json, "print JSON")
	return fs
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func releaseKeygenCmd(g *globals, args []string) int {
	fs := releaseFlags(g, "keygen")
	out := fs.String("out", "", "directory to write release.key and release.pub to")
	comment := fs.String("comment", "", "a note kept with the key, e.g. who holds it and since when")
	pos, ok := parse(fs, args)
	if !ok || len(pos) != 0 || *out == "" {
		fmt.Fprintln(g.env.Stderr, releaseUsage)
		return ExitUsage
	}
	k, err := ota.GenerateKey()
	if err != nil {
		return g.fail(err)
	}
	k.Comment = *comment
	priv, pub, err := ota.WriteKeyFiles(*out, k)
	if err != nil {
		return g.fail(err)
	}
	fmt.Fprintf(g.env.Stdout, "signing key %s written to %s (mode 0600): keep it offline; whoever has it can sign agent releases\n", k.Public().ID(), priv)
	fmt.Fprintf(g.env.Stdout, "public key written to %s; units pin this line:\n%s\n", pub, k.Public())
	return ExitOK
}

func releaseBuildCmd(g *globals, args []string) int {
	fs := releaseFlags(g, "build")
	keyPath := fs.String("key", "", "the release signing key (release.key)")
	arch := fs.String("arch", "", "the architecture BINARY is built for: "+strings.Join(ota.Arches, ", "))
	ver := fs.String("version", "", "the version of BINARY, e.g. v1.2.3")
	minFrom := fs.String("min-from", "", "units running an older version refuse the release")
	downgrade := fs.Bool("allow-downgrade", false, "let units running a newer version install it")
	deltaFrom := fs.String("delta-from", "", "make a delta against this binary, the one the units run")
	out := fs.String("o", "", "the bundle to write")
	pos, ok := parse(fs, args)
	if !ok || len(pos) != 1 || *keyPath == "" || *arch == "" || *ver == "" || *out == "" {
		fmt.Fprintln(g.env.Stderr, releaseUsage)
		return ExitUsage
	}
	key, err := ota.LoadPrivateKey(*keyPath)
	if err != nil {
		return g.fail(err)
	}
	bin, err := os.ReadFile(pos[0])
	if err != nil {
		return g.fail(err)
	}
	opt := ota.BuildOptions{Version: *ver, Arch: *arch, MinFromVersion: *minFrom, AllowDowngrade: *downgrade}
	if *deltaFrom != "" {
		if opt.Base, err = os.ReadFile(*deltaFrom); err != nil {
			return g.fail(err)
		}
	}
	var buf bytes.Buffer
	m, err := ota.Build(&buf, key, bin, opt)
	if err != nil {
		fmt.Fprintf(g.env.Stderr, "outpostctl: %s\n", ota.Reason(err))
		return ExitUsage
	}
	if err := atomicfile.Write(*out, buf.Bytes(), 0o644); err != nil {
		return g.fail(err)
	}
	if g.json {
		return g.printJSON(m)
	}
	kind := "full"
	if m.IsDelta() {
		kind = "delta from " + *deltaFrom
	}
	fmt.Fprintf(g.env.Stdout, "%s: %s for %s, %s, %d bytes for a %d-byte binary (%.3g%%), signed by key %s\n",
		*out, m.Version, m.Arch, kind, buf.Len(), m.Size, 100*float64(buf.Len())/float64(m.Size), key.Public().Describe())
	return ExitOK
}

func releaseVerifyCmd(ctx context.Context, g *globals, args []string) int {
	fs := releaseFlags(g, "verify")
	var pubs listFlag
	fs.Var(&pubs, "pub", "a pinned public key file (repeat for several)")
	running := fs.String("running-version", "", "check as a unit running this version would")
	arch := fs.String("arch", "", "check as a unit of this architecture would")
	runningBin := fs.String("running-binary", "", "the binary the unit runs: checks a delta's base and rebuilds the binary from it")
	pos, ok := parse(fs, args)
	if !ok || len(pos) != 1 {
		fmt.Fprintln(g.env.Stderr, releaseUsage)
		return ExitUsage
	}
	keys, err := ota.LoadPublicKeys(pubs...)
	if err != nil {
		return g.fail(err)
	}
	t := ota.Target{Version: *running, Arch: *arch}
	var base []byte
	if *runningBin != "" {
		if base, err = os.ReadFile(*runningBin); err != nil {
			return g.fail(err)
		}
		t.BinarySHA256 = sha256Hex(base)
	}
	b, f, err := ota.VerifyFile(pos[0], keys, t)
	if err != nil {
		return g.fail(err)
	}
	defer f.Close()
	m := b.Manifest
	// Rebuild the binary, unless it is a delta and its base is unknown.
	rebuilt := !m.IsDelta() || base != nil
	if rebuilt {
		if err := ota.Decode(ctx, m, b.Payload(), base, io.Discard); err != nil {
			return g.fail(err)
		}
	}
	if g.json {
		return g.printJSON(struct {
			Manifest ota.Manifest `json:"manifest"`
			KeyID    string       `json:"key_id"`
			Rebuilt  bool         `json:"rebuilt"`
		}{m, b.Key.ID(), rebuilt})
	}
	w := g.env.Stdout
	fmt.Fprintf(w, "version          %s\n", m.Version)
	fmt.Fprintf(w, "arch             %s\n", m.Arch)
	fmt.Fprintf(w, "binary           %d bytes, sha256 %s\n", m.Size, m.SHA256)
	if m.IsDelta() {
		fmt.Fprintf(w, "payload          %s, %d bytes, from the binary with sha256 %s\n", m.Encoding, m.PayloadSize, m.DeltaBaseSHA256)
	} else {
		fmt.Fprintf(w, "payload          %s, %d bytes\n", m.Encoding, m.PayloadSize)
	}
	minFrom := m.MinFromVersion
	if minFrom == "" {
		minFrom = "(any)"
	}
	fmt.Fprintf(w, "min_from_version %s\n", minFrom)
	fmt.Fprintf(w, "allow_downgrade  %v\n", m.AllowDowngrade)
	fmt.Fprintf(w, "created          %s\n", m.Created.Format("2006-01-02 15:04:05Z"))
	fmt.Fprintf(w, "signature OK by key %s\n", b.Key.Describe())
	fmt.Fprintln(w, "payload hash OK")
	switch {
	case rebuilt:
		fmt.Fprintln(w, "binary rebuilt from the payload: size and sha256 OK")
	default:
		fmt.Fprintln(w, "delta not applied: give --running-binary to rebuild the binary from its base")
	}
	if t.Version != "" || t.Arch != "" {
		fmt.Fprintf(w, "a unit running %s on %s would install it\n", orAny(t.Version, "version"), orAny(t.Arch, "architecture"))
	}
	return ExitOK
}

func orAny(s, what string) string {
	if s == "" {
		return "any " + what
	}
	return s
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
