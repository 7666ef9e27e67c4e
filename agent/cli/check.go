package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/outpost-cctv/outpost/agent"
	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/footage/mask"
	"github.com/outpost-cctv/outpost/footage/motion/jpegdc"
	"github.com/outpost-cctv/outpost/hal/camera"
	camopen "github.com/outpost-cctv/outpost/hal/camera/open"
	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/internal/atomicfile"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// Check verdicts.
const (
	checkPass = "PASS"
	checkWarn = "WARN"
	checkFail = "FAIL"
)

// checkLine is one line of the commissioning report.
type checkLine struct {
	Check   string         `json:"check"`
	Verdict string         `json:"verdict"`
	Message string         `json:"message"`
	Data    map[string]any `json:"data,omitempty"`
}

type checkReport struct {
	Unit    string      `json:"unit"`
	Time    time.Time   `json:"time"`
	Lines   []checkLine `json:"checks"`
	Pass    int         `json:"pass"`
	Warn    int         `json:"warn"`
	Fail    int         `json:"fail"`
	Verdict string      `json:"verdict"`
}

func (r *checkReport) add(check, verdict, format string, args ...any) *checkLine {
	r.Lines = append(r.Lines, checkLine{Check: check, Verdict: verdict, Message: fmt.Sprintf(format, args...)})
	return &r.Lines[len(r.Lines)-1]
}

func checkUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: outpost check [--config FILE] [--snapshot FILE.jpg] [--json]

The field engineer's commissioning report, in under two minutes: grabs a
picture and keeps it as the scene reference (the unit raises a fault when
its view later changes), measures brightness and sharpness, reads the
battery and the signal, connects to the control room's broker and times
the round trip, checks the clock, and measures the card's write speed and
the days of footage it will hold. Each line says PASS, WARN or FAIL in
plain words; the exit code is 1 when anything failed. It works with the
link down (it says so and checks the rest), and alongside a running agent
(it reads the agent's newest recorded frame when the camera is busy).

Flags:
`)
}

// checkCmd is `outpost check`.
func checkCmd(ctx context.Context, env Env, args []string) int {
	fs := newFlagSet("check", env)
	fs.Usage = func() { checkUsage(env.Stderr); fs.PrintDefaults() }
	cfgPath := fs.String("config", "/etc/outpost/outpost.yaml", "the unit's config file")
	snap := fs.String("snapshot", "outpost-check.jpg", "where to save the picture grabbed")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	writeMiB := fs.Int("write-test", 64, "MiB written to measure the card's speed (0: skip)")
	if fs.Parse(args) != nil {
		return agent.ExitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return agent.ExitUsage
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rep := &checkReport{Unit: cfg.Unit.ID, Time: time.Now().UTC().Truncate(time.Second)}
	frameBytes, fps := checkCamera(ctx, rep, cfg, *snap, log)
	checkPower(ctx, rep, cfg, log)
	checkSignal(ctx, rep, cfg, log)
	checkBroker(ctx, rep, cfg)
	checkClock(rep)
	checkStorage(rep, cfg, *writeMiB, frameBytes, fps)
	for _, l := range rep.Lines {
		switch l.Verdict {
		case checkPass:
			rep.Pass++
		case checkWarn:
			rep.Warn++
		default:
			rep.Fail++
		}
	}
	rep.Verdict = checkPass
	switch {
	case rep.Fail > 0:
		rep.Verdict = checkFail
	case rep.Warn > 0:
		rep.Verdict = checkWarn
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		w := env.Stdout
		fmt.Fprintf(w, "outpost check of unit %s at %s\n\n", rep.Unit, rep.Time.Local().Format("2006-01-02 15:04:05"))
		for _, l := range rep.Lines {
			fmt.Fprintf(w, "%-4s  %-9s %s\n", l.Verdict, l.Check, l.Message)
		}
		fmt.Fprintf(w, "\n%s: %d passed, %d warnings, %d failed\n", rep.Verdict, rep.Pass, rep.Warn, rep.Fail)
	}
	if rep.Fail > 0 {
		return agent.ExitFailure
	}
	return agent.ExitOK
}

// checkCamera grabs frames for a few seconds (or, when the camera is busy
// with the running agent, takes its newest recorded frame), saves one,
// measures it and keeps it as the scene reference. It returns the mean
// frame size and the frame rate seen, for the retention projection.
func checkCamera(ctx context.Context, rep *checkReport, cfg config.Config, snap string, log *slog.Logger) (int64, float64) {
	cam := cfg.Camera
	spec := camopen.Spec{
		Source: cam.Source, Width: cam.Width, Height: cam.Height, FPS: cam.FPS,
		Username: cam.Username, Password: string(cam.Password),
		FrameTimeout: cam.FrameTimeout.D(), MaxFrameSize: int(cfg.Recording.MaxFrameSize),
		Buffers: cam.Buffers, YUYVFPS: cam.YUYVFPS,
		Sim: camopen.SimSpec{MotionEvery: cam.Sim.MotionEvery.D(), MotionDuration: cam.Sim.MotionDuration.D(), Quality: cam.Sim.Quality},
	}
	var last camera.Frame
	var frames int
	var total int64
	var took time.Duration
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	src, err := camopen.Open(octx, spec, clock.Real{}, log)
	cancel()
	from := "the camera"
	if err == nil {
		start := time.Now()
		gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		for {
			f, err := src.Next(gctx)
			if err != nil {
				break
			}
			last, frames, total = f, frames+1, total+int64(len(f.Data))
		}
		cancel()
		took = time.Since(start)
		src.Close()
	} else {
		// The running agent holds the camera: its newest recorded frame
		// tells as much.
		if f, ferr := newestRecorded(ctx, cfg); ferr == nil && time.Since(f.Time) < 30*time.Second {
			last, frames, total, from = camera.Frame{Data: f.Data, Time: f.Time}, 1, int64(len(f.Data)), "the running agent's newest recording"
		} else {
			rep.add("camera", checkFail, "%s cannot be opened: %v", cam.Source, err)
			return 0, 0
		}
	}
	if frames == 0 {
		rep.add("camera", checkFail, "%s opened but sent no frame in 3 s: check its cable and power", cam.Source)
		return 0, 0
	}
	// The picture is kept on the unit: with the privacy masks, as the
	// agent records; and the engineer sees them in place.
	if pm, err := agent.NewPrivacyMask(cfg.Privacy.Masks, cam.Width, cam.Height); err != nil || pm != nil {
		var masked []byte
		if err == nil {
			masked, err = mask.NewMasker(pm).Apply(nil, last.Data)
		}
		if err != nil {
			rep.add("masks", checkFail, "the privacy masks cannot be applied to the camera's picture: %v", err)
			return 0, 0
		}
		last.Data = masked
		rep.add("masks", checkPass, "%d privacy mask(s) blanked in the picture saved to %s: check they cover what they must", len(cfg.Privacy.Masks), snap)
	}
	fps := 0.0
	if took > 0 && frames > 1 {
		fps = float64(frames) / took.Seconds()
	}
	l := rep.add("camera", checkPass, "%s: %d frames in %.1f s (%.1f fps), %s a frame", cam.Source, frames, took.Seconds(), fps, humanBytes(total/int64(frames)))
	if from != "the camera" {
		l.Message = fmt.Sprintf("%s is in use by the agent; %s is %s old", cam.Source, from, time.Since(last.Time).Round(time.Second))
	} else if fps < 0.8*float64(cam.FPS) {
		l.Verdict = checkWarn
		l.Message += fmt.Sprintf(": below the %d fps asked; a slow USB port, or the camera's own limit", cam.FPS)
	}
	if err := writeFileAtomic(snap, last.Data); err != nil {
		rep.add("picture", checkWarn, "could not save the picture to %s: %v", snap, err)
	}
	img, energy, err := jpegdc.DecodeEnergy(last.Data)
	if err != nil {
		rep.add("picture", checkFail, "the camera's picture cannot be read: %v", err)
		return total / int64(frames), fps
	}
	var sum, sq float64
	for _, p := range img.Pix {
		sum += float64(p)
		sq += float64(p) * float64(p)
	}
	n := float64(len(img.Pix))
	mean := sum / n
	sd := math.Sqrt(math.Max(sq/n-mean*mean, 0))
	sharp := energy.PerBlock()
	pl := rep.add("picture", checkPass, "brightness %.0f/255, contrast %.0f, sharpness %.0f; saved to %s: look at it", mean, sd, sharp, snap)
	pl.Data = map[string]any{"brightness": math.Round(mean), "contrast": math.Round(sd), "sharpness": math.Round(sharp)}
	switch {
	case mean < 20 && sd < 8:
		pl.Verdict, pl.Message = checkFail, fmt.Sprintf("the picture is black (brightness %.0f/255): lens covered, or no IR light at night", mean)
	case sd < 4:
		pl.Verdict, pl.Message = checkFail, fmt.Sprintf("the picture is uniform (contrast %.0f): lens covered or fogged", sd)
	case sharp < 20:
		pl.Verdict = checkWarn
		pl.Message += ": little fine detail, check the focus"
	}
	if pl.Verdict != checkFail {
		if err := saveReference(cfg, last); err != nil {
			rep.add("reference", checkWarn, "the scene reference could not be kept: %v", err)
		} else {
			rep.add("reference", checkPass, "this picture is the scene reference: the unit reports when its view changes from it")
		}
	}
	return total / int64(frames), fps
}

// newestRecorded reads the newest frame of the footage store.
func newestRecorded(ctx context.Context, cfg config.Config) (footage.Frame, error) {
	o := footage.DefaultOptions()
	o.ReadOnly, o.KeyFile = true, cfg.Privacy.EncryptionKeyFile
	s, err := footage.Open(footage.Dir(cfg.DataDir), o, nil, nil)
	if err != nil {
		return footage.Frame{}, err
	}
	defer s.Close()
	return s.Nearest(ctx, time.Now(), 30*time.Second)
}

func checkPower(ctx context.Context, rep *checkReport, cfg config.Config, log *slog.Logger) {
	sensor, err := agent.NewPower(cfg, clock.Real{}, log)
	if err == nil {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var r power.Reading
		r, err = sensor.Read(rctx)
		cancel()
		if err == nil {
			pol := cfg.Power.Policy
			switch {
			case r.SOCPercent != nil:
				verdict, words := batteryVerdict(*r.SOCPercent, pol.EcoSOC+pol.HysteresisSOC, pol.CriticalSOC+pol.HysteresisSOC)
				rep.add("battery", verdict, "%.0f %% charged, %s (%s): %s", *r.SOCPercent, num(r.BatteryV, "%.2f V"), orDash(r.ChargeState), words)
			case r.BatteryV != nil:
				verdict, words := batteryVerdict(*r.BatteryV, pol.EcoV+pol.HysteresisV, pol.CriticalV+pol.HysteresisV)
				rep.add("battery", verdict, "%.2f V (%s): %s", *r.BatteryV, orDash(r.ChargeState), words)
			default:
				rep.add("battery", checkWarn, "%s gives no battery level: the power policy cannot protect the battery", cfg.Power.Source)
			}
			if r.PanelW != nil {
				rep.add("solar", checkPass, "panel %s, %s", num(r.PanelV, "%.1f V"), num(r.PanelW, "%.0f W"))
			}
			return
		}
	}
	rep.add("battery", checkFail, "%s: %v", cfg.Power.Source, err)
}

// batteryVerdict judges a battery level against the levels the unit must
// stay above to leave normal mode (eco) and critical mode, hysteresis
// included: a unit left below them would not record as configured.
func batteryVerdict(v, eco, critical float64) (verdict, words string) {
	switch {
	case v < critical:
		return checkFail, "too low to leave the unit: charge or replace the battery"
	case v < eco:
		return checkWarn, "low: the unit will save power; check the panel"
	}
	return checkPass, "good"
}

func checkSignal(ctx context.Context, rep *checkReport, cfg config.Config, log *slog.Logger) {
	md, err := agent.NewModem(cfg, clock.Real{}, log)
	if err != nil {
		rep.add("signal", checkFail, "%s: %v", cfg.Modem.Source, err)
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	s, err := md.Signal(rctx)
	cancel()
	switch {
	case err != nil:
		rep.add("signal", checkFail, "%s: %v", cfg.Modem.Source, err)
	case !s.Registered:
		rep.add("signal", checkFail, "the modem is not registered on a network: check the SIM and the antenna")
	case s.RSRPdBm == nil:
		rep.add("signal", checkWarn, "registered on %s (%s), signal strength unknown", orDash(s.Operator), orDash(s.Tech))
	default:
		v := *s.RSRPdBm
		verdict, words := checkPass, s.Quality()
		switch {
		case v < -110:
			verdict, words = checkFail, "very poor: move the unit or the antenna"
		case v < -100:
			verdict, words = checkWarn, "poor: move the unit or the antenna if you can; clips will be slow"
		}
		l := rep.add("signal", verdict, "RSRP %.0f dBm on %s (%s): %s", v, orDash(s.Operator), orDash(s.Tech), words)
		l.Data = map[string]any{"rsrp_dbm": v}
	}
}

func checkBroker(ctx context.Context, rep *checkReport, cfg config.Config) {
	u := cfg.Uplink
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	conn, rtt, err := uplink.CheckLink(cctx, uplink.Options{
		Broker: u.Broker, Topics: wire.Topics{Prefix: u.TopicPrefix, Unit: cfg.Unit.ID},
		Username: u.Username, Password: string(u.Password), KeepAlive: u.KeepAlive.D(),
		CAFile: u.TLS.CA, CertFile: u.TLS.Cert, KeyFile: u.TLS.Key, ConnectTimeout: 15 * time.Second,
	})
	if err != nil {
		rep.add("broker", checkFail, "%s cannot be reached (the link is down; everything else was checked): %v", u.Broker, err)
		return
	}
	verdict := checkPass
	words := "good"
	if rtt > 2*time.Second {
		verdict, words = checkWarn, "slow: commands and clips will be sluggish"
	}
	l := rep.add("broker", verdict, "%s: connected in %s, round trip %s: %s", u.Broker, conn.Round(time.Millisecond), rtt.Round(100*time.Microsecond), words)
	l.Data = map[string]any{"connect_ms": conn.Milliseconds(), "round_trip_ms": rtt.Milliseconds()}
}

func checkClock(rep *checkReport) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	switch {
	case err != nil:
		rep.add("clock", checkWarn, "cannot tell whether the clock is synchronised: %v", err)
	case state == unix.TIME_ERROR:
		rep.add("clock", checkWarn, "%s, not synchronised to network time yet: footage times cannot be trusted until it is (check NTP)", time.Now().UTC().Format("2006-01-02 15:04:05 UTC"))
	default:
		rep.add("clock", checkPass, "%s, synchronised (estimated error %d µs)", time.Now().UTC().Format("2006-01-02 15:04:05 UTC"), tx.Esterror)
	}
}

// checkStorage measures the card: free space, write speed (a file of
// mib MiB written and synced), and the days of footage it will hold at
// the rate just seen.
func checkStorage(rep *checkReport, cfg config.Config, mib int, frameBytes int64, fps float64) {
	dir := cfg.DataDir
	if err := os.MkdirAll(dir, 0o750); err != nil {
		rep.add("storage", checkFail, "%s cannot be created: %v", dir, err)
		return
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		rep.add("storage", checkFail, "%s: %v", dir, err)
		return
	}
	total, free := int64(st.Blocks)*int64(st.Bsize), int64(st.Bavail)*int64(st.Bsize)
	if mib > 0 {
		speed, err := writeSpeed(dir, mib)
		switch {
		case err != nil:
			rep.add("storage", checkFail, "writing to %s failed: %v: a failing or read-only card", dir, err)
			return
		default:
			need := float64(frameBytes) * math.Max(fps, float64(cfg.Camera.FPS)) // bytes a second the recorder writes
			verdict := checkPass
			words := ""
			if need > 0 && speed < 3*need {
				verdict, words = checkWarn, fmt.Sprintf(": close to the %s/s the camera needs; use a faster (A1/V30) card", humanBytes(int64(need)))
			}
			l := rep.add("storage", verdict, "%s: %s free of %s, writes at %s/s%s", dir, humanBytes(free), humanBytes(total), humanBytes(int64(speed)), words)
			l.Data = map[string]any{"free_bytes": free, "total_bytes": total, "write_bytes_per_s": int64(speed)}
		}
	}
	if frameBytes <= 0 {
		return
	}
	rate := float64(frameBytes) * float64(cfg.Camera.FPS) // continuous recording at the configured rate
	// What footage may take: the quota, within the free space less the
	// minimum left free (footage already recorded counts as free: it is
	// what retention replaces).
	quota := math.Min(float64(free), float64(cfg.Retention.Quota.Of(total)))
	quota -= float64(cfg.Retention.MinFree.Of(total))
	days := math.Max(quota, 0) / rate / 86400
	target := cfg.Retention.MaxAge.D().Hours() / 24
	verdict, words := checkPass, "meets"
	if days < target {
		verdict, words = checkWarn, "is below"
	}
	mode := cfg.Recording.Mode
	prec := "%.0f"
	if days < 10 {
		prec = "%.1f"
	}
	l := rep.add("retention", verdict, "about "+prec+" days of %s footage at %s/s, which %s the %.0f-day target", days, mode, humanBytes(int64(rate)), words, target)
	if verdict == checkWarn && mode == config.ModeContinuous {
		l.Message += ": fit a larger card, lower the size or frame rate, or record in events mode"
	}
	l.Data = map[string]any{"projected_days": math.Round(days*10) / 10}
	checkHeld(rep, cfg, target)
	if kf := cfg.Privacy.EncryptionKeyFile; kf != "" {
		if key, err := footage.LoadKey(kf); err != nil {
			rep.add("encryption", checkFail, "footage is to be encrypted, but the key cannot be used: %v", err)
		} else {
			rep.add("encryption", checkPass, "footage encrypted at rest with key %s from %s: keep a copy of the key off the unit, or the footage cannot be read", footage.KeyID(key), kf)
		}
	}
}

// checkHeld reports the retention in force and the oldest footage the
// store holds, so that an auditor sees the rule kept.
func checkHeld(rep *checkReport, cfg config.Config, target float64) {
	o := footage.DefaultOptions()
	o.ReadOnly, o.KeyFile = true, cfg.Privacy.EncryptionKeyFile
	s, err := footage.Open(footage.Dir(cfg.DataDir), o, nil, nil)
	if err != nil {
		rep.add("footage", checkPass, "none yet (retention %.0f days in force)", target)
		return
	}
	defer s.Close()
	oldest, _ := s.Span()
	if oldest.IsZero() {
		rep.add("footage", checkPass, "none yet (retention %.0f days in force)", target)
		return
	}
	age := time.Since(oldest).Hours() / 24
	l := rep.add("footage", checkPass, "the oldest is from %s, %.1f days old, within the %.0f-day retention", oldest.UTC().Format("2006-01-02 15:04 UTC"), age, target)
	if age > target+1.0/24 {
		l.Verdict = checkWarn
		l.Message = fmt.Sprintf("the oldest is from %s, %.1f days old, past the %.0f-day retention: it is under an evidence hold (outpost footage holds), or retention is not running (see the agent's log)", oldest.UTC().Format("2006-01-02 15:04 UTC"), age, target)
	}
	l.Data = map[string]any{"retention_days": target, "oldest_days": math.Round(age*10) / 10}
}

// writeSpeed writes mib MiB to a temporary file in dir, syncs it, and
// returns the bytes a second.
func writeSpeed(dir string, mib int) (float64, error) {
	f, err := os.CreateTemp(dir, ".outpost-check-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 1<<20)
	rand.Read(buf) // incompressible, as footage is
	start := time.Now()
	for range mib {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return float64(mib<<20) / time.Since(start).Seconds(), nil
}

// saveReference keeps the picture as the scene reference of the unit, in
// its data directory, where the agent reads it at start.
func saveReference(cfg config.Config, f camera.Frame) error {
	b, err := agent.SceneReference(f)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(cfg.DataDir, agent.SceneReferenceFile), b, 0o640)
}
