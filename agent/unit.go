package agent

import (
	"os"

	"context"
	"errors"
	"github.com/outpost-cctv/outpost/hal/modem"
	"github.com/outpost-cctv/outpost/hal/power"
	"log/slog"
	"time"

	"github.com/outpost-cctv/outpost/agent/audit"
	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/agent/identity"
	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/footage/motion"
	"github.com/outpost-cctv/outpost/footage/scene"
	"github.com/outpost-cctv/outpost/hal/camera"
	camopen "github.com/outpost-cctv/outpost/hal/camera/open"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/internal/version"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// Unit is one Outpost unit's agent, built from a Config.
type Unit struct {
	cfg    config.Config
	log    *slog.Logger
	clk    clock.Clock
	sup    *Supervisor
	Latest *Latest
	// Recorder keeps the footage.
	Recorder  *footage.Recorder
	session   *uplink.Session
	telemetry *Telemetry
	health    lockedHealth
	faults    *Faults
	monitor   *Monitor
	access    *access
}

// NewUnit builds the components described by cfg. It opens no device and
// no footage: that happens when Run starts the components. It reads the
// unit's evidence key and opens its audit trail, which Run closes.
func NewUnit(cfg config.Config, log *slog.Logger, clk clock.Clock) (*Unit, error) {
	return newUnit(cfg, log, clk, nil)
}

// newUnit is NewUnit for a unit whose configuration the control room may
// change through rc (nil: it may not).
func newUnit(cfg config.Config, log *slog.Logger, clk clock.Clock, rc *Runner) (*Unit, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clk == nil {
		clk = clock.Real{}
	}
	u := &Unit{cfg: cfg, log: log, clk: clk, Latest: &Latest{}, health: lockedHealth{t: newHealthTracker(0, 0)}}
	u.sup = NewSupervisor(log, SupervisorOptions{Clock: clk})
	boot := clk.Now()
	topics := wire.Topics{Prefix: cfg.Uplink.TopicPrefix, Unit: cfg.Unit.ID}

	var pw power.Sensor
	var md modem.Modem
	var err error
	if rc != nil {
		// The runner keeps the devices across restarts of the unit (a
		// simulated battery keeps its charge).
		pw, md, err = rc.devices(cfg)
	} else {
		pw, md, err = newDevices(cfg, clk, log)
	}
	if err != nil {
		return nil, err
	}

	// The recorder opens (and recovers) the footage store when it starts,
	// not here. Capture does not wait for it: the live picture and
	// telemetry keep working when storage is broken.
	// The evidence key signs the footage chain's heads and the manifests
	// of what the unit hands over; without one (not provisioned yet) the
	// unit records, unsigned.
	key, err := identity.Load(cfg.DataDir)
	if err != nil {
		log.Warn("footage will not be signed: clips go without an evidence manifest and the footage chain's heads are unsigned; run 'outpost provision' on the unit", "err", err)
		key = nil
	}
	fo := footage.OptionsFromConfig(cfg.Recording, cfg.Retention)
	fo.UnitID, fo.HeadEvery = cfg.Unit.ID, cfg.Privacy.SignEvery.D()
	fo.KeyFile = cfg.Privacy.EncryptionKeyFile
	if key != nil {
		fo.Signer = key
	}
	recorder, err := footage.NewRecorder(footage.Dir(cfg.DataDir), fo, log, clk)
	if err != nil {
		return nil, err
	}
	u.Recorder = recorder
	// The uplink and telemetry. The configuration the unit runs is
	// reported (secrets redacted) on config/reported and identified by its
	// hash in the status.
	report, cfgHash, err := cfg.Report()
	if err != nil {
		return nil, err
	}
	// Who may command the unit, and the audit trail of what was asked.
	acc, err := newAccess(cfg, clk, log)
	if err != nil {
		return nil, err
	}
	u.access = acc
	built := false
	defer func() {
		if !built {
			acc.Close() // the unit will not run to close it
		}
	}()
	var telemetry *Telemetry
	session := uplink.NewSession(log, uplink.Options{
		Commands: uplink.CommandOptions{Gate: acc, Observer: acc},
		Broker:   cfg.Uplink.Broker, Topics: topics, Username: cfg.Uplink.Username, Password: string(cfg.Uplink.Password),
		KeepAlive: cfg.Uplink.KeepAlive.D(), CAFile: cfg.Uplink.TLS.CA, CertFile: cfg.Uplink.TLS.Cert, KeyFile: cfg.Uplink.TLS.Key,
		Clock: clk, Dir: cfg.DataDir + "/uplink", OutboxSize: int64(cfg.Uplink.OutboxSize),
		DrainWindow: cfg.Uplink.OutboxDrainWindow, DrainRate: int64(cfg.Uplink.OutboxDrainRate), MonthlyBudget: int64(cfg.Uplink.MonthlyBudget),
		Online: func() wire.Status {
			return wire.Status{
				Header: wire.NewHeader(clk.Now()), State: wire.Online, Version: version.Version, Boot: boot.UTC().Truncate(time.Millisecond),
				Site: cfg.Unit.Site, Purpose: cfg.Unit.Purpose, DPIARef: cfg.Unit.DPIARef,
				ConfigVersion: cfgHash, Operator: telemetry.Operator(),
			}
		},
		ConfigReported: func() wire.ConfigReported {
			if rc != nil {
				return rc.reported()
			}
			return wire.ConfigReported{Header: wire.NewHeader(clk.Now()), Hash: cfgHash, Result: wire.ConfigApplied,
				AppliedAt: boot.UTC().Truncate(time.Millisecond), Config: report}
		},
	})
	u.session = session
	if acc.trail != nil {
		session.Handle(audit.ListCommand, acc.trail.ListHandler())
	}
	send := func(ctx context.Context, class uplink.Priority, e wire.Event) {
		if err := session.SendJSON(ctx, class, topics.Events(), e); err != nil {
			log.Warn("event not sent", "kind", e.Kind, "err", err)
		}
	}
	// The power mode and the faults outlive a unit the runner restarts.
	mode, faults := ModeNormal, NewFaults(clk, log, send)
	var onPower func(power.Reading, error)
	if rc != nil {
		if err := session.Subscribe(context.Background(), topics.ConfigDesired(), rc.onDesired); err != nil {
			return nil, err
		}
		session.Handle("config.history", rc.history)
		session.Handle("config.rollback", rc.rollback)
		mode, faults, onPower = rc.powerMode(), rc.faults, rc.observePower
	}
	u.faults = faults
	telemetry = NewTelemetry(log, session, TelemetryOptions{
		Clock: clk, Topics: topics, Power: pw, Modem: md, Health: u.sup.Statuses,
		Link: session.Link, Policy: session.DataPolicy, Boot: boot, Version: version.Version,
		Storage: func() (StorageStats, bool) {
			if recorder.Store() == nil {
				return StorageStats{}, false
			}
			st := recorder.Stats()
			return StorageStats{
				DiskTotalBytes: st.DiskTotal, DiskFreeBytes: st.DiskFree, FootageBytes: st.BytesUsed,
				HeldBytes: st.HeldBytes, OldestFootage: st.Oldest, ProjectedRetentionDays: st.ProjectedRetentionDays,
				RetentionDays: cfg.Retention.MaxAge.D().Hours() / 24,
			}, true
		},
		Streams: streams(cfg.Telemetry),
		OnPower: onPower, Faults: faults.List, PowerMode: func() string { return mode },
	})
	u.telemetry = telemetry
	HandleUnitCommands(session, telemetry, boot)
	transfers := newTransfers(log, cfg, session, recorder, u.Latest, clk, key)
	handleEvents(session, recorder, clk.Now)
	inputs := MonitorInputs{
		StoreFaults: recorder.Faults, StoreStats: recorder.Stats,
		Power: telemetry.LastPower, Signal: telemetry.LastSignal,
		System: func() SystemStats { return ReadSystem(os.DirFS("/")) },
		Policy: session.DataPolicy, Statuses: u.sup.Statuses, Synced: clockSynced,
		PowerMode: func() string { return mode },
	}
	tr := newTriggers(cfg.Motion, recorder.Trigger)
	type dep struct {
		c    Component
		deps []string
	}
	comps := []dep{{recorder, nil}, {session, nil}}
	// In critical mode the camera is off: the battery's last energy goes
	// to the heartbeat; what was recorded is kept.
	if mode != ModeCritical && mode != ModeShutdown {
		var detector *motion.Sink
		if tr.detects() {
			if detector, err = newMotion(log, clk, session, topics, cfg.Motion, tr, func() bool { return mode == ModeNormal }); err != nil {
				return nil, err
			}
		}
		src := openCamera(cfg, clk, log)
		if cfg.Camera.Source == "sim" {
			inj := &faultInjector{}
			session.Handle("sim.camera", inj.handle)
			src = inj.wrap(src)
		}
		pm, err := NewPrivacyMask(cfg.Privacy.Masks, cfg.Camera.Width, cfg.Camera.Height)
		if err != nil {
			return nil, err
		}
		src = maskCamera(src, pm, clk, log.With("component", "camera"))
		// The picture checks: frozen, black or uniform, the view moved from
		// the reference outpost check took, out of focus.
		pictures, err := scene.NewSink(log, sceneConfig(cfg.Faults), loadReference(cfg.DataDir, log), func(scene.Change) {})
		if err != nil {
			return nil, err
		}
		sinks := []FrameSink{u.Latest, recorder, pictures}
		if detector != nil {
			sinks = append(sinks, detector)
			comps = append(comps, dep{detector, nil})
		}
		capture := NewCapture(log, src, sinks...)
		inputs.LastFrame, inputs.Picture = capture.LastFrame, pictureConditions(pictures)
		comps = append(comps, dep{capture, nil}, dep{pictures, nil})
	}
	if pins := NewPins(cfg.GPIO, boardLookup(log), clk, log, func(_ string, at time.Time) { tr.pirActive(at) }, send); pins != nil {
		session.Handle("ir", pins.handleIR)
		inputs.Tamper = pins.TamperOpen
		comps = append(comps, dep{pins, nil})
	}
	if cfg.Watchdog.Device != "" {
		comps = append(comps, dep{&HardwareWatchdog{cfg: cfg.Watchdog, clk: clk, log: log.With("component", "watchdog"), healthy: u.healthy}, nil})
	}
	comps = append(comps, dep{newOTA(cfg, log, clk, session, topics, inputs, send), []string{"uplink"}})
	u.monitor = NewMonitor(cfg.Faults, cfg.Retention, inputs, faults, clk, log)
	comps = append(comps, dep{telemetry, []string{"uplink"}}, dep{transfers, []string{"uplink", "recorder"}}, dep{u.monitor, []string{"uplink"}})
	for _, c := range comps {
		if err := u.sup.Add(c.c, c.deps...); err != nil {
			return nil, err
		}
	}
	built = true
	return u, nil
}

func streams(t config.Telemetry) Streams {
	st := func(s config.Stream) StreamTiming { return StreamTiming{s.Interval.D(), s.MaxInterval.D()} }
	return Streams{Power: st(t.Power), Signal: st(t.Signal), System: st(t.System), Storage: st(t.Storage), Link: st(t.Link)}
}

// retime takes the telemetry timings of cfg in place.
func (u *Unit) retime(cfg config.Config) {
	u.telemetry.Retime(streams(cfg.Telemetry))
}

// Statuses reports every component's state.
func (u *Unit) Statuses() []Status { return u.sup.Statuses() }

// Run runs the unit until ctx is cancelled, then shuts it down within the
// configured bound. It returns ErrShutdownTimeout if that bound is missed.
func (u *Unit) Run(ctx context.Context) error {
	u.log.Info("starting", "unit", u.cfg.Unit.ID, "version", version.Version, "broker", u.cfg.Uplink.Broker, "camera", u.cfg.Camera.Source)
	defer u.access.Close()
	return u.sup.Run(ctx, u.cfg.ShutdownTimeout.D())
}

// openCamera returns the function capture calls to open the configured
// camera at each (re)start. Every source it opens shares one health meter,
// so reconnections and the gap of an outage are counted across reopenings.
func openCamera(cfg config.Config, clk clock.Clock, log *slog.Logger) func(ctx context.Context) (camera.Source, error) {
	cam := cfg.Camera
	spec := camopen.Spec{
		Source: cam.Source, Width: cam.Width, Height: cam.Height, FPS: cam.FPS,
		Username: cam.Username, Password: string(cam.Password),
		FrameTimeout: cam.FrameTimeout.D(), MaxFrameSize: int(cfg.Recording.MaxFrameSize),
		Buffers: cam.Buffers, YUYVFPS: cam.YUYVFPS,
		Sim: camopen.SimSpec{MotionEvery: cam.Sim.MotionEvery.D(), MotionDuration: cam.Sim.MotionDuration.D(), Quality: cam.Sim.Quality},
	}
	spec.Meter = camopen.NewMeter(spec, clk)
	log = log.With("component", "camera")
	return func(ctx context.Context) (camera.Source, error) { return camopen.Open(ctx, spec, clk, log) }
}

// ExitCode maps Run's result to the binary's exit code.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrShutdownTimeout):
		return ExitTimeout
	case errors.Is(err, ErrPowerShutdown):
		return ExitPowerShutdown
	}
	var ce config.Errors
	if errors.As(err, &ce) {
		return ExitUsage
	}
	return ExitFailure
}

// healthy reports whether the supervisor answers and no component has been
// failing for too long: the hardware watchdog is fed only while it is.
func (u *Unit) healthy() bool {
	u.health.mu.Lock()
	defer u.health.mu.Unlock()
	return len(u.health.t.update(u.sup.Statuses(), u.clk.Now())) == 0
}
