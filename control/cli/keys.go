package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/outpost-cctv/outpost/control"
	"github.com/outpost-cctv/outpost/uplink/cmdauth"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

const operatorUsage = `usage:
  outpostctl operator keygen NAME -o DIR   a new signing key: DIR/NAME.key (keep it secret) and DIR/NAME.pub
  outpostctl operator pubkey FILE          the public line of an existing key (openssl genpkey -algorithm ed25519)
The public line, "outpost-operator-ed25519 BASE64 NAME", goes into each unit's
configuration (security.operator_keys); then set sign_key: DIR/NAME.key in ctl.yaml
(or --sign-key), and every command and configuration outpostctl sends is signed.`

// operatorCmd manages operators' command-signing keys.
func operatorCmd(_ context.Context, g *globals, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(g.env.Stderr, operatorUsage)
		return ExitUsage
	}
	switch args[0] {
	case "keygen":
		return operatorKeygenCmd(g, args[1:])
	case "pubkey":
		return operatorPubkeyCmd(g, args[1:])
	}
	fmt.Fprintf(g.env.Stderr, "outpostctl operator: unknown subcommand %q\n%s\n", args[0], operatorUsage)
	return ExitUsage
}

func operatorKeygenCmd(g *globals, args []string) int {
	fs := g.flagSet("operator keygen")
	out := fs.String("o", "", "directory to write NAME.key and NAME.pub to")
	pos, ok := parse(fs, args)
	if !ok || len(pos) != 1 || *out == "" {
		fmt.Fprintln(g.env.Stderr, operatorUsage)
		return ExitUsage
	}
	name := pos[0]
	if !wire.ValidKeyName(name) {
		fmt.Fprintf(g.env.Stderr, "outpostctl: key name %q is not 1-64 characters of A-Z, a-z, 0-9, '_', '.' and '-', starting with a letter or digit\n", name)
		return ExitUsage
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return g.fail(err)
	}
	pemKey, err := cmdauth.MarshalPrivateKey(priv)
	if err != nil {
		return g.fail(err)
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return g.fail(err)
	}
	keyPath := filepath.Join(*out, name+".key")
	pubPath := filepath.Join(*out, name+".pub")
	line := cmdauth.FormatPublicKey(pub) + " " + name
	if err := writeNew(keyPath, pemKey, 0o600); err != nil {
		return g.fail(err)
	}
	if err := writeNew(pubPath, []byte(line+"\n"), 0o644); err != nil {
		return g.fail(err)
	}
	fmt.Fprintln(g.env.Stdout, line)
	fmt.Fprintf(g.env.Stderr, "Wrote %s (secret: keep it to yourself) and %s.\nAdd the line above to security.operator_keys in each unit's configuration, and set sign_key: %s in ctl.yaml.\n", keyPath, pubPath, keyPath)
	return ExitOK
}

func operatorPubkeyCmd(g *globals, args []string) int {
	fs := g.flagSet("operator pubkey")
	pos, ok := parse(fs, args)
	if !ok || len(pos) != 1 {
		fmt.Fprintln(g.env.Stderr, operatorUsage)
		return ExitUsage
	}
	priv, name, err := cmdauth.LoadPrivateKey(pos[0])
	if err != nil {
		fmt.Fprintf(g.env.Stderr, "outpostctl: %v\n", err)
		return ExitUsage
	}
	fmt.Fprintln(g.env.Stdout, cmdauth.FormatPublicKey(priv.Public().(ed25519.PublicKey))+" "+name)
	fmt.Fprintf(g.env.Stderr, "Add the line to security.operator_keys in each unit's configuration; commands signed with it are from %q.\n", name)
	return ExitOK
}

// writeNew writes a file that must not exist yet: a key is never
// overwritten.
func writeNew(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists: a key is never overwritten; choose another name or directory, or remove it first", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// signer loads the --sign-key file, if any, and returns what makes a
// client sign with it.
func (g *globals) signer() (func(*control.Client) error, error) {
	if g.signKey == "" {
		return func(*control.Client) error { return nil }, nil
	}
	priv, name, err := cmdauth.LoadPrivateKey(g.signKey)
	if err != nil {
		return nil, fmt.Errorf("--sign-key: %w", err)
	}
	return func(c *control.Client) error { return c.SetSigner(name, priv) }, nil
}
