package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/hal/camera"
	camsim "github.com/outpost-cctv/outpost/hal/camera/sim"
	"github.com/outpost-cctv/outpost/hal/modem"
	modemsim "github.com/outpost-cctv/outpost/hal/modem/sim"
	"github.com/outpost-cctv/outpost/hal/power"
	powersim "github.com/outpost-cctv/outpost/hal/power/sim"
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
}

// NewUnit builds the components described by cfg. It opens no device and
// touches no file: that happens when Run starts the components.
func NewUnit(cfg config.Config, log *slog.Logger, clk clock.Clock) (*Unit, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clk == nil {
		clk = clock.Real{}
	}
	u := &Unit{cfg: cfg, log: log, clk: clk, Latest: &Latest{}}
	u.sup = NewSupervisor(log, SupervisorOptions{Clock: clk})
	boot := clk.Now()
	topics := wire.Topics{Prefix: cfg.Uplink.TopicPrefix, Unit: cfg.Unit.ID}

	pw, err := newPower(cfg, clk)
	if err != nil {
		return nil, err
	}
	md, err := newModem(cfg, clk)
	if err != nil {
		return nil, err
	}

	capture := NewCapture(log, func(ctx context.Context) (camera.Source, error) { return openCamera(cfg, clk) }, u.Latest)
	session := uplink.NewSession(log, uplink.Options{
		Broker: cfg.Uplink.Broker, Topics: topics, Username: cfg.Uplink.Username, Password: string(cfg.Uplink.Password),
		KeepAlive: cfg.Uplink.KeepAlive.D(), CAFile: cfg.Uplink.TLS.CA, CertFile: cfg.Uplink.TLS.Cert, KeyFile: cfg.Uplink.TLS.Key,
		Clock: clk,
		Online: func() wire.Status {
			return wire.Status{
				Header: wire.NewHeader(clk.Now()), State: wire.Online, Version: version.Version, Boot: boot.UTC().Truncate(time.Millisecond),
				Site: cfg.Unit.Site, Purpose: cfg.Unit.Purpose, DPIARef: cfg.Unit.DPIARef,
			}
		},
	})
	telemetry := NewTelemetry(log, session, TelemetryOptions{
		Clock: clk, Topics: topics, Power: pw, Modem: md, Health: u.sup.Statuses,
		PowerEvery: cfg.Telemetry.Power.Interval.D(), SignalEvery: cfg.Telemetry.Signal.Interval.D(),
	})
	for _, c := range []struct {
		c    Component
		deps []string
	}{
		{session, nil},
		{capture, nil},
		{telemetry, []string{"uplink"}},
	} {
		if err := u.sup.Add(c.c, c.deps...); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// Statuses reports every component's state.
func (u *Unit) Statuses() []Status { return u.sup.Statuses() }

// Run runs the unit until ctx is cancelled, then shuts it down within the
// configured bound. It returns ErrShutdownTimeout if that bound is missed.
func (u *Unit) Run(ctx context.Context) error {
	u.log.Info("starting", "unit", u.cfg.Unit.ID, "version", version.Version, "broker", u.cfg.Uplink.Broker, "camera", u.cfg.Camera.Source)
	return u.sup.Run(ctx, u.cfg.ShutdownTimeout.D())
}

func openCamera(cfg config.Config, clk clock.Clock) (camera.Source, error) {
	switch cfg.Camera.Source {
	case "sim":
		return camsim.New(camsim.Config{
			Width: cfg.Camera.Width, Height: cfg.Camera.Height, FPS: cfg.Camera.FPS,
			MotionEvery: cfg.Camera.Sim.MotionEvery.D(), MotionDuration: cfg.Camera.Sim.MotionDuration.D(),
			Quality: cfg.Camera.Sim.Quality,
		}, clk)
	}
	return nil, fmt.Errorf("camera: source %q is not supported", cfg.Camera.Source)
}

func newPower(cfg config.Config, clk clock.Clock) (power.Sensor, error) {
	if cfg.Power.Source != "sim" {
		return nil, fmt.Errorf("power: source %q is not supported", cfg.Power.Source)
	}
	s := cfg.Power.Sim
	return powersim.New(powersim.Config{CapacityWh: s.CapacityWh, PanelPeakW: s.PanelPeakW, LoadW: s.LoadW, InitialSOC: s.InitialSOC, TimeScale: s.TimeScale}, clk)
}

func newModem(cfg config.Config, clk clock.Clock) (modem.Modem, error) {
	if cfg.Modem.Source != "sim" {
		return nil, fmt.Errorf("modem: source %q is not supported", cfg.Modem.Source)
	}
	s := cfg.Modem.Sim
	return modemsim.New(modemsim.Config{
		RSRPdBm: s.RSRPdBm, RSRQdB: -11, SINRdB: 8,
		DropoutEvery: s.DropoutEvery.D(), DropoutDuration: s.DropoutDuration.D(), Seed: uint64(clk.Now().UnixNano()),
	}, clk)
}

// ExitCode maps Run's result to the binary's exit code.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrShutdownTimeout):
		return ExitTimeout
	}
	var ce config.Errors
	if errors.As(err, &ce) {
		return ExitUsage
	}
	return ExitFailure
}
