package sysfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// DefaultRoot is where Linux lists power supplies.
const DefaultRoot = "/sys/class/power_supply"

// How to read the sign of current_now; see the package documentation.
const (
	SignAuto     = "auto"
	SignABI      = "abi"
	SignInverted = "inverted"
)

// Errors Read wraps when there is no battery to read: a board or
// configuration fault, which retrying does not mend until the hardware or
// the configuration changes. Other errors may pass.
var (
	// ErrNoBattery: no supply of the configured name, or no battery.
	ErrNoBattery = errors.New("no battery")
	// ErrNotPresent: the battery's driver reports it disconnected.
	ErrNotPresent = errors.New("battery not present")
)

// Config says which supply to read.
type Config struct {
	// Root is the power supply directory; "" means DefaultRoot.
	Root string `yaml:"root"`
	// Name is the battery supply's directory name, e.g. "axp20x-battery"
	// or "bq27441-0"; "" picks the first supply (by name) whose type is
	// Battery and whose scope is not Device.
	Name string `yaml:"name"`
	// CurrentSign is SignAuto, SignABI or SignInverted; "" means SignAuto.
	CurrentSign string `yaml:"current_sign"`
}

// Validate fills in defaults and checks c, before any I/O.
func (c *Config) Validate() error {
	if c.Root == "" {
		c.Root = DefaultRoot
	}
	if c.CurrentSign == "" {
		c.CurrentSign = SignAuto
	}
	switch c.CurrentSign {
	case SignAuto, SignABI, SignInverted:
	default:
		return fmt.Errorf("sysfs: current sign %q: use %s, %s or %s", c.CurrentSign, SignAuto, SignABI, SignInverted)
	}
	if c.Name != "" && (strings.ContainsAny(c.Name, `/\`) || c.Name == "." || c.Name == "..") {
		return fmt.Errorf("sysfs: supply name %q: give the directory's name under %s, e.g. axp20x-battery", c.Name, c.Root)
	}
	return nil
}

// Source is one of the board's other supplies: mains, USB, a solar or
// wireless charger.
type Source struct {
	// Name is the supply's directory name, e.g. "axp20x-usb".
	Name string
	// Type is the kernel's type: "Mains", "USB", "Wireless", "UPS", ...
	Type string
	// Online is whether it supplies power; nil when the driver does not
	// say.
	Online *bool
}

// Status is everything read from the power supplies at one time.
type Status struct {
	// Reading is the battery's reading.
	Reading power.Reading
	// Battery is the name of the supply read.
	Battery string
	// TempC is the battery's temperature in °C, nil when unknown.
	TempC *float64
	// Health is the battery's health in the kernel's words ("Good",
	// "Overheat", "Cold", "Dead", ...), "" when unknown.
	Health string
	// Sources are the board's other supplies, by name.
	Sources []Source
}

// Sensor reads one battery's power supply.
type Sensor struct {
	cfg  Config
	fsys fs.FS
	clk  clock.Clock
	log  *slog.Logger
}

var _ power.Sensor = (*Sensor)(nil)

// New returns a sensor reading cfg.Root. It does no I/O: the supplies are
// listed again at every Read, so a driver that probes late is found.
func New(cfg Config, clk clock.Clock, log *slog.Logger) (*Sensor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newFS(cfg, os.DirFS(cfg.Root), clk, log), nil
}

func newFS(cfg Config, fsys fs.FS, clk clock.Clock, log *slog.Logger) *Sensor {
	return &Sensor{cfg: cfg, fsys: fsys, clk: clk, log: log.With("component", "power-sysfs")}
}

// Read returns the battery's reading.
func (s *Sensor) Read(ctx context.Context) (power.Reading, error) {
	st, err := s.Status(ctx)
	return st.Reading, err
}

// supply is one power supply directory's type and scope.
type supply struct {
	name, typ, scope string
}

// Status reads the battery and lists the board's other supplies.
func (s *Sensor) Status(ctx context.Context) (Status, error) {
	if err := ctx.Err(); err != nil {
		return Status{}, fmt.Errorf("sysfs: %w", err)
	}
	supplies, err := s.list()
	if err != nil {
		return Status{}, err
	}
	bat, err := s.pick(supplies)
	if err != nil {
		return Status{}, err
	}
	st := Status{Battery: bat, Reading: power.Reading{Time: s.clk.Now()}}
	for _, sp := range supplies {
		if sp.name == bat || sp.typ == "Battery" {
			continue
		}
		st.Sources = append(st.Sources, Source{Name: sp.name, Type: sp.typ, Online: s.flag(sp.name, "online")})
	}
	if p := s.flag(bat, "present"); p != nil && !*p {
		return st, fmt.Errorf("sysfs: %w: %s in %s reports no battery connected: check the battery and its connector", ErrNotPresent, bat, s.cfg.Root)
	}
	r := &st.Reading
	status := s.word(bat, "status")
	r.ChargeState = chargeState(status)
	r.BatteryV = s.scaled(bat, 1e-6, "voltage_now", "voltage_avg")
	r.BatteryA = s.scaled(bat, 1e-6, "current_now", "current_avg")
	if r.BatteryA == nil && r.BatteryV != nil && *r.BatteryV > 0 {
		if w := s.scaled(bat, 1e-6, "power_now", "power_avg"); w != nil {
			r.BatteryA = power.F(*w / *r.BatteryV)
		}
	}
	if r.BatteryA != nil {
		*r.BatteryA = signed(*r.BatteryA, status, s.cfg.CurrentSign)
	}
	r.SOCPercent = s.scaled(bat, 1, "capacity")
	st.TempC = s.scaled(bat, 0.1, "temp")
	st.Health = s.word(bat, "health")
	if st.Health == "Unknown" {
		st.Health = ""
	}
	return st, nil
}

// list returns the supplies under the root, by name.
func (s *Sensor) list() ([]supply, error) {
	entries, err := fs.ReadDir(s.fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("sysfs: list power supplies: %w: check %s exists (Linux with sysfs mounted)", err, s.cfg.Root)
	}
	var out []supply
	for _, e := range entries {
		// In sysfs the entries are symlinks to the devices' directories;
		// anything without a type is not a supply.
		typ := s.word(e.Name(), "type")
		if typ == "" {
			continue
		}
		out = append(out, supply{name: e.Name(), typ: typ, scope: s.word(e.Name(), "scope")})
	}
	return out, nil
}

// pick returns the name of the battery to read.
func (s *Sensor) pick(supplies []supply) (string, error) {
	if s.cfg.Name != "" {
		i := slices.IndexFunc(supplies, func(sp supply) bool { return sp.name == s.cfg.Name })
		if i < 0 {
			return "", fmt.Errorf("sysfs: %w: no power supply %s in %s: found %s: set the name of one of them, or leave it empty to pick the battery", ErrNoBattery, s.cfg.Name, s.cfg.Root, found(supplies))
		}
		if supplies[i].typ != "Battery" {
			s.log.Warn("the supply configured is not a battery: its values are read as the battery's", "supply", s.cfg.Name, "type", supplies[i].typ)
		}
		return s.cfg.Name, nil
	}
	for _, sp := range supplies {
		if sp.typ == "Battery" && sp.scope != "Device" {
			return sp.name, nil
		}
	}
	return "", fmt.Errorf("sysfs: %w in %s: found %s: this board's kernel knows no fuel gauge or PMIC battery; read the battery with another power sensor", ErrNoBattery, s.cfg.Root, found(supplies))
}

// found lists supplies for an error.
func found(supplies []supply) string {
	if len(supplies) == 0 {
		return "no power supply at all"
	}
	s := make([]string, len(supplies))
	for i, sp := range supplies {
		s[i] = sp.name + " (" + sp.typ
		if sp.scope == "Device" {
			s[i] += ", a peripheral's"
		}
		s[i] += ")"
	}
	return strings.Join(s, ", ")
}

// read returns the contents of the supply's attribute, without the trailing
// newline, and whether it could be read.
func (s *Sensor) read(name, attr string) (string, bool) {
	b, err := fs.ReadFile(s.fsys, path.Join(name, attr))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Debug("unreadable power supply attribute, reported as unknown", "supply", name, "attr", attr, "err", err)
		}
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// word returns a text attribute, "" when unknown.
func (s *Sensor) word(name, attr string) string {
	v, _ := s.read(name, attr)
	return v
}

// flag returns a 0/1 attribute, nil when unknown.
func (s *Sensor) flag(name, attr string) *bool {
	v, ok := s.read(name, attr)
	if !ok {
		return nil
	}
	switch v {
	case "1":
		return new(true)
	case "0":
		return new(false)
	}
	s.log.Debug("power supply flag is neither 0 nor 1, reported as unknown", "supply", name, "attr", attr, "value", v)
	return nil
}

// scaled returns the first of attrs that holds an integer, times scale;
// nil when none does.
func (s *Sensor) scaled(name string, scale float64, attrs ...string) *float64 {
	for _, attr := range attrs {
		v, ok := s.read(name, attr)
		if !ok {
			continue
		}
		n, err := parseInt(v)
		if err != nil {
			s.log.Debug("power supply attribute is not a number, reported as unknown", "supply", name, "attr", attr, "value", v)
			continue
		}
		return power.F(float64(n) * scale)
	}
	return nil
}

// parseInt parses a sysfs integer value.
func parseInt(v string) (int64, error) {
	return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
}

// chargeState turns the kernel's status into the reading's words.
func chargeState(status string) string {
	switch status {
	case "", "Unknown":
		return ""
	case "Charging":
		return "charging"
	case "Discharging":
		return "discharging"
	case "Full":
		return "full"
	case "Not charging":
		return "not charging"
	}
	return strings.ToLower(status)
}

// signed returns the current a in amps with the sign the reading wants
// (positive while charging), given the supply's status and the configured
// sign convention.
func signed(a float64, status, convention string) float64 {
	switch convention {
	case SignInverted:
		return -a
	case SignAuto:
		if (status == "Discharging" && a > 0) || (status == "Charging" && a < 0) {
			return -a
		}
	}
	return a
}
