// Package config is the agent's configuration: plain structs with YAML tags,
// documented defaults (configs/outpost.example.yaml is the reference), strict
// loading that rejects unknown or misspelt keys with their line, and
// Validate, which checks every field before any I/O and names the field path
// and what is allowed in each error.
package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera/source"
)

// Config is the whole agent configuration.
type Config struct {
	Unit      Unit      `yaml:"unit"`
	Log       Log       `yaml:"log"`
	DataDir   string    `yaml:"data_dir"`
	Camera    Camera    `yaml:"camera"`
	Recording Recording `yaml:"recording"`
	Motion    Motion    `yaml:"motion"`
	Retention Retention `yaml:"retention"`
	Uplink    Uplink    `yaml:"uplink"`
	Telemetry Telemetry `yaml:"telemetry"`
	Power     Power     `yaml:"power"`
	Modem     Modem     `yaml:"modem"`
	GPIO      GPIO      `yaml:"gpio"`
	Watchdog  Watchdog  `yaml:"watchdog"`
	Faults    Faults    `yaml:"faults"`
	OTA       OTA       `yaml:"ota"`
	Privacy   Privacy   `yaml:"privacy"`
	Security  Security  `yaml:"security"`
	// ShutdownTimeout bounds how long the agent takes to stop on SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// Unit is the unit's identity, reported to the control room.
type Unit struct {
	// ID becomes part of MQTT topics and certificate names: [a-z0-9-], 1-64.
	ID       string    `yaml:"id"`
	Site     string    `yaml:"site"`
	Location *Location `yaml:"location"`
	// Purpose is why the camera is there (Surveillance Camera Code).
	Purpose string `yaml:"purpose"`
	// DPIARef references the data protection impact assessment.
	DPIARef string `yaml:"dpia_ref"`
}

// Location is where the unit is mounted.
type Location struct {
	Lat         float64 `yaml:"lat"`
	Lon         float64 `yaml:"lon"`
	Description string  `yaml:"description"`
}

// Log configures the agent's own log.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Camera selects and configures the camera.
type Camera struct {
	// Source is the camera: sim (simulated), /dev/videoN or a stable
	// /dev/v4l/by-id/... path (V4L2), http(s)://... (an IP camera's MJPEG
	// stream) or file:PATH (a raw MJPEG file, replayed at FPS).
	Source string `yaml:"source"`
	Width  int    `yaml:"width"`
	Height int    `yaml:"height"`
	FPS    int    `yaml:"fps"`
	// Username and Password, for an IP camera that asks for them.
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// FrameTimeout: no frame for this long is reported as a fault and the
	// camera is reopened.
	FrameTimeout Duration `yaml:"frame_timeout"`
	// Buffers is how many driver buffers a V4L2 camera streams into.
	Buffers int `yaml:"buffers"`
	// YUYVFPS is the rate frames of a V4L2 camera without MJPEG are
	// encoded at (the encoding costs CPU).
	YUYVFPS int       `yaml:"yuyv_fps"`
	Sim     CameraSim `yaml:"sim"`
}

// CameraSim tunes the simulated camera.
type CameraSim struct {
	MotionEvery    Duration `yaml:"motion_every"`
	MotionDuration Duration `yaml:"motion_duration"`
	Quality        int      `yaml:"quality"`
}

// Recording modes.
const (
	ModeContinuous = "continuous"
	ModeEvents     = "events"
	ModeTimelapse  = "timelapse"
)

// Recording says what is recorded and how the footage store writes it.
type Recording struct {
	Mode              string   `yaml:"mode"`
	PreRoll           Duration `yaml:"pre_roll"`
	PostRoll          Duration `yaml:"post_roll"`
	TimelapseInterval Duration `yaml:"timelapse_interval"`
	SegmentDuration   Duration `yaml:"segment_duration"`
	SegmentMaxSize    Size     `yaml:"segment_max_size"`
	SyncInterval      Duration `yaml:"sync_interval"`
	MaxFrameSize      Size     `yaml:"max_frame_size"`
}

// Retention bounds how long and how much footage is kept.
type Retention struct {
	MaxAge  Duration      `yaml:"max_age"`
	Quota   SizeOrPercent `yaml:"quota"`
	MinFree SizeOrPercent `yaml:"min_free"`
	// HoldCap bounds the footage kept under evidence holds.
	HoldCap SizeOrPercent `yaml:"hold_cap"`
}

// Uplink is the MQTT connection to the control room.
type Uplink struct {
	// Broker is tcp://host:port, ssl://host:port or mqtts://host:port.
	Broker      string   `yaml:"broker"`
	TopicPrefix string   `yaml:"topic_prefix"`
	KeepAlive   Duration `yaml:"keepalive"`
	Username    string   `yaml:"username"`
	Password    Secret   `yaml:"password"`
	TLS         TLS      `yaml:"tls"`
	// MonthlyBudget is the cellular data allowance per calendar month
	// (UTC); 0 sets none. At 80 % the unit saves data, at 100 % it sends
	// telemetry only at each stream's max interval.
	MonthlyBudget Size `yaml:"monthly_budget"`
	// OutboxSize bounds the disk-backed queue kept while offline.
	OutboxSize Size `yaml:"outbox_size"`
	// OutboxDrainWindow is how many queued messages may await the
	// broker's acknowledgement at once when the link returns, and
	// OutboxDrainRate the bytes per second the queue is sent at.
	OutboxDrainWindow int  `yaml:"outbox_drain_window"`
	OutboxDrainRate   Size `yaml:"outbox_drain_rate"`
	// ConfirmWindow is how long a remote configuration change that touches
	// the link has to reach the control room before the unit reverts it.
	ConfirmWindow Duration `yaml:"confirm_window"`
}

// TLS holds the files for mutual TLS with the broker.
type TLS struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Telemetry sets how often each stream is published.
type Telemetry struct {
	Power   Stream `yaml:"power"`
	Signal  Stream `yaml:"signal"`
	System  Stream `yaml:"system"`
	Storage Stream `yaml:"storage"`
	Link    Stream `yaml:"link"`
}

// Stream is one telemetry stream: a sample every Interval, published when a
// value moved by more than its deadband, and at least every MaxInterval.
type Stream struct {
	Interval    Duration `yaml:"interval"`
	MaxInterval Duration `yaml:"max_interval"`
}

// Power selects the power sensor.
type Power struct {
	Source   string        `yaml:"source"` // "sim", "vedirect", "ina219", "ina226" or "sysfs"
	Sim      PowerSim      `yaml:"sim"`
	VEDirect PowerVEDirect `yaml:"vedirect"`
	INA      PowerINA      `yaml:"ina"`
	Sysfs    PowerSysfs    `yaml:"sysfs"`
	Policy   PowerPolicy   `yaml:"policy"`
}

// PowerPolicy sets when the unit saves power: by state of charge when the
// hardware reports it, else by battery voltage. Each level is left again
// only once the value is Hysteresis above it.
type PowerPolicy struct {
	EcoSOC        float64 `yaml:"eco_soc"`
	CriticalSOC   float64 `yaml:"critical_soc"`
	ShutdownSOC   float64 `yaml:"shutdown_soc"`
	HysteresisSOC float64 `yaml:"hysteresis_soc"`
	EcoV          float64 `yaml:"eco_v"`
	CriticalV     float64 `yaml:"critical_v"`
	ShutdownV     float64 `yaml:"shutdown_v"`
	HysteresisV   float64 `yaml:"hysteresis_v"`
	// EcoFPS is the camera's frame rate in eco mode.
	EcoFPS int `yaml:"eco_fps"`
	// ShutdownCommand powers the board off (e.g. "systemctl poweroff",
	// allowed to the agent's user by polkit); empty: the agent stops with
	// exit code 5 and the service manager must not restart it.
	ShutdownCommand string `yaml:"shutdown_command"`
}

// Faults sets the fault detectors' thresholds.
type Faults struct {
	// CheckInterval is how often the detectors look (1s-1m).
	CheckInterval Duration `yaml:"check_interval"`
	// CameraNoFrames: no frame for this long is a fault.
	CameraNoFrames Duration `yaml:"camera_no_frames"`
	// CameraFrozen and CameraBlack: how long a frozen or black (or
	// uniform) picture lasts before it is a fault.
	CameraFrozen Duration `yaml:"camera_frozen"`
	CameraBlack  Duration `yaml:"camera_black"`
	// SceneChanged: how long the view must differ from the commissioning
	// reference (camera knocked or turned), or be less sharp than it.
	SceneChanged Duration `yaml:"scene_changed"`
	// WeakSignalDBm and WeakSignalFor: RSRP below this for this long.
	WeakSignalDBm float64  `yaml:"weak_signal_dbm"`
	WeakSignalFor Duration `yaml:"weak_signal_for"`
	// UnregisteredFor: the modem off the network for this long.
	UnregisteredFor Duration `yaml:"unregistered_for"`
	// TemperatureC: the board's temperature limit.
	TemperatureC float64 `yaml:"temperature_c"`
	// MemoryMax: the agent's heap above this for five minutes.
	MemoryMax Size `yaml:"memory_max"`
	// ClockStep: a wall clock step at least this large is reported.
	ClockStep Duration `yaml:"clock_step"`
	// UnsyncedFor: the clock not synchronised for this long.
	UnsyncedFor Duration `yaml:"unsynced_for"`
	// ComponentFailing: a component failing (restarting) this long.
	ComponentFailing Duration `yaml:"component_failing"`
}

// PowerINA is an INA219 or INA226 current and voltage monitor on I²C.
type PowerINA struct {
	// Bus is the I²C bus: "1" (/dev/i2c-1), or "" for the first one.
	Bus string `yaml:"bus"`
	// Address is the chip's I²C address, 0x40-0x4F.
	Address int `yaml:"address"`
	// ShuntOhms is the shunt resistor (R100 on a breakout board: 0.1).
	ShuntOhms float64 `yaml:"shunt_ohms"`
	// MaxCurrentA is the largest current expected (INA226; 0: the most
	// the shunt can measure).
	MaxCurrentA float64 `yaml:"max_current_a"`
	// Measures is battery, panel or load.
	Measures string `yaml:"measures"`
	// Reverse flips the current's sign, for a shunt wired the other way.
	Reverse bool `yaml:"reverse"`
}

// PowerSysfs is a fuel gauge or PMIC the kernel exposes under
// /sys/class/power_supply.
type PowerSysfs struct {
	Root        string `yaml:"root"`
	Name        string `yaml:"name"`
	CurrentSign string `yaml:"current_sign"`
}

// GPIO is what the unit has on its header pins, by pin name (GPIO17).
// An empty pin means not fitted.
type GPIO struct {
	// PIR is a passive infrared motion sensor: a trigger for recording.
	PIR GPIOInput `yaml:"pir"`
	// Tamper is the cabinet door switch: active when the door is open.
	Tamper GPIOInput `yaml:"tamper"`
	// IRRelay switches the infrared illuminator.
	IRRelay GPIOOutput `yaml:"ir_relay"`
}

// GPIOInput is one input pin.
type GPIOInput struct {
	Pin       string   `yaml:"pin"`
	ActiveLow bool     `yaml:"active_low"`
	Pull      string   `yaml:"pull"`
	Debounce  Duration `yaml:"debounce"`
}

// GPIOOutput is one output pin.
type GPIOOutput struct {
	Pin       string `yaml:"pin"`
	ActiveLow bool   `yaml:"active_low"`
}

// Motion sets the motion detector and what starts an event.
type Motion struct {
	// Trigger is what starts an event: motion, pir, motion_or_pir or
	// motion_and_pir (motion confirmed by the PIR sensor within
	// PIRWindow: fewer false alarms).
	Trigger   string   `yaml:"trigger"`
	PIRWindow Duration `yaml:"pir_window"`
	// Zones are where motion counts (none: the whole picture); Ignore are
	// never watched. Each is a polygon of [x, y] corners, fractions of the
	// picture (0,0 top left, 1,1 bottom right).
	Zones  [][][2]float64 `yaml:"zones"`
	Ignore [][][2]float64 `yaml:"ignore"`
	// Threshold is how many standard deviations of a cell's own noise a
	// change must exceed; MinArea the fraction of watched cells that must
	// change; Every analyses one frame in Every.
	Threshold float64 `yaml:"threshold"`
	MinArea   float64 `yaml:"min_area"`
	Every     int     `yaml:"every"`
}

// Motion triggers.
const (
	TriggerMotion       = "motion"
	TriggerPIR          = "pir"
	TriggerMotionOrPIR  = "motion_or_pir"
	TriggerMotionAndPIR = "motion_and_pir"
)

// OTA configures over-the-air updates of the agent (docs/operations.md,
// "Releases of the agent").
type OTA struct {
	// Root holds the A/B slots and the update state; "" is <data_dir>/ota.
	Root string `yaml:"root"`
	// Keys are the pinned release keys, each "outpost-release-ed25519
	// <base64> [comment]" (the line of a release.pub file). None: every
	// update is refused.
	Keys []string `yaml:"keys"`
	// Arch is the unit's architecture (arm64, armv7, armv6, amd64); ""
	// is the one the agent was built for.
	Arch string `yaml:"arch"`
	// MinSOC is the battery charge (%) below which an update is deferred.
	MinSOC float64 `yaml:"min_soc"`
	// DataHeadroom is what must be left of the monthly data budget after
	// the bundle has been received ("10%" of uplink.monthly_budget, or a size).
	DataHeadroom SizeOrPercent `yaml:"data_headroom"`
	// TrialWindow is how long a new release has to prove itself healthy.
	TrialWindow Duration `yaml:"trial_window"`
	// MaxTrialBoots is how many starts a release on trial gets.
	MaxTrialBoots int `yaml:"max_trial_boots"`
}

// Watchdog is the board's hardware watchdog.
type Watchdog struct {
	// Device is the watchdog device, e.g. /dev/watchdog; "" leaves it to
	// systemd (RuntimeWatchdogSec) or off.
	Device string `yaml:"device"`
	// Interval is how often it is fed while the agent is healthy (1s-1m),
	// well below the device's timeout (15 s on a Raspberry Pi).
	Interval Duration `yaml:"interval"`
}

// PowerVEDirect is a Victron charge controller or battery monitor on a
// VE.Direct serial port.
type PowerVEDirect struct {
	// Port is the serial device, e.g. /dev/ttyUSB0.
	Port string `yaml:"port"`
	// Timeout is how long a reading waits for a valid block (1s-30s).
	Timeout Duration `yaml:"timeout"`
}

// PowerSim tunes the simulated battery and solar panel.
type PowerSim struct {
	CapacityWh float64 `yaml:"capacity_wh"`
	PanelPeakW float64 `yaml:"panel_peak_w"`
	LoadW      float64 `yaml:"load_w"`
	InitialSOC float64 `yaml:"initial_soc"`
	TimeScale  float64 `yaml:"time_scale"`
}

// Modem selects the cellular modem.
type Modem struct {
	Source string     `yaml:"source"` // "sim", "at" or "mmcli"
	Sim    ModemSim   `yaml:"sim"`
	AT     ModemAT    `yaml:"at"`
	MMCLI  ModemMMCLI `yaml:"mmcli"`
}

// ModemMMCLI is a modem managed by ModemManager, read through mmcli.
type ModemMMCLI struct {
	// Path is the mmcli binary.
	Path string `yaml:"path"`
	// Modem is the modem's index, D-Bus path, or "any" (the first one).
	Modem string `yaml:"modem"`
	// Timeout bounds each run of mmcli (1s-1m).
	Timeout Duration `yaml:"timeout"`
	// SignalRate is how often ModemManager polls the signal (1s-1h).
	SignalRate Duration `yaml:"signal_rate"`
}

// ModemAT is a modem read through AT commands on its serial command port.
type ModemAT struct {
	// Port is the modem's AT command port, e.g. /dev/ttyUSB2.
	Port string `yaml:"port"`
	// Flavor is "quectel" (AT+QENG: RSRP, RSRQ and SINR), "simcom"
	// (AT+CPSI?) or "generic" (AT+CESQ: RSRP and RSRQ).
	Flavor string `yaml:"flavor"`
	// Timeout is how long one command may take (1s-30s).
	Timeout Duration `yaml:"timeout"`
}

// ModemSim tunes the simulated modem.
type ModemSim struct {
	RSRPdBm         float64  `yaml:"rsrp_dbm"`
	DropoutEvery    Duration `yaml:"dropout_every"`
	DropoutDuration Duration `yaml:"dropout_duration"`
}

// Default returns the configuration used when a key is not given. It is
// the same as configs/outpost.example.yaml (a test keeps them in step).
func Default() Config {
	return Config{
		Unit:    Unit{ID: "outpost-unit", Site: "unnamed site"},
		Log:     Log{Level: "info", Format: "text"},
		DataDir: "/var/lib/outpost",
		Camera: Camera{
			Source: "sim", Width: 1280, Height: 720, FPS: 25,
			FrameTimeout: Duration(5 * time.Second), Buffers: 4, YUYVFPS: 5,
			Sim: CameraSim{MotionEvery: Duration(30 * time.Second), MotionDuration: Duration(4 * time.Second), Quality: 75},
		},
		Motion: Motion{Trigger: TriggerMotion, PIRWindow: Duration(5 * time.Second), Zones: [][][2]float64{}, Ignore: [][][2]float64{},
			Threshold: 4, MinArea: 0.004, Every: 1},
		Recording: Recording{
			Mode:              ModeContinuous,
			PreRoll:           Duration(5 * time.Second),
			PostRoll:          Duration(10 * time.Second),
			TimelapseInterval: Duration(10 * time.Second),
			SegmentDuration:   Duration(time.Minute),
			SegmentMaxSize:    256 << 20,
			SyncInterval:      Duration(time.Second),
			MaxFrameSize:      4 << 20,
		},
		Retention: Retention{
			MaxAge:  Duration(28 * 24 * time.Hour),
			Quota:   SizeOrPercent{Percent: 90},
			MinFree: SizeOrPercent{Bytes: 1 << 30},
			HoldCap: SizeOrPercent{Percent: 20},
		},
		Uplink: Uplink{
			Broker:            "tcp://127.0.0.1:1883",
			TopicPrefix:       "outpost",
			KeepAlive:         Duration(60 * time.Second),
			ConfirmWindow:     Duration(5 * time.Minute),
			MonthlyBudget:     3 << 30,
			OutboxSize:        16 << 20,
			OutboxDrainWindow: 4,
			OutboxDrainRate:   16 << 10,
		},
		Telemetry: Telemetry{
			Power:   Stream{Interval: Duration(time.Minute), MaxInterval: Duration(15 * time.Minute)},
			Signal:  Stream{Interval: Duration(time.Minute), MaxInterval: Duration(15 * time.Minute)},
			System:  Stream{Interval: Duration(5 * time.Minute), MaxInterval: Duration(time.Hour)},
			Storage: Stream{Interval: Duration(5 * time.Minute), MaxInterval: Duration(time.Hour)},
			Link:    Stream{Interval: Duration(5 * time.Minute), MaxInterval: Duration(time.Hour)},
		},
		Power: Power{Source: "sim", Sim: PowerSim{CapacityWh: 1200, PanelPeakW: 100, LoadW: 8, InitialSOC: 80, TimeScale: 1},
			VEDirect: PowerVEDirect{Port: "/dev/ttyUSB0", Timeout: Duration(3 * time.Second)},
			INA:      PowerINA{Bus: "1", Address: 0x40, ShuntOhms: 0.1, Measures: "battery"},
			Sysfs:    PowerSysfs{Root: "/sys/class/power_supply", CurrentSign: "auto"},
			Policy: PowerPolicy{EcoSOC: 30, CriticalSOC: 15, ShutdownSOC: 5, HysteresisSOC: 10,
				EcoV: 12.1, CriticalV: 11.8, ShutdownV: 11.5, HysteresisV: 0.4, EcoFPS: 5}},
		Faults: Faults{
			CheckInterval: Duration(5 * time.Second), CameraNoFrames: Duration(30 * time.Second),
			CameraFrozen: Duration(30 * time.Second), CameraBlack: Duration(20 * time.Second), SceneChanged: Duration(5 * time.Minute),
			WeakSignalDBm: -110, WeakSignalFor: Duration(30 * time.Minute), UnregisteredFor: Duration(10 * time.Minute),
			TemperatureC: 80, MemoryMax: 256 << 20, ClockStep: Duration(5 * time.Second), UnsyncedFor: Duration(30 * time.Minute),
			ComponentFailing: Duration(10 * time.Minute),
		},
		GPIO: GPIO{
			PIR:    GPIOInput{Pull: "down", Debounce: Duration(50 * time.Millisecond)},
			Tamper: GPIOInput{Pull: "up", Debounce: Duration(200 * time.Millisecond)},
		},
		Watchdog: Watchdog{Interval: Duration(5 * time.Second)},
		Modem: Modem{Source: "sim", Sim: ModemSim{RSRPdBm: -95, DropoutEvery: Duration(2 * time.Hour), DropoutDuration: Duration(30 * time.Second)},
			AT:    ModemAT{Port: "/dev/ttyUSB2", Flavor: "quectel", Timeout: Duration(3 * time.Second)},
			MMCLI: ModemMMCLI{Path: "mmcli", Modem: "any", Timeout: Duration(5 * time.Second), SignalRate: Duration(10 * time.Second)}},
		OTA:             OTA{Keys: []string{}, MinSOC: 40, DataHeadroom: SizeOrPercent{Percent: 10}, TrialWindow: Duration(10 * time.Minute), MaxTrialBoots: 3},
		Privacy:         Privacy{Masks: [][][2]float64{}, SignEvery: Duration(10 * time.Minute)},
		Security:        Security{SignedCommands: SignedOptional, OperatorKeys: []string{}, ReplayWindow: Duration(5 * time.Minute)},
		ShutdownTimeout: Duration(5 * time.Second),
	}
}

var unitIDRe = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// ValidUnitID reports whether id can be used as a unit id.
func ValidUnitID(id string) bool { return unitIDRe.MatchString(id) }

// Validate checks every field and returns all problems found, each naming
// the field path and what is allowed. It does no I/O.
func (c *Config) Validate() error {
	var v validator
	if !ValidUnitID(c.Unit.ID) {
		v.add("unit.id", "%q must be 1-64 characters of a-z, 0-9 and '-' (it becomes part of MQTT topics)", c.Unit.ID)
	}
	if l := c.Unit.Location; l != nil {
		if l.Lat < -90 || l.Lat > 90 {
			v.add("unit.location.lat", "%g is outside -90..90", l.Lat)
		}
		if l.Lon < -180 || l.Lon > 180 {
			v.add("unit.location.lon", "%g is outside -180..180", l.Lon)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.add("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		v.add("log.format", "%q is not one of text, json", c.Log.Format)
	}
	if c.DataDir == "" {
		v.add("data_dir", "must name the directory footage and state are kept in")
	}
	cam := c.Camera
	if err := source.ValidateSource(cam.Source); err != nil {
		v.add("camera.source", "%v", err)
	}
	if cam.Width < 16 || cam.Width > 4096 || cam.Width%2 != 0 {
		v.add("camera.width", "%d must be even and 16-4096", cam.Width)
	}
	if cam.Height < 16 || cam.Height > 2160 || cam.Height%2 != 0 {
		v.add("camera.height", "%d must be even and 16-2160", cam.Height)
	}
	if cam.FPS < 1 || cam.FPS > 30 {
		v.add("camera.fps", "%d is outside 1-30", cam.FPS)
	}
	if cam.Password != "" && cam.Username == "" {
		v.add("camera.username", "must be set when camera.password is")
	}
	v.between("camera.frame_timeout", cam.FrameTimeout, Duration(time.Second), Duration(5*time.Minute))
	if cam.Buffers < 2 || cam.Buffers > 32 {
		v.add("camera.buffers", "%d is outside 2-32", cam.Buffers)
	}
	if cam.YUYVFPS < 1 || cam.YUYVFPS > max(cam.FPS, 1) {
		v.add("camera.yuyv_fps", "%d is outside 1-%d (camera.fps)", cam.YUYVFPS, max(cam.FPS, 1))
	}
	if cam.Sim.MotionEvery < 0 {
		v.add("camera.sim.motion_every", "%s must not be negative (0 turns scripted motion off)", cam.Sim.MotionEvery)
	}
	if cam.Sim.MotionEvery > 0 && (cam.Sim.MotionDuration <= 0 || cam.Sim.MotionDuration >= cam.Sim.MotionEvery) {
		v.add("camera.sim.motion_duration", "%s must be above 0 and below camera.sim.motion_every (%s)", cam.Sim.MotionDuration, cam.Sim.MotionEvery)
	}
	if cam.Sim.Quality < 1 || cam.Sim.Quality > 100 {
		v.add("camera.sim.quality", "%d is outside 1-100", cam.Sim.Quality)
	}
	r := c.Recording
	switch r.Mode {
	case ModeContinuous, ModeEvents, ModeTimelapse:
	default:
		v.add("recording.mode", "%q is not one of continuous, events, timelapse", r.Mode)
	}
	v.between("recording.pre_roll", r.PreRoll, 0, Duration(60*time.Second))
	v.between("recording.post_roll", r.PostRoll, 0, Duration(10*time.Minute))
	v.between("recording.timelapse_interval", r.TimelapseInterval, Duration(time.Second), Duration(24*time.Hour))
	v.between("recording.segment_duration", r.SegmentDuration, Duration(5*time.Second), Duration(time.Hour))
	v.between("recording.sync_interval", r.SyncInterval, Duration(10*time.Millisecond), Duration(time.Minute))
	if r.SegmentMaxSize < 1<<20 || r.SegmentMaxSize > 4<<30 {
		v.add("recording.segment_max_size", "%s is outside 1MiB-4GiB", r.SegmentMaxSize)
	}
	if r.MaxFrameSize < 64<<10 || r.MaxFrameSize > 64<<20 {
		v.add("recording.max_frame_size", "%s is outside 64KiB-64MiB", r.MaxFrameSize)
	} else if r.MaxFrameSize > r.SegmentMaxSize {
		v.add("recording.max_frame_size", "%s is above recording.segment_max_size (%s)", r.MaxFrameSize, r.SegmentMaxSize)
	}
	ret := c.Retention
	v.between("retention.max_age", ret.MaxAge, Duration(time.Hour), Duration(366*24*time.Hour))
	if ret.Quota == (SizeOrPercent{}) {
		v.add("retention.quota", "must be set, as a size (64GiB) or a share of the disk (90%%)")
	}
	if ret.HoldCap == (SizeOrPercent{}) {
		v.add("retention.hold_cap", "must be set, as a size (8GiB) or a share of the disk (20%%)")
	}
	u := c.Uplink
	if !validBrokerURL(u.Broker) {
		v.add("uplink.broker", "%q must be tcp://HOST:PORT, ssl://HOST:PORT or mqtts://HOST:PORT", u.Broker)
	}
	if !topicLevelRe.MatchString(u.TopicPrefix) {
		v.add("uplink.topic_prefix", "%q must be one topic level of letters, digits, '-' and '_'", u.TopicPrefix)
	}
	v.between("uplink.keepalive", u.KeepAlive, Duration(10*time.Second), Duration(20*time.Minute))
	v.between("uplink.confirm_window", u.ConfirmWindow, Duration(5*time.Second), Duration(time.Hour))
	if (u.TLS.Cert == "") != (u.TLS.Key == "") {
		v.add("uplink.tls", "cert and key must be given together")
	}
	if (u.TLS.CA != "" || u.TLS.Cert != "") && validBrokerURL(u.Broker) && !strings.HasPrefix(u.Broker, "ssl://") && !strings.HasPrefix(u.Broker, "mqtts://") {
		v.add("uplink.tls", "certificates are set but uplink.broker %q is not a TLS address: use ssl://HOST:PORT or mqtts://HOST:PORT", u.Broker)
	}
	if u.Password != "" && u.Username == "" {
		v.add("uplink.username", "must be set when uplink.password is")
	}
	if u.OutboxSize < 64<<10 || u.OutboxSize > 1<<30 {
		v.add("uplink.outbox_size", "%s is outside 64KiB-1GiB", u.OutboxSize)
	}
	if u.OutboxDrainWindow < 1 || u.OutboxDrainWindow > 64 {
		v.add("uplink.outbox_drain_window", "%d is outside 1-64", u.OutboxDrainWindow)
	}
	if u.OutboxDrainRate < 1<<10 || u.OutboxDrainRate > 64<<20 {
		v.add("uplink.outbox_drain_rate", "%s is outside 1KiB-64MiB (bytes per second)", u.OutboxDrainRate)
	}
	if u.MonthlyBudget != 0 && u.MonthlyBudget < 1<<20 {
		v.add("uplink.monthly_budget", "%s is below 1MiB: give the allowance per month, or 0 for none", u.MonthlyBudget)
	}
	for _, st := range []struct {
		name string
		s    Stream
	}{{"power", c.Telemetry.Power}, {"signal", c.Telemetry.Signal}, {"system", c.Telemetry.System}, {"storage", c.Telemetry.Storage}, {"link", c.Telemetry.Link}} {
		p, s := "telemetry."+st.name, st.s
		v.between(p+".interval", s.Interval, Duration(time.Second), Duration(24*time.Hour))
		if s.MaxInterval < s.Interval {
			v.add(p+".max_interval", "%s is below %s.interval (%s)", s.MaxInterval, p, s.Interval)
		}
	}
	switch c.Power.Source {
	case "sim":
	case "vedirect":
		if !strings.HasPrefix(c.Power.VEDirect.Port, "/") {
			v.add("power.vedirect.port", "%q is not a device path: give the serial port, e.g. /dev/ttyUSB0", c.Power.VEDirect.Port)
		}
		v.between("power.vedirect.timeout", c.Power.VEDirect.Timeout, Duration(time.Second), Duration(30*time.Second))
	case "ina219", "ina226":
		in := c.Power.INA
		if in.Address < 0x40 || in.Address > 0x4f {
			v.add("power.ina.address", "%#x is outside 0x40-0x4f, the addresses an INA219/INA226 answers on (i2cdetect -y 1 shows it)", in.Address)
		}
		if !(in.ShuntOhms > 0) || in.ShuntOhms > 10 {
			v.add("power.ina.shunt_ohms", "%g must be above 0 and at most 10: read it off the resistor (R100 is 0.1)", in.ShuntOhms)
		}
		if in.MaxCurrentA < 0 {
			v.add("power.ina.max_current_a", "%g must not be negative", in.MaxCurrentA)
		}
		if in.Measures != "battery" && in.Measures != "panel" && in.Measures != "load" {
			v.add("power.ina.measures", "%q is not known: use battery, panel or load", in.Measures)
		}
	case "sysfs":
		sf := c.Power.Sysfs
		if !strings.HasPrefix(sf.Root, "/") {
			v.add("power.sysfs.root", "%q is not a directory path: use /sys/class/power_supply", sf.Root)
		}
		if sf.CurrentSign != "auto" && sf.CurrentSign != "abi" && sf.CurrentSign != "inverted" {
			v.add("power.sysfs.current_sign", "%q is not known: use auto, abi or inverted", sf.CurrentSign)
		}
	default:
		v.add("power.source", "%q is not supported: use sim, vedirect, ina219, ina226 or sysfs", c.Power.Source)
	}
	ps := c.Power.Sim
	if ps.CapacityWh <= 0 {
		v.add("power.sim.capacity_wh", "%g must be above 0", ps.CapacityWh)
	}
	if ps.PanelPeakW < 0 {
		v.add("power.sim.panel_peak_w", "%g must not be negative", ps.PanelPeakW)
	}
	if ps.LoadW < 0 {
		v.add("power.sim.load_w", "%g must not be negative", ps.LoadW)
	}
	if ps.InitialSOC < 0 || ps.InitialSOC > 100 {
		v.add("power.sim.initial_soc", "%g is outside 0-100", ps.InitialSOC)
	}
	if ps.TimeScale < 1 || ps.TimeScale > 10000 {
		v.add("power.sim.time_scale", "%g is outside 1-10000", ps.TimeScale)
	}
	switch c.Modem.Source {
	case "sim":
	case "at":
		if !strings.HasPrefix(c.Modem.AT.Port, "/") {
			v.add("modem.at.port", "%q is not a device path: give the modem's AT command port, e.g. /dev/ttyUSB2", c.Modem.AT.Port)
		}
		if f := c.Modem.AT.Flavor; f != "quectel" && f != "generic" && f != "simcom" {
			v.add("modem.at.flavor", "%q is not known: use quectel, simcom or generic", f)
		}
		v.between("modem.at.timeout", c.Modem.AT.Timeout, Duration(time.Second), Duration(30*time.Second))
	case "mmcli":
		m := c.Modem.MMCLI
		if m.Path == "" {
			v.add("modem.mmcli.path", "must be set: the mmcli binary (mmcli, or /usr/bin/mmcli)")
		}
		if m.Modem == "" || strings.ContainsAny(m.Modem, " \t\n") || strings.HasPrefix(m.Modem, "-") {
			v.add("modem.mmcli.modem", "%q is not a modem: give its index (0), its D-Bus path, or any", m.Modem)
		}
		v.between("modem.mmcli.timeout", m.Timeout, Duration(time.Second), Duration(time.Minute))
		v.between("modem.mmcli.signal_rate", m.SignalRate, Duration(time.Second), Duration(time.Hour))
		if m.SignalRate%Duration(time.Second) != 0 {
			v.add("modem.mmcli.signal_rate", "%s is not a whole number of seconds", m.SignalRate)
		}
	default:
		v.add("modem.source", "%q is not supported: use sim, at or mmcli", c.Modem.Source)
	}
	if ms := c.Modem.Sim; ms.RSRPdBm < -140 || ms.RSRPdBm > -44 {
		v.add("modem.sim.rsrp_dbm", "%g is outside -140..-44", ms.RSRPdBm)
	}
	if ms := c.Modem.Sim; ms.DropoutEvery > 0 && (ms.DropoutDuration <= 0 || ms.DropoutDuration >= ms.DropoutEvery) {
		v.add("modem.sim.dropout_duration", "%s must be above 0 and below modem.sim.dropout_every (%s)", ms.DropoutDuration, ms.DropoutEvery)
	}
	mo := c.Motion
	switch mo.Trigger {
	case TriggerMotion, TriggerMotionOrPIR:
	case TriggerPIR, TriggerMotionAndPIR:
		if c.GPIO.PIR.Pin == "" {
			v.add("motion.trigger", "%q needs a PIR sensor: set gpio.pir.pin", mo.Trigger)
		}
	default:
		v.add("motion.trigger", "%q is not known: use motion, pir, motion_or_pir or motion_and_pir", mo.Trigger)
	}
	v.between("motion.pir_window", mo.PIRWindow, Duration(100*time.Millisecond), Duration(time.Minute))
	for _, z := range []struct {
		field string
		polys [][][2]float64
	}{{"motion.zones", mo.Zones}, {"motion.ignore", mo.Ignore}} {
		for i, p := range z.polys {
			f := fmt.Sprintf("%s[%d]", z.field, i)
			if len(p) < 3 {
				v.add(f, "a zone needs at least three [x, y] corners, found %d", len(p))
			}
			for _, pt := range p {
				if pt[0] < 0 || pt[0] > 1 || pt[1] < 0 || pt[1] > 1 {
					v.add(f, "corner %v: coordinates are fractions of the picture, 0-1 (0,0 top left, 1,1 bottom right)", pt)
					break
				}
			}
		}
	}
	if mo.Threshold < 1 || mo.Threshold > 50 {
		v.add("motion.threshold", "%g is outside 1-50", mo.Threshold)
	}
	if mo.MinArea <= 0 || mo.MinArea > 1 {
		v.add("motion.min_area", "%g is outside 0-1 (above 0)", mo.MinArea)
	}
	if mo.Every < 1 || mo.Every > 100 {
		v.add("motion.every", "%d is outside 1-100", mo.Every)
	}
	pp := c.Power.Policy
	if !(pp.ShutdownSOC >= 0 && pp.ShutdownSOC < pp.CriticalSOC && pp.CriticalSOC < pp.EcoSOC && pp.EcoSOC <= 100) {
		v.add("power.policy", "state of charge levels must rise: 0 <= shutdown_soc (%g) < critical_soc (%g) < eco_soc (%g) <= 100", pp.ShutdownSOC, pp.CriticalSOC, pp.EcoSOC)
	}
	if !(pp.ShutdownV > 0 && pp.ShutdownV < pp.CriticalV && pp.CriticalV < pp.EcoV && pp.EcoV < 60) {
		v.add("power.policy", "battery voltage levels must rise: 0 < shutdown_v (%g) < critical_v (%g) < eco_v (%g) < 60", pp.ShutdownV, pp.CriticalV, pp.EcoV)
	}
	if pp.HysteresisSOC <= 0 || pp.HysteresisSOC > 50 {
		v.add("power.policy.hysteresis_soc", "%g is outside 0-50 (above 0)", pp.HysteresisSOC)
	}
	if pp.HysteresisV <= 0 || pp.HysteresisV > 5 {
		v.add("power.policy.hysteresis_v", "%g is outside 0-5 (above 0)", pp.HysteresisV)
	}
	if pp.EcoFPS < 1 || pp.EcoFPS > 30 {
		v.add("power.policy.eco_fps", "%d is outside 1-30", pp.EcoFPS)
	}
	f := c.Faults
	v.between("faults.check_interval", f.CheckInterval, Duration(time.Second), Duration(time.Minute))
	for _, d := range []struct {
		field string
		d     Duration
	}{{"faults.camera_no_frames", f.CameraNoFrames}, {"faults.camera_frozen", f.CameraFrozen}, {"faults.camera_black", f.CameraBlack},
		{"faults.scene_changed", f.SceneChanged}, {"faults.weak_signal_for", f.WeakSignalFor}, {"faults.unregistered_for", f.UnregisteredFor},
		{"faults.unsynced_for", f.UnsyncedFor}, {"faults.component_failing", f.ComponentFailing}} {
		v.between(d.field, d.d, Duration(time.Second), Duration(24*time.Hour))
	}
	v.between("faults.clock_step", f.ClockStep, Duration(time.Second), Duration(time.Hour))
	if f.WeakSignalDBm < -140 || f.WeakSignalDBm > -44 {
		v.add("faults.weak_signal_dbm", "%g is outside -140..-44", f.WeakSignalDBm)
	}
	if f.TemperatureC < 40 || f.TemperatureC > 120 {
		v.add("faults.temperature_c", "%g is outside 40-120", f.TemperatureC)
	}
	if f.MemoryMax < 16<<20 {
		v.add("faults.memory_max", "%s is below 16MiB", f.MemoryMax)
	}
	for _, in := range []struct {
		field string
		in    GPIOInput
	}{{"gpio.pir", c.GPIO.PIR}, {"gpio.tamper", c.GPIO.Tamper}} {
		if in.in.Pull != "up" && in.in.Pull != "down" && in.in.Pull != "none" {
			v.add(in.field+".pull", "%q is not known: use up, down or none", in.in.Pull)
		}
		v.between(in.field+".debounce", in.in.Debounce, Duration(time.Millisecond), Duration(10*time.Second))
	}
	if d := c.Watchdog.Device; d != "" && !strings.HasPrefix(d, "/") {
		v.add("watchdog.device", "%q is not a device path: use /dev/watchdog, or leave it empty", d)
	}
	v.between("watchdog.interval", c.Watchdog.Interval, Duration(time.Second), Duration(time.Minute))
	validateOTA(&v, c.OTA)
	validatePrivacy(&v, c.Privacy)
	validateSecurity(&v, c.Security)
	v.between("shutdown_timeout", c.ShutdownTimeout, Duration(time.Second), Duration(time.Minute))
	return v.err()
}

var topicLevelRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

var brokerURLRe = regexp.MustCompile(`^(tcp|ssl|mqtts|mqtt)://[^/:]+:[0-9]{1,5}$`)

func validBrokerURL(s string) bool { return brokerURLRe.MatchString(s) }

// FieldError is one problem with one field. Line is 0 when the field was
// not in the file (a default, or a flag).
type FieldError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e FieldError) Error() string {
	var s string
	switch {
	case e.File != "" && e.Line > 0:
		s = fmt.Sprintf("%s:%d: ", e.File, e.Line)
	case e.File != "":
		s = e.File + ": "
	}
	if e.Field != "" {
		s += e.Field + ": "
	}
	return s + e.Msg
}

// Errors is every problem found in a config.
type Errors []FieldError

func (es Errors) Error() string {
	s := "config:"
	if len(es) == 1 {
		return s + " " + es[0].Error()
	}
	for _, e := range es {
		s += "\n  " + e.Error()
	}
	return s
}

type validator struct{ errs Errors }

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) between(field string, d, min, max Duration) {
	if d < min || d > max {
		v.add(field, "%s is outside %s-%s", d, min, max)
	}
}

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}
