package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/outpost-cctv/outpost/agent"
	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/hal/camera/mjpeg"
	camopen "github.com/outpost-cctv/outpost/hal/camera/open"
	"github.com/outpost-cctv/outpost/hal/camera/source"
	"github.com/outpost-cctv/outpost/hal/camera/v4l2"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// cameraPasswordEnv carries an IP camera's password to the probe, so that
// it stays out of the shell history and the process list.
const cameraPasswordEnv = "OUTPOST_CAMERA_PASSWORD"

func probeUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: outpost probe camera|power|modem|gpio ...

  outpost probe power --driver vedirect --port /dev/ttyUSB0 [--json]
  outpost probe modem --driver at --port /dev/ttyUSB2 [--flavor quectel] [--json]
  outpost probe gpio --config /etc/outpost/outpost.yaml
  (outpost probe power -h ... for their flags)

Usage: outpost probe camera [SOURCE] [flags]

Checks a camera on site: lists the modes a V4L2 camera offers, then
captures for a few seconds and reports the frame rate actually received.

SOURCE is /dev/videoN, /dev/v4l/by-id/NAME, http(s)://HOST/PATH, file:PATH
or sim; without it, camera.source of --config. An IP camera's password is
read from $`+cameraPasswordEnv+` (or --config), never from a flag.

Flags:
`)
}

// probeCmd is `outpost probe camera`.
func probeCmd(ctx context.Context, env Env, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "power":
			return probePowerCmd(ctx, env, args[1:])
		case "modem":
			return probeModemCmd(ctx, env, args[1:])
		case "gpio":
			return probeGPIOCmd(ctx, env, args[1:])
		}
	}
	if len(args) == 0 || args[0] != "camera" {
		probeUsage(env.Stderr)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return agent.ExitOK
		}
		return agent.ExitUsage
	}
	args = args[1:]
	fs := newFlagSet("probe camera", env)
	fs.Usage = func() { probeUsage(env.Stderr); fs.PrintDefaults() }
	def := config.Default().Camera
	cfgPath := fs.String("config", "", "take the camera settings (size, rate, credentials, timeouts) from this config file")
	width := fs.Int("width", 0, fmt.Sprintf("picture width to negotiate (default camera.width, %d)", def.Width))
	height := fs.Int("height", 0, fmt.Sprintf("picture height to negotiate (default camera.height, %d)", def.Height))
	fps := fs.Int("fps", 0, fmt.Sprintf("frame rate to negotiate (default camera.fps, %d)", def.FPS))
	user := fs.String("username", "", "username for an IP camera (the password comes from $"+cameraPasswordEnv+")")
	dur := fs.Duration("for", 3*time.Second, "how long to capture to measure the frame rate; 0 only lists the modes")
	snapshot := fs.String("snapshot", "", "write the first frame captured to this JPEG file")

	// SOURCE may come before the flags, as in: probe camera /dev/video0 --snapshot x.jpg
	var src string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		src, args = args[0], args[1:]
	}
	if fs.Parse(args) != nil {
		return agent.ExitUsage
	}
	if fs.NArg() > 1 || (src != "" && fs.NArg() > 0) {
		fmt.Fprintf(env.Stderr, "outpost probe camera: unexpected argument %q\n", fs.Arg(fs.NArg()-1))
		return agent.ExitUsage
	}
	if src == "" {
		src = fs.Arg(0)
	}

	cam := def
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintln(env.Stderr, err)
			return agent.ExitUsage
		}
		cam = cfg.Camera
	}
	if src == "" {
		if *cfgPath == "" {
			fmt.Fprintln(env.Stderr, "outpost probe camera: name the camera (e.g. /dev/video0), or give --config")
			return agent.ExitUsage
		}
		src = cam.Source
	}
	for _, o := range []struct {
		v   int
		dst *int
	}{{*width, &cam.Width}, {*height, &cam.Height}, {*fps, &cam.FPS}} {
		if o.v != 0 {
			*o.dst = o.v
		}
	}
	if *user != "" {
		cam.Username = *user
	}
	if p := env.Getenv(cameraPasswordEnv); p != "" {
		cam.Password = config.Secret(p)
	}
	kind, target, err := source.Parse(src)
	if err != nil {
		fmt.Fprintln(env.Stderr, "outpost probe camera:", err)
		return agent.ExitUsage
	}
	if *dur < 0 || (*dur == 0 && *snapshot != "") {
		fmt.Fprintln(env.Stderr, "outpost probe camera: --for must be positive to capture (a snapshot needs a capture)")
		return agent.ExitUsage
	}

	w := env.Stdout
	if kind == source.V4L2 {
		d, err := v4l2.Describe(target)
		if err != nil {
			fmt.Fprintln(env.Stderr, "outpost probe camera:", err)
			return agent.ExitFailure
		}
		fmt.Fprint(w, d)
	}
	if *dur == 0 {
		return agent.ExitOK
	}
	return probeCapture(ctx, env, cam, src, *dur, *snapshot)
}

// probeCapture opens the camera, captures for dur and reports what came.
func probeCapture(ctx context.Context, env Env, cam config.Camera, src string, dur time.Duration, snapshot string) int {
	w := env.Stdout
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	spec := camopen.Spec{
		Source: src, Width: cam.Width, Height: cam.Height, FPS: cam.FPS,
		Username: cam.Username, Password: string(cam.Password),
		FrameTimeout: cam.FrameTimeout.D(), Buffers: cam.Buffers, YUYVFPS: cam.YUYVFPS,
		Sim: camopen.SimSpec{MotionEvery: cam.Sim.MotionEvery.D(), MotionDuration: cam.Sim.MotionDuration.D(), Quality: cam.Sim.Quality},
	}
	fmt.Fprintf(w, "Capturing from %s for %v ...\n", source.Redact(src), dur)
	c, err := camopen.Open(ctx, spec, clock.Real{}, log)
	if err != nil {
		fmt.Fprintln(env.Stderr, "outpost probe camera:", err)
		return agent.ExitFailure
	}
	defer c.Close()

	cctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	start := time.Now()
	var frames, bytes int
	var first camera.Frame
	var lastAt time.Time
	var last error
	for {
		f, err := c.Next(cctx)
		if err != nil {
			if cctx.Err() == nil && ctx.Err() == nil {
				last = err
				fmt.Fprintln(env.Stderr, "outpost probe camera:", err)
				if errors.Is(err, camera.ErrNeedsAttention) {
					break
				}
				continue
			}
			break
		}
		if frames == 0 {
			first = f
		}
		lastAt = f.Time
		frames++
		bytes += len(f.Data)
	}
	elapsed := time.Since(start)
	var h camera.Health
	if hl, ok := c.(camera.Healther); ok {
		h = hl.Health()
	}
	if frames == 0 {
		fmt.Fprintf(w, "No frames in %v: nothing would be recorded.\n", elapsed.Round(time.Millisecond))
		return agent.ExitFailure
	}
	fmt.Fprintf(w, "Mode:     %s\n", h.Mode)
	fmt.Fprintf(w, "Picture:  %dx%d\n", first.Width, first.Height)
	rate := 0.0
	if span := lastAt.Sub(first.Time); frames > 1 && span > 0 {
		rate = float64(frames-1) / span.Seconds()
	}
	fmt.Fprintf(w, "Received: %d frames in %v, %.1f fps, %d KiB a frame on average\n", frames, elapsed.Round(time.Millisecond), rate, bytes/frames>>10)
	fmt.Fprintf(w, "Dropped:  %d damaged or oversized; %d reconnections\n", h.Dropped, h.Reconnects)
	if snapshot != "" {
		img, err := mjpeg.WithHuffmanTables(first.Data)
		if err == nil {
			err = writeFileAtomic(snapshot, img)
		}
		if err != nil {
			fmt.Fprintln(env.Stderr, "outpost probe camera: snapshot:", err)
			return agent.ExitFailure
		}
		fmt.Fprintf(w, "Snapshot: %s (%dx%d, %d KiB)\n", snapshot, first.Width, first.Height, len(img)>>10)
	}
	if last != nil {
		return agent.ExitFailure
	}
	return agent.ExitOK
}

// writeFileAtomic writes b to path through a temporary file, so that a
// failed write leaves no half a picture.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
