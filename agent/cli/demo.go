package cli

import (
	"path/filepath"

	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/outpost-cctv/outpost/internal/atomicfile"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/outpost-cctv/outpost/agent"
	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/internal/demobroker"
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
	return c
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
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(env.Stderr, "outpost demo:", strings.TrimPrefix(err.Error(), "config: "))
		return agent.ExitUsage
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
	banner(env, cfg, *duration)
	return runUnit(ctx, env, cfg, path, log)
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

func banner(env Env, cfg config.Config, d time.Duration) {
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
	fmt.Fprintf(w, "  %s clip pull %s --last 30s -o clip.mp4   (once 30 s are recorded)\n", ctl, cfg.Unit.ID)
	fmt.Fprintf(w, "  bin/outpost footage ls --data %s\n", cfg.DataDir)
	fmt.Fprintf(w, "  mosquitto_sub -h %s -p %s -t '%s/#' -v\n", host, port, cfg.Uplink.TopicPrefix)
	fmt.Fprintln(w, "\nStop with Ctrl-C.")
}
