package agent

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/hal/modem"
	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// Fault kinds. They are stable strings: control rooms act on them.
const (
	FaultCameraNoFrames    = "camera_no_frames"
	FaultCameraFrozen      = "camera_frozen"
	FaultCameraBlack       = "camera_black"
	FaultCameraUniform     = "camera_uniform"
	FaultSceneChanged      = "camera_scene_changed"
	FaultOutOfFocus        = "camera_out_of_focus"
	FaultRetentionShort    = "retention_short"
	FaultBatteryLow        = "battery_low"
	FaultBatteryCritical   = "battery_critical"
	FaultSolarNotCharging  = "solar_not_charging"
	FaultPowerUnreadable   = "power_unreadable"
	FaultChargeController  = "charge_controller_error"
	FaultTemperature       = "temperature_high"
	FaultWeakSignal        = "signal_weak"
	FaultNotRegistered     = "modem_not_registered"
	FaultDataBudget        = "data_budget"
	FaultClockStepped      = "clock_stepped"
	FaultClockUnsynced     = "clock_unsynchronised"
	FaultComponentFailing  = "component_failing"
	FaultMemory            = "memory_high"
	FaultTamper            = "tamper_open"
	storageFaultKindPrefix = "storage_"
)

// PictureCondition is what a picture check reports: a condition of the
// camera's picture (frozen, black, ...) with its reason.
type PictureCondition struct {
	Kind            string // one of the camera fault kinds
	Active          bool
	Message, Action string
	Score           float64
}

// MonitorInputs are what the fault detectors look at. Nil fields leave
// their detectors out.
type MonitorInputs struct {
	// LastFrame is the capture time of the newest frame.
	LastFrame func() time.Time
	// Picture reports the picture checks' conditions (frozen, black,
	// scene changed, out of focus), each with its own hysteresis.
	Picture func() []PictureCondition
	// StoreFaults and StoreStats are the footage store's.
	StoreFaults func() []footage.Fault
	StoreStats  func() footage.Stats
	// Power and Signal are the newest readings (and their errors).
	Power  func() (power.Reading, error)
	Signal func() (modem.Signal, error)
	// System reads the board's temperature.
	System func() SystemStats
	// Policy is the data budget's policy.
	Policy func() wire.DataPolicy
	// Statuses are the supervised components'.
	Statuses func() []Status
	// Tamper reports whether the cabinet is open (known false: no switch).
	Tamper func() (open, known bool)
	// Synced reports whether the kernel says the clock is synchronised
	// (known false: cannot tell).
	Synced func() (synced, known bool)
	// PowerMode is the power policy's mode.
	PowerMode func() string
}

// Monitor runs the fault detectors: every check interval it looks at the
// unit's camera, storage, power, link, clock and components, and raises or
// clears faults with hysteresis. It is a supervised component.
type Monitor struct {
	cfg    config.Faults
	ret    config.Retention
	in     MonitorInputs
	faults *Faults
	clk    clock.Clock
	log    *slog.Logger

	mu      sync.Mutex
	holds   map[string]*hold
	health  *healthTracker
	started time.Time
	// For the clock step detector: the wall clock and the monotonic
	// clock at the last check, and the monotonic clock (time.Now's
	// monotonic reading; tests give their own).
	lastWall, lastMono time.Time
	mono               func() time.Time
}

// NewMonitor returns the fault detectors.
func NewMonitor(cfg config.Faults, ret config.Retention, in MonitorInputs, faults *Faults, clk clock.Clock, log *slog.Logger) *Monitor {
	return &Monitor{cfg: cfg, ret: ret, in: in, faults: faults, clk: clk, log: log.With("component", "monitor"),
		holds: map[string]*hold{}, health: newHealthTracker(cfg.ComponentFailing.D(), 0), mono: time.Now}
}

// Name implements Component.
func (m *Monitor) Name() string { return "monitor" }

// Run checks every interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.started.IsZero() {
		m.started = m.clk.Now()
	}
	m.mu.Unlock()
	t := m.clk.NewTicker(m.cfg.CheckInterval.D())
	defer t.Stop()
	for {
		m.Check(m.clk.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// h returns the hold of kind, made with the given times at first use.
func (m *Monitor) h(kind string, raiseAfter, clearAfter time.Duration) *hold {
	h := m.holds[kind]
	if h == nil {
		h = &hold{raiseAfter: raiseAfter, clearAfter: clearAfter}
		m.holds[kind] = h
	}
	return h
}

// Check runs every detector once at now.
func (m *Monitor) Check(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started.IsZero() {
		m.started = now
	}
	m.checkCamera(now)
	m.checkStorage(now)
	m.checkPower(now)
	m.checkLink(now)
	m.checkClock(now)
	m.checkAgent(now)
}

func (m *Monitor) checkCamera(now time.Time) {
	if m.in.LastFrame != nil {
		last := m.in.LastFrame()
		ref := last
		if ref.IsZero() {
			ref = m.started
		}
		gap := now.Sub(ref)
		m.h(FaultCameraNoFrames, 0, 10*time.Second).apply(m.faults, FaultCameraNoFrames, gap >= m.cfg.CameraNoFrames.D(), now, func() {
			what := "no frame since " + ref.UTC().Format(time.RFC3339)
			if last.IsZero() {
				what = "no frame since the agent started"
			}
			m.faults.Raise(FaultCameraNoFrames, wire.FaultCritical, fmt.Sprintf("camera: %s: nothing is being recorded", what),
				"check the camera's cable and power (outpost probe camera on site); the agent keeps reopening it", nil)
		}, "camera: frames are arriving again")
	}
	if m.in.Picture == nil {
		return
	}
	for _, c := range m.in.Picture() {
		if c.Active {
			sev := wire.FaultWarning
			if c.Kind == FaultCameraFrozen || c.Kind == FaultCameraBlack || c.Kind == FaultCameraUniform {
				sev = wire.FaultCritical
			}
			m.faults.Raise(c.Kind, sev, c.Message, c.Action, map[string]any{"score": round2(c.Score)})
		} else {
			m.faults.Clear(c.Kind, "camera: "+strings.TrimPrefix(strings.ReplaceAll(c.Kind, "_", " "), "camera ")+" cleared")
		}
	}
}

func (m *Monitor) checkStorage(now time.Time) {
	if m.in.StoreFaults != nil {
		seen := map[string]bool{}
		for _, f := range m.in.StoreFaults() {
			kind := storageFaultKindPrefix + f.Code
			seen[kind] = true
			sev := wire.FaultWarning
			switch f.Code {
			case footage.FaultDiskFull, footage.FaultStorage, footage.FaultHoldsUnreadable:
				sev = wire.FaultCritical
			}
			m.faults.Raise(kind, sev, "storage: "+f.Message, "see the message; on site, outpost footage verify checks the card", nil)
		}
		for _, f := range m.faults.List() {
			if strings.HasPrefix(f.Kind, storageFaultKindPrefix) && !seen[f.Kind] {
				m.faults.Clear(f.Kind, "storage: "+strings.TrimPrefix(f.Kind, storageFaultKindPrefix)+" cleared")
			}
		}
	}
	if m.in.StoreStats != nil {
		st := m.in.StoreStats()
		target := m.ret.MaxAge.D()
		proj := st.ProjectedRetentionDays
		short := proj > 0 && proj*24*float64(time.Hour) < 0.9*float64(target)
		m.h(FaultRetentionShort, time.Hour, time.Hour).apply(m.faults, FaultRetentionShort, short, now, func() {
			m.faults.Raise(FaultRetentionShort, wire.FaultWarning,
				fmt.Sprintf("storage: %.0f days of footage at the current rate; target %s", proj, days(target)),
				"fit a larger card, lower the picture size or frame rate, or record in events mode", map[string]any{"projected_days": round2(proj)})
		}, "storage: projected retention meets the target again")
	}
}

func (m *Monitor) checkPower(now time.Time) {
	if m.in.Power != nil {
		r, err := m.in.Power()
		m.h(FaultPowerUnreadable, 10*time.Minute, time.Minute).apply(m.faults, FaultPowerUnreadable, err != nil, now, func() {
			m.faults.Raise(FaultPowerUnreadable, wire.FaultWarning, fmt.Sprintf("power: no reading from the charge controller or monitor: %v", err),
				"check its cable (outpost probe power on site): the battery is not being watched", nil)
		}, "power: readings are back")
		if err == nil {
			m.h(FaultChargeController, time.Minute, 5*time.Minute).apply(m.faults, FaultChargeController, r.ControllerError != "", now, func() {
				m.faults.Raise(FaultChargeController, wire.FaultWarning, "power: the charge controller reports an error: "+r.ControllerError,
					"see the controller's manual for the error (VictronConnect shows it); check the battery and panel wiring", nil)
			}, "power: the charge controller's error has cleared")
			// Daylight: the panel gives nothing between 10:00 and 14:00
			// local time for an hour.
			lt := now.Local()
			midday := lt.Hour() >= 10 && lt.Hour() < 14
			dark := r.PanelW != nil && *r.PanelW < 1
			h := m.h(FaultSolarNotCharging, time.Hour, 30*time.Minute)
			if midday || h.active {
				h.apply(m.faults, FaultSolarNotCharging, midday && dark, now, func() {
					m.faults.Raise(FaultSolarNotCharging, wire.FaultWarning, "power: the solar panel has given nothing for an hour in the middle of the day",
						"check the panel's cable and fuse, and that it is not shaded or dirty", nil)
				}, "power: the solar panel is charging again")
			}
		}
	}
	if m.in.PowerMode != nil {
		mode := m.in.PowerMode()
		switch mode {
		case ModeCritical, ModeShutdown:
			m.faults.Clear(FaultBatteryLow, "power: battery low superseded by critical")
			m.faults.Raise(FaultBatteryCritical, wire.FaultCritical, "power: battery critical: the unit keeps only its heartbeat; footage recording stopped to save the battery",
				"charge or replace the battery; check the solar panel", nil)
		case ModeEco:
			m.faults.Clear(FaultBatteryCritical, "power: battery no longer critical")
			m.faults.Raise(FaultBatteryLow, wire.FaultWarning, "power: battery low: the unit saves power (lower frame rate, events-only recording, less telemetry)",
				"check the solar panel and the battery before it becomes critical", nil)
		default:
			m.faults.Clear(FaultBatteryCritical, "power: battery no longer critical")
			m.faults.Clear(FaultBatteryLow, "power: battery recovered")
		}
	}
	if m.in.System != nil {
		st := m.in.System()
		hot := st.CPUTempC != nil && *st.CPUTempC >= m.cfg.TemperatureC
		cool := st.CPUTempC != nil && *st.CPUTempC < m.cfg.TemperatureC-5
		h := m.h(FaultTemperature, time.Minute, 5*time.Minute)
		if hot || cool || h.active {
			h.apply(m.faults, FaultTemperature, hot || (h.active && !cool), now, func() {
				m.faults.Raise(FaultTemperature, wire.FaultWarning, fmt.Sprintf("board: above its limit of %.0f °C: it will slow down or stop", m.cfg.TemperatureC),
					"shade the enclosure or improve its ventilation", map[string]any{"cpu_temp_c": *st.CPUTempC})
			}, "board: temperature back to normal")
		}
	}
}

func (m *Monitor) checkLink(now time.Time) {
	if m.in.Signal != nil {
		s, err := m.in.Signal()
		known := err == nil
		unreg := known && !s.Registered
		m.h(FaultNotRegistered, m.cfg.UnregisteredFor.D(), time.Minute).apply(m.faults, FaultNotRegistered, unreg, now, func() {
			m.faults.Raise(FaultNotRegistered, wire.FaultCritical, "link: the modem is not registered on a network",
				"check the SIM (inserted, active, data plan) and the antenna", nil)
		}, "link: the modem is registered again")
		weak := known && s.Registered && s.RSRPdBm != nil && *s.RSRPdBm < m.cfg.WeakSignalDBm
		okAgain := known && s.RSRPdBm != nil && *s.RSRPdBm >= m.cfg.WeakSignalDBm+5
		h := m.h(FaultWeakSignal, m.cfg.WeakSignalFor.D(), 10*time.Minute)
		h.apply(m.faults, FaultWeakSignal, weak || (h.active && !okAgain), now, func() {
			m.faults.Raise(FaultWeakSignal, wire.FaultWarning, fmt.Sprintf("link: weak signal, RSRP below %.0f dBm", m.cfg.WeakSignalDBm),
				"move the unit or its antenna, or fit a higher-gain antenna: clips will be slow", map[string]any{"rsrp_dbm": *s.RSRPdBm})
		}, "link: signal strength is adequate again")
	}
	if m.in.Policy != nil {
		switch p := m.in.Policy(); p {
		case wire.PolicySaving, wire.PolicyExhausted:
			sev, msg := wire.FaultWarning, "link: over 80 % of this month's data budget used: the unit is saving data"
			if p == wire.PolicyExhausted {
				sev, msg = wire.FaultCritical, "link: this month's data budget is used up: telemetry only at its longest intervals"
			}
			m.faults.Raise(FaultDataBudget, sev, msg, "raise uplink.monthly_budget or the SIM's allowance, or pull fewer clips", map[string]any{"policy": string(p)})
		default:
			m.faults.Clear(FaultDataBudget, "link: data budget back to normal (a new month)")
		}
	}
}

func (m *Monitor) checkClock(now time.Time) {
	mono := m.mono()
	if !m.lastWall.IsZero() {
		// A wall clock that moved differently from the monotonic clock
		// was stepped (by NTP after a boot without an RTC, or by hand).
		step := now.Sub(m.lastWall) - mono.Sub(m.lastMono)
		if step < 0 {
			step = -step
		}
		if step >= m.cfg.ClockStep.D() {
			m.faults.Raise(FaultClockStepped, wire.FaultWarning, fmt.Sprintf("clock: stepped by %s at %s: footage times around it may be off", step.Round(time.Second), now.UTC().Format(time.RFC3339)),
				"check the unit's time source (NTP, the modem's network time); fit an RTC if the board has none", map[string]any{"step_s": step.Seconds()})
			m.h(FaultClockStepped, 0, 10*time.Minute).update(true, now)
		}
	}
	m.lastWall, m.lastMono = now, mono
	if h := m.holds[FaultClockStepped]; h != nil && h.active {
		if active, _ := h.update(false, now); !active {
			m.faults.Clear(FaultClockStepped, "clock: steady for ten minutes")
		}
	}
	if m.in.Synced != nil {
		synced, known := m.in.Synced()
		m.h(FaultClockUnsynced, m.cfg.UnsyncedFor.D(), time.Minute).apply(m.faults, FaultClockUnsynced, known && !synced, now, func() {
			m.faults.Raise(FaultClockUnsynced, wire.FaultWarning, "clock: not synchronised to network time: footage times cannot be trusted as evidence",
				"check that NTP (systemd-timesyncd) reaches a server over the cellular link", nil)
		}, "clock: synchronised")
	}
}

func (m *Monitor) checkAgent(now time.Time) {
	if m.in.Statuses != nil {
		failing := m.health.update(m.in.Statuses(), now)
		m.h(FaultComponentFailing, 0, 0).apply(m.faults, FaultComponentFailing, len(failing) > 0, now, func() {
			m.faults.Raise(FaultComponentFailing, wire.FaultCritical, fmt.Sprintf("agent: %s keeps failing (for %s): see health for its last error", strings.Join(failing, ", "), m.cfg.ComponentFailing.D()),
				"read the component's last error in health; the agent will be restarted by its watchdog", map[string]any{"components": failing})
		}, "agent: every component is running")
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	high := int64(ms.HeapInuse) > int64(m.cfg.MemoryMax)
	m.h(FaultMemory, 5*time.Minute, 5*time.Minute).apply(m.faults, FaultMemory, high, now, func() {
		m.faults.Raise(FaultMemory, wire.FaultWarning, fmt.Sprintf("agent: heap above its limit of %d MiB: it may be leaking", int64(m.cfg.MemoryMax)>>20),
			"report it with the unit's log; a restart of the agent frees it", map[string]any{"heap_mib": ms.HeapInuse >> 20})
	}, "agent: memory use back to normal")
	if m.in.Tamper != nil {
		open, known := m.in.Tamper()
		m.h(FaultTamper, 0, 0).apply(m.faults, FaultTamper, known && open, now, func() {
			m.faults.Raise(FaultTamper, wire.FaultCritical, "cabinet: the door is open (tamper switch)",
				"if no one from the team is on site, treat it as tampering: check the footage", nil)
		}, "cabinet: the door is closed")
	}
}
