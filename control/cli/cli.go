// Package cli is the command line of outpostctl, the control room's tool.
// cmd/outpostctl only calls Main.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/outpost-cctv/outpost/control"
	"github.com/outpost-cctv/outpost/internal/version"
)

// Exit codes of outpostctl.
const (
	ExitOK        = 0
	ExitFailure   = 1 // anything else: a transfer that failed, a file that could not be written
	ExitUsage     = 2 // bad flags or arguments
	ExitNoFootage = 3 // the unit has no footage in the range asked for
	ExitOffline   = 4 // the unit is offline or unknown
	ExitBroker    = 5 // the broker cannot be reached
	ExitRefused   = 6 // the unit refused the command (busy, bad request, ...)
)

// Env is what a subcommand may touch of the outside world.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Stdin answers confirmation prompts, which are asked only when
	// StdinIsTerminal.
	Stdin           io.Reader
	StdinIsTerminal bool
}

type command struct {
	summary string
	run     func(ctx context.Context, g *globals, args []string) int
}

func commands() map[string]command {
	return map[string]command{
		"units":     {"the fleet: online, battery, solar, signal, storage, faults, version", unitsCmd},
		"watch":     {"live telemetry and events of a unit as they arrive", watchCmd},
		"trigger":   {"trigger UNIT: mark an event now (recorded with pre- and post-roll in events mode)", triggerCmd},
		"events":    {"events UNIT --since 24h: motion and other events the unit recorded", eventsCmd},
		"snapshot":  {"a JPEG of a unit's latest frame (or --at T)", snapshotCmd},
		"clip":      {"clip pull UNIT (--from T --to T | --last 2m) -o FILE.mp4", clipCmd},
		"provision": {"issue certificates for units and operators; the fleet registry", provisionCmd},
		"health":    {"health UNIT: the unit's faults, since when and what to do; its power mode", healthCmd},
		"config":    {"config get|diff|push|history|rollback UNIT: a unit's configuration, changed safely", configCmd},
		"version":   {"print the version", versionCmd},
		"ota":       {"ota push|status|rollout: update the agent on units over the air", otaCmd},
		"release":   {"release keygen|build|verify: signed agent releases for over-the-air updates", releaseCmd},
		"operator":  {"operator keygen|pubkey: an operator's key for signing commands", operatorCmd},
		"evidence":  {"evidence verify FILE [MANIFEST]: check a pulled clip against the unit's signed manifest", evidenceCmd},
		"audit":     {"audit UNIT [--since 24h|T|all]: who accessed the unit's footage, configuration and updates (the disclosure log), and whether its chain is intact", auditCmd},
	}
}

// globals are the flags every command takes, from the config file, the
// environment and the command line, in rising precedence.
type globals struct {
	env     Env
	opts    control.Options
	json    bool
	timeout time.Duration
	noColor bool
	log     *slog.Logger
	// signKey is the operator's key file that signs commands (--sign-key).
	signKey string
}

// fileConfig is ~/.config/outpost/ctl.yaml.
type fileConfig struct {
	Broker   string `yaml:"broker"`
	Prefix   string `yaml:"prefix"`
	CA       string `yaml:"ca"`
	Cert     string `yaml:"cert"`
	Key      string `yaml:"key"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	SignKey  string `yaml:"sign_key"`
}

func defaultConfigPath(env Env) string {
	if x := env.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "outpost", "ctl.yaml")
	}
	if h := env.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "outpost", "ctl.yaml")
	}
	return ""
}

func loadFileConfig(path string, explicit bool) (fileConfig, error) {
	var fc fileConfig
	if path == "" {
		return fc, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return fc, nil
		}
		return fc, fmt.Errorf("outpostctl: config: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return fc, fmt.Errorf("outpostctl: config %s: %v", path, err)
	}
	return fc, nil
}

// addGlobals registers the global flags on fs, defaulting from the config
// file and the environment.
func addGlobals(fs *flag.FlagSet, g *globals, fc fileConfig) {
	env := g.env.Getenv
	pick := func(vals ...string) string {
		for _, v := range vals {
			if v != "" {
				return v
			}
		}
		return ""
	}
	fs.StringVar(&g.opts.Broker, "broker", pick(env("OUTPOST_BROKER"), fc.Broker, "tcp://127.0.0.1:1883"), "MQTT broker URL (env OUTPOST_BROKER)")
	fs.StringVar(&g.opts.Prefix, "prefix", pick(fc.Prefix, "outpost"), "topic prefix of the fleet")
	fs.StringVar(&g.opts.CAFile, "ca", fc.CA, "CA certificate of the broker (PEM)")
	fs.StringVar(&g.opts.CertFile, "cert", fc.Cert, "client certificate (PEM)")
	fs.StringVar(&g.opts.KeyFile, "key", fc.Key, "client key (PEM)")
	fs.StringVar(&g.opts.Username, "username", pick(env("OUTPOST_USERNAME"), fc.Username), "broker username (env OUTPOST_USERNAME)")
	g.opts.Password = pick(env("OUTPOST_PASSWORD"), fc.Password)
	fs.BoolVar(&g.json, "json", false, "print JSON instead of a table")
	fs.DurationVar(&g.timeout, "timeout", 30*time.Second, "how long to wait for a unit's reply")
	fs.StringVar(&g.signKey, "sign-key", pick(env("OUTPOST_SIGN_KEY"), fc.SignKey), "the operator's Ed25519 key (PEM) that signs commands; its name is the file's name without extension (env OUTPOST_SIGN_KEY)")
}

// Main runs the outpostctl command line and returns the exit code.
func Main(ctx context.Context, env Env, args []string) int {
	cmds := commands()
	g := &globals{env: env, noColor: env.Getenv("NO_COLOR") != ""}
	g.log = slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// Global flags may come before the command.
	cfgPath := defaultConfigPath(env)
	explicit := false
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--config" || a == "-config" {
			if i+1 >= len(args) {
				fmt.Fprintln(env.Stderr, "outpostctl: --config needs a file")
				return ExitUsage
			}
			cfgPath, explicit = args[i+1], true
			i++
			continue
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			cfgPath, explicit = v, true
			continue
		}
		rest = append(rest, a)
	}
	fc, err := loadFileConfig(cfgPath, explicit)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return ExitUsage
	}
	pre := flag.NewFlagSet("outpostctl", flag.ContinueOnError)
	pre.SetOutput(env.Stderr)
	addGlobals(pre, g, fc)
	pre.Usage = func() { usage(env.Stderr, cmds) }
	if err := pre.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	rest = pre.Args()
	if len(rest) == 0 || rest[0] == "help" {
		usage(env.Stderr, cmds)
		if len(rest) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	c, ok := cmds[rest[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "outpostctl: unknown command %q (try 'outpostctl help')\n", rest[0])
		return ExitUsage
	}
	return c.run(ctx, g, rest[1:])
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "outpostctl: the control room's tool for a fleet of Outpost units")
	fmt.Fprintln(w, "\nUsage: outpostctl [--broker URL] [--ca F --cert F --key F] COMMAND [flags]\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nSettings are read from ~/.config/outpost/ctl.yaml (broker, prefix, ca, cert, key,")
	fmt.Fprintln(w, "username, password, sign_key), then OUTPOST_BROKER, OUTPOST_USERNAME, OUTPOST_PASSWORD,")
	fmt.Fprintln(w, "OUTPOST_SIGN_KEY, then flags.")
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 failure, 2 usage, 3 no footage, 4 unit offline, 5 broker unreachable, 6 refused by the unit.")
}

// flagSet is a command's flags, the global ones included, so they may
// follow the command too.
func (g *globals) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("outpostctl "+name, flag.ContinueOnError)
	fs.SetOutput(g.env.Stderr)
	saved := *g
	addGlobals(fs, g, fileConfig{})
	// Keep what the leading flags set as the defaults.
	fs.VisitAll(func(f *flag.Flag) {
		switch f.Name {
		case "broker":
			f.Value.Set(saved.opts.Broker)
		case "prefix":
			f.Value.Set(saved.opts.Prefix)
		case "ca":
			f.Value.Set(saved.opts.CAFile)
		case "cert":
			f.Value.Set(saved.opts.CertFile)
		case "key":
			f.Value.Set(saved.opts.KeyFile)
		case "username":
			f.Value.Set(saved.opts.Username)
		case "json":
			f.Value.Set(fmt.Sprint(saved.json))
		case "timeout":
			f.Value.Set(saved.timeout.String())
		case "sign-key":
			f.Value.Set(saved.signKey)
		}
	})
	g.opts.Password = saved.opts.Password
	return fs
}

// parse parses a command's flags, allowing flags after positional
// arguments ("clip pull u1 --last 2m").
func parse(fs *flag.FlagSet, args []string) ([]string, bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, false
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, true
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (g *globals) dial(ctx context.Context) (*control.Client, int) {
	signer, err := g.signer()
	if err != nil {
		fmt.Fprintf(g.env.Stderr, "outpostctl: %v\n", err)
		return nil, ExitUsage
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := control.Dial(dctx, g.opts, g.log)
	if err != nil {
		fmt.Fprintf(g.env.Stderr, "outpostctl: %v\n", err)
		return nil, ExitBroker
	}
	if err := signer(c); err != nil {
		c.Close()
		fmt.Fprintf(g.env.Stderr, "outpostctl: %v\n", err)
		return nil, ExitUsage
	}
	return c, ExitOK
}

// fail prints err and maps it to an exit code.
func (g *globals) fail(err error) int {
	fmt.Fprintf(g.env.Stderr, "outpostctl: %v\n", err)
	var off *control.OfflineError
	var ue *control.UnitError
	switch {
	case errors.As(err, &off):
		return ExitOffline
	case errors.As(err, &ue) && ue.Code == "not_found":
		return ExitNoFootage
	case errors.As(err, &ue):
		return ExitRefused
	case errors.Is(err, control.ErrBroker):
		return ExitBroker
	}
	return ExitFailure
}

func versionCmd(_ context.Context, g *globals, _ []string) int {
	fmt.Fprintln(g.env.Stdout, version.String("outpostctl"))
	return ExitOK
}
