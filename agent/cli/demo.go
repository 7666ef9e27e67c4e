package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/outpost-cctv/outpost/agent"
	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/agent/identity"
	"github.com/outpost-cctv/outpost/internal/atomicfile"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/internal/demobroker"
	"github.com/outpost-cctv/outpost/internal/version"
	"github.com/outpost-cctv/outpost/ota"
)

func newFlagSet(name string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet("outpost "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// demoConfig is the configuration of the demo unit when no --config is
// given: the defaults, with a day of solar power passing in 24 minutes so
// telemetry visibly moves, and telemetry every few seconds.
func demoConfig() config.Config {
	c := config.Default()
	c.Unit.ID = "demo-unit"
	c.Unit.Site = "Demo site (simulated)"
	c.Unit.Purpose = "Demonstration of an Outpost unit"
	c.DataDir = "./outpost-demo"
	c.Power.Sim.TimeScale = 60
	// Telemetry is sampled every 5 s and published at least every 30 s
	// (units in the field: every minute, at least every 15 minutes), so
	// the demo shows values moving.
	for _, st := range []*config.Stream{&c.Telemetry.Power, &c.Telemetry.Signal, &c.Telemetry.Storage, &c.Telemetry.System} {
		st.Interval, st.MaxInterval = config.Duration(5*time.Second), config.Duration(30*time.Second)
	}
	// A release pushed to the demo proves itself in two minutes (units in
	// the field: ten).
	c.OTA.TrialWindow = config.Duration(2 * time.Minute)
	// A privacy mask over the windows of the flats opposite: blanked in
	// every frame before it is stored, as a unit in a street must.
	c.Privacy.Masks = [][][2]float64{demoMask}
	c.Unit.DPIARef = "DPIA-DEMO-1"
	return c
}

// demoMask is the demo's privacy mask, in fractions of the picture.
var demoMask = [][2]float64{{0.04, 0.08}, {0.34, 0.08}, {0.34, 0.40}, {0.04, 0.40}}

// Files of the demo's release key, in its data directory.
const (
	demoReleaseKey = "release.key"
	demoReleasePub = "release.pub"
)

// demoReleaseKeys returns the demo's throwaway release key, made in dir at
// the first start and kept for the next ones, so that bundles signed with
// it stay good.
func demoReleaseKeys(dir string) (ota.PrivateKey, error) {
	p := filepath.Join(dir, demoReleaseKey)
	k, err := ota.LoadPrivateKey(p)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return k, fmt.Errorf("the demo's release key %s is unreadable (%w): remove %s and %s to make a new one", p, err, p, filepath.Join(dir, demoReleasePub))
	}
	if k, err = ota.GenerateKey(); err != nil {
		return k, err
	}
	k.Comment = "outpost demo, throwaway"
	os.Remove(filepath.Join(dir, demoReleasePub)) // a public key without its private one
	if _, _, err := ota.WriteKeyFiles(dir, k); err != nil {
		return k, err
	}
	return k, nil
}

// demoUpdates prepares the demo unit to take updates as a real one does:
// its release key pinned, and its update directory (under the data
// directory) emptied, so that the launcher sets it up again from this
// binary: the demo runs the binary it was started with, and a release
// pushed to it lasts until it stops.
func demoUpdates(cfg *config.Config) error {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return err
	}
	k, err := demoReleaseKeys(cfg.DataDir)
	if err != nil {
		return err
	}
	pub := k.Public().String()
	if !slices.Contains(cfg.OTA.Keys, pub) {
		cfg.OTA.Keys = append(cfg.OTA.Keys, pub)
	}
	if cfg.OTA.Root == "" {
		// Only the demo's own directory: an ota.root set in a config
		// file may be a real unit's.
		if err := os.RemoveAll(agent.OTARoot(*cfg)); err != nil {
			return fmt.Errorf("emptying the demo's update directory: %w", err)
		}
	}
	return nil
}

func demoCmd(ctx context.Context, env Env, args []string) int {
	fs := newFlagSet("demo", env)
	listen := fs.String("listen", "127.0.0.1:1883", "address of the embedded MQTT broker (the next free port is used if the default is taken)")
	broker := fs.String("broker", "", "connect to this external broker (tcp://HOST:PORT) instead of embedding one")
	unitID := fs.String("unit-id", "", "unit id (default demo-unit)")
	data := fs.String("data", "", "data directory (default ./outpost-demo)")
	cam := fs.String("camera", "", "camera source: sim, /dev/videoN, http(s)://HOST/PATH (MJPEG) or file:PATH")
	cfgPath := fs.String("config", "", "config file (default: built-in demo settings)")
	duration := fs.Duration("duration", 0, "stop by itself after this long (e.g. 20s); 0 runs until interrupted")
	launch := fs.Bool("launcher", true, "run the unit under the update launcher with A/B slots in the data directory, as a real unit runs, so that 'outpostctl ota push' can upgrade it; false runs it in this process, without updates")
	trial := fs.Duration("trial-window", 0, "how long a release pushed to the demo has to prove itself healthy (default 2m, or the config file's ota.trial_window)")
	if fs.Parse(args) != nil {
		return agent.ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "outpost demo: unexpected argument %q\n", fs.Arg(0))
		return agent.ExitUsage
	}
	listenGiven := false
	fs.Visit(func(f *flag.Flag) { listenGiven = listenGiven || f.Name == "listen" })
	if *broker != "" && listenGiven {
		fmt.Fprintln(env.Stderr, "outpost demo: give --listen (embedded broker) or --broker (external broker), not both")
		return agent.ExitUsage
	}

	cfg := demoConfig()
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			fmt.Fprintln(env.Stderr, err)
			return agent.ExitUsage
		}
	}
	if *unitID != "" {
		cfg.Unit.ID = *unitID
	}
	if *data != "" {
		cfg.DataDir = *data
	}
	if *cam != "" {
		cfg.Camera.Source = *cam
	}
	if *broker != "" {
		cfg.Uplink.Broker = *broker
	}
	if *trial != 0 {
		cfg.OTA.TrialWindow = config.Duration(*trial)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(env.Stderr, "outpost demo:", strings.TrimPrefix(err.Error(), "config: "))
		return agent.ExitUsage
	}
	// The unit's evidence key, as 'outpost provision' makes on a board:
	// clips come with signed evidence manifests.
	err := os.MkdirAll(cfg.DataDir, 0o750)
	var evKey *identity.Key
	if err == nil {
		evKey, _, err = identity.LoadOrCreate(cfg.DataDir)
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, "outpost demo:", err)
		return agent.ExitFailure
	}
	if *launch {
		if err := demoUpdates(&cfg); err != nil {
			fmt.Fprintln(env.Stderr, "outpost demo:", err)
			return agent.ExitFailure
		}
	}
	log := newLogger(env.Stderr, cfg.Log)

	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if *broker == "" {
		b, err := demobroker.Start(ctx, warnOnly(log), *listen, !listenGiven)
		if err != nil {
			fmt.Fprintln(env.Stderr, "outpost demo:", err)
			if errors.Is(err, demobroker.ErrAddrInUse) {
				return agent.ExitFailure
			}
			return agent.ExitUsage
		}
		defer b.Close()
		cfg.Uplink.Broker = b.URL()
	}
	// The demo unit runs from a file in its data directory, as a real one
	// does from /etc/outpost, so that the control room can change it.
	path := filepath.Join(cfg.DataDir, "outpost.yaml")
	y, err := cfg.Marshal("Outpost demo unit configuration, written by outpost demo at each start.")
	if err == nil {
		err = atomicfile.Write(path, y, 0o640)
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, "outpost demo:", err)
		return agent.ExitFailure
	}
	if !*launch {
		banner(env, cfg, *duration, "", evKey.PublicKeyString())
		return runUnit(ctx, env, cfg, path, log)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(env.Stderr, "outpost demo:", err)
		return agent.ExitFailure
	}
	banner(env, cfg, *duration, filepath.Join(cfg.DataDir, demoReleaseKey), evKey.PublicKeyString())
	l := &launcher{cfg: cfg, path: path, self: self, env: env, clk: clock.Real{}, log: log.With("component", "launcher")}
	return l.run(ctx)
}

func warnOnly(l *slog.Logger) *slog.Logger {
	return slog.New(levelFloor{l.Handler(), slog.LevelWarn})
}

// levelFloor drops records below a level: the embedded broker is chatty.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(as []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(as), h.min}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(name), h.min}
}

// banner prints where the demo is and what to try; key is the release
// key's file when the demo takes updates.
func banner(env Env, cfg config.Config, d time.Duration, key, evidenceKey string) {
	hostPort := strings.TrimPrefix(strings.TrimPrefix(cfg.Uplink.Broker, "tcp://"), "mqtt://")
	host, port, _ := net.SplitHostPort(hostPort)
	w := env.Stdout
	fmt.Fprintf(w, "Outpost demo: simulated unit %q\n", cfg.Unit.ID)
	fmt.Fprintf(w, "  MQTT broker  %s\n", cfg.Uplink.Broker)
	fmt.Fprintf(w, "  data         %s\n", cfg.DataDir)
	fmt.Fprintf(w, "  camera       %s %dx%d @ %d fps\n", cfg.Camera.Source, cfg.Camera.Width, cfg.Camera.Height, cfg.Camera.FPS)
	if d > 0 {
		fmt.Fprintf(w, "  stops after  %s\n", d)
	}
	ctl := fmt.Sprintf("bin/outpostctl --broker %s", cfg.Uplink.Broker)
	fmt.Fprintln(w, "\nTry, in another terminal:")
	fmt.Fprintf(w, "  %s units\n", ctl)
	fmt.Fprintf(w, "  %s watch %s\n", ctl, cfg.Unit.ID)
	fmt.Fprintf(w, "  %s snapshot %s -o now.jpg\n", ctl, cfg.Unit.ID)
	fmt.Fprintf(w, "  %s clip pull %s --last 30s -o clip.mp4 --recipient \"PC 1234\" --reason \"demo\"   (once 30 s are recorded)\n", ctl, cfg.Unit.ID)
	if len(cfg.Privacy.Masks) > 0 {
		fmt.Fprintf(w, "      the grey area in both is a privacy mask (privacy.masks), blanked before anything is stored\n")
	}
	fmt.Fprintf(w, "  %s evidence verify clip.mp4 --pubkey %q\n", ctl, evidenceKey)
	fmt.Fprintf(w, "      checks clip.mp4 against the unit's signed clip.mp4.evidence.json; change a byte and it fails\n")
	fmt.Fprintf(w, "  %s audit %s   (who pulled what, for whom and why)\n", ctl, cfg.Unit.ID)
	fmt.Fprintf(w, "  bin/outpost footage ls --data %s\n", cfg.DataDir)
	fmt.Fprintf(w, "  mosquitto_sub -h %s -p %s -t '%s/#' -v\n", host, port, cfg.Uplink.TopicPrefix)
	if key != "" {
		next, order := nextVersion(version.Version)
		bin, bundle := filepath.Join(cfg.DataDir, "outpost-"+next), filepath.Join(cfg.DataDir, "outpost-"+next+".bundle")
		fmt.Fprintf(w, "\nUpgrade it over the air (it runs %s from %s; %s is its throwaway release key):\n", version.Version, agent.OTARoot(cfg), key)
		fmt.Fprintf(w, "  go build -ldflags '-X github.com/outpost-cctv/outpost/internal/version.Version=%s' -o %s ./cmd/outpost\n", next, bin)
		fmt.Fprintf(w, "  bin/outpostctl release build --key %s --arch %s --version %s%s %s -o %s\n", key, agent.BuildArch(), next, order, bin, bundle)
		fmt.Fprintf(w, "  %s ota push %s %s\n", ctl, cfg.Unit.ID, bundle)
		fmt.Fprintf(w, "  %s ota status %s\n", ctl, cfg.Unit.ID)
	}
	fmt.Fprintln(w, "\nStop with Ctrl-C.")
}

// nextVersion is a version to build the demo's next release as, and the
// release build flag it needs: an untagged build ("dev", a bare commit)
// cannot be compared, so its release must allow any order.
func nextVersion(running string) (next, flag string) {
	v, err := ota.ParseVersion(running)
	if err != nil {
		return "v0.0.1-demo", " --allow-downgrade"
	}
	return fmt.Sprintf("v%d.%d.%d", v.Major, v.Minor, v.Patch+1), ""
}
