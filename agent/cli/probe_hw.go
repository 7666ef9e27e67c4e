package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/outpost-cctv/outpost/agent"
	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/hal/gpio"
	"github.com/outpost-cctv/outpost/hal/gpio/board"
	"github.com/outpost-cctv/outpost/hal/modem"
	"github.com/outpost-cctv/outpost/hal/power"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// The field engineer's probes of the power system, the modem and the GPIO
// pins: one reading through the same drivers `outpost run` uses, printed
// in plain words (or --json), with what to check when it fails.

func probePowerUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: outpost probe power [--driver D] [flags]

Takes one reading of the power system and prints it: battery volts, amps
and state of charge, solar panel volts and watts, load, charge state and
yield today. Values the hardware does not report print as "-" (null in
--json), never as a made-up zero.

Drivers: vedirect (--port /dev/ttyUSB0), ina219 and ina226 (--bus 1
--address 0x40 --shunt 0.1), sysfs (--name SUPPLY), sim. Without
--driver, power.source of --config.

Flags:
`)
}

func probeModemUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: outpost probe modem [--driver D] [flags]

Asks the cellular modem once for its registration, operator and signal
(RSRP, RSRQ, SINR, RSSI, cell and band) and prints them.

Drivers: at (--port /dev/ttyUSB2 --flavor quectel|simcom|generic), mmcli
(--modem any), sim. Without --driver, modem.source of --config.

Flags:
`)
}

func probeGPIOUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: outpost probe gpio [--config FILE] [--pin NAME ...]

Reads the level of each input once: the PIR sensor and the tamper switch
of --config (gpio.pir, gpio.tamper), and any --pin given (GPIO17, ...).

Flags:
`)
}

// pinList is a repeatable --pin flag.
type pinList []string

func (p *pinList) String() string     { return strings.Join(*p, ",") }
func (p *pinList) Set(s string) error { *p = append(*p, s); return nil }

// loadProbeConfig reads --config, or the defaults.
func loadProbeConfig(env Env, path, cmd string) (config.Config, bool) {
	if path == "" {
		return config.Default(), true
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(env.Stderr, "outpost probe %s: %v\n", cmd, err)
		return cfg, false
	}
	return cfg, true
}

func probePowerCmd(ctx context.Context, env Env, args []string) int {
	fs := newFlagSet("probe power", env)
	fs.Usage = func() { probePowerUsage(env.Stderr); fs.PrintDefaults() }
	cfgPath := fs.String("config", "", "take the power settings from this config file")
	driver := fs.String("driver", "", "vedirect, ina219, ina226, sysfs or sim (default power.source of --config)")
	port := fs.String("port", "", "VE.Direct serial port (default power.vedirect.port)")
	bus := fs.String("bus", "", "I²C bus of an INA219/INA226 (default power.ina.bus)")
	addr := fs.Int("address", 0, "I²C address of an INA219/INA226 (default power.ina.address)")
	shunt := fs.Float64("shunt", 0, "shunt resistor in ohms (default power.ina.shunt_ohms)")
	name := fs.String("name", "", "sysfs power supply to read (default: the first battery)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for a reading")
	asJSON := fs.Bool("json", false, "print the reading as JSON")
	if fs.Parse(args) != nil {
		return agent.ExitUsage
	}
	cfg, ok := loadProbeConfig(env, *cfgPath, "power")
	if !ok {
		return agent.ExitUsage
	}
	p := &cfg.Power
	for flag, set := range map[*string]*string{driver: &p.Source, port: &p.VEDirect.Port, bus: &p.INA.Bus, name: &p.Sysfs.Name} {
		if *flag != "" {
			*set = *flag
		}
	}
	if *addr != 0 {
		p.INA.Address = *addr
	}
	if *shunt != 0 {
		p.INA.ShuntOhms = *shunt
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(env.Stderr, "outpost probe power:", strings.TrimPrefix(err.Error(), "config: "))
		return agent.ExitUsage
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sensor, err := agent.NewPower(cfg, clock.Real{}, log)
	if err != nil {
		fmt.Fprintln(env.Stderr, "outpost probe power:", err)
		return agent.ExitUsage
	}
	rctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	r, err := sensor.Read(rctx)
	if err != nil {
		fmt.Fprintln(env.Stderr, "outpost probe power:", err)
		return agent.ExitFailure
	}
	if *asJSON {
		return printJSON(env, powerJSON(r))
	}
	where := map[string]string{"vedirect": " on " + p.VEDirect.Port, "ina219": fmt.Sprintf(" at %#x on I²C bus %s", p.INA.Address, p.INA.Bus),
		"ina226": fmt.Sprintf(" at %#x on I²C bus %s", p.INA.Address, p.INA.Bus), "sysfs": " under " + p.Sysfs.Root}[p.Source]
	w := env.Stdout
	fmt.Fprintf(w, "power: %s%s, read at %s\n", p.Source, where, r.Time.Local().Format("2006-01-02 15:04:05"))
	fmt.Fprintf(w, "  battery        %s   %s   state of charge %s\n", num(r.BatteryV, "%.2f V"), num(r.BatteryA, "%+.2f A"), num(r.SOCPercent, "%.0f %%"))
	fmt.Fprintf(w, "  solar panel    %s   %s\n", num(r.PanelV, "%.2f V"), num(r.PanelW, "%.0f W"))
	fmt.Fprintf(w, "  load           %s\n", num(r.LoadW, "%.1f W"))
	fmt.Fprintf(w, "  charge state   %s\n", orDash(r.ChargeState))
	fmt.Fprintf(w, "  yield today    %s\n", num(r.YieldTodayWh, "%.0f Wh"))
	return agent.ExitOK
}

func powerJSON(r power.Reading) any {
	return struct {
		Time         time.Time `json:"time"`
		BatteryV     *float64  `json:"battery_v"`
		BatteryA     *float64  `json:"battery_a"`
		SOCPercent   *float64  `json:"soc_pct"`
		PanelV       *float64  `json:"panel_v"`
		PanelW       *float64  `json:"panel_w"`
		LoadW        *float64  `json:"load_w"`
		ChargeState  string    `json:"charge_state"`
		YieldTodayWh *float64  `json:"yield_today_wh"`
	}{r.Time.UTC(), r.BatteryV, r.BatteryA, r.SOCPercent, r.PanelV, r.PanelW, r.LoadW, r.ChargeState, r.YieldTodayWh}
}

func probeModemCmd(ctx context.Context, env Env, args []string) int {
	fs := newFlagSet("probe modem", env)
	fs.Usage = func() { probeModemUsage(env.Stderr); fs.PrintDefaults() }
	cfgPath := fs.String("config", "", "take the modem settings from this config file")
	driver := fs.String("driver", "", "at, mmcli or sim (default modem.source of --config)")
	port := fs.String("port", "", "the modem's AT command port (default modem.at.port)")
	flavor := fs.String("flavor", "", "quectel, simcom or generic (default modem.at.flavor)")
	which := fs.String("modem", "", "mmcli: the modem's index, D-Bus path or any (default modem.mmcli.modem)")
	timeout := fs.Duration("timeout", 20*time.Second, "how long to wait for the modem")
	asJSON := fs.Bool("json", false, "print the reading as JSON")
	if fs.Parse(args) != nil {
		return agent.ExitUsage
	}
	cfg, ok := loadProbeConfig(env, *cfgPath, "modem")
	if !ok {
		return agent.ExitUsage
	}
	m := &cfg.Modem
	for flag, set := range map[*string]*string{driver: &m.Source, port: &m.AT.Port, flavor: &m.AT.Flavor, which: &m.MMCLI.Modem} {
		if *flag != "" {
			*set = *flag
		}
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(env.Stderr, "outpost probe modem:", strings.TrimPrefix(err.Error(), "config: "))
		return agent.ExitUsage
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	md, err := agent.NewModem(cfg, clock.Real{}, log)
	if err != nil {
		fmt.Fprintln(env.Stderr, "outpost probe modem:", err)
		return agent.ExitUsage
	}
	rctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	s, err := md.Signal(rctx)
	if err != nil {
		fmt.Fprintln(env.Stderr, "outpost probe modem:", err)
		return agent.ExitFailure
	}
	var clk time.Time
	var clkErr error
	if c, ok := md.(modem.Clock); ok {
		clk, clkErr = c.Clock(rctx)
	}
	if *asJSON {
		out := map[string]any{
			"time": s.Time.UTC(), "registered": s.Registered, "operator": s.Operator, "tech": s.Tech,
			"rsrp_dbm": s.RSRPdBm, "rsrq_db": s.RSRQdB, "sinr_db": s.SINRdB, "rssi_dbm": s.RSSIdBm,
			"cell_id": s.CellID, "tac": s.TAC, "band": s.Band, "quality": s.Quality(),
			"nr_rsrp_dbm": s.NRRSRPdBm, "nr_rsrq_db": s.NRRSRQdB, "nr_sinr_db": s.NRSINRdB,
		}
		if !clk.IsZero() {
			out["modem_clock"] = clk.UTC()
		}
		return printJSON(env, out)
	}
	where := map[string]string{"at": fmt.Sprintf(" (%s) on %s", m.AT.Flavor, m.AT.Port), "mmcli": " (ModemManager, modem " + m.MMCLI.Modem + ")"}[m.Source]
	w := env.Stdout
	fmt.Fprintf(w, "modem: %s%s, read at %s\n", m.Source, where, s.Time.Local().Format("2006-01-02 15:04:05"))
	reg := "no"
	if s.Registered {
		reg = "yes"
	}
	fmt.Fprintf(w, "  registered     %s   operator %s   technology %s\n", reg, orDash(s.Operator), orDash(s.Tech))
	fmt.Fprintf(w, "  signal         RSRP %s   RSRQ %s   SINR %s   RSSI %s   quality: %s\n",
		num(s.RSRPdBm, "%.0f dBm"), num(s.RSRQdB, "%.1f dB"), num(s.SINRdB, "%.1f dB"), num(s.RSSIdBm, "%.0f dBm"), s.Quality())
	if s.NRRSRPdBm != nil {
		fmt.Fprintf(w, "  5G NR          RSRP %s   RSRQ %s   SINR %s\n", num(s.NRRSRPdBm, "%.0f dBm"), num(s.NRRSRQdB, "%.1f dB"), num(s.NRSINRdB, "%.1f dB"))
	}
	band := "-"
	if s.Band > 0 {
		band = fmt.Sprint(s.Band)
	}
	fmt.Fprintf(w, "  cell           %s   TAC %s   band %s\n", orDash(s.CellID), orDash(s.TAC), band)
	switch {
	case !clk.IsZero():
		fmt.Fprintf(w, "  modem clock    %s (system clock %+.0f s)\n", clk.UTC().Format("2006-01-02 15:04:05 UTC"), time.Since(clk).Seconds())
	case clkErr != nil:
		fmt.Fprintf(w, "  modem clock    - (%v)\n", clkErr)
	}
	return agent.ExitOK
}

func probeGPIOCmd(ctx context.Context, env Env, args []string) int {
	fs := newFlagSet("probe gpio", env)
	fs.Usage = func() { probeGPIOUsage(env.Stderr); fs.PrintDefaults() }
	cfgPath := fs.String("config", "", "read the inputs of this config file (gpio.pir, gpio.tamper)")
	var pins pinList
	fs.Var(&pins, "pin", "also read this pin (repeatable), e.g. GPIO17")
	asJSON := fs.Bool("json", false, "print the levels as JSON")
	if fs.Parse(args) != nil {
		return agent.ExitUsage
	}
	cfg, ok := loadProbeConfig(env, *cfgPath, "gpio")
	if !ok {
		return agent.ExitUsage
	}
	var inputs []gpio.ProbeInput
	for _, in := range []struct {
		name string
		c    config.GPIOInput
	}{{"pir", cfg.GPIO.PIR}, {"tamper", cfg.GPIO.Tamper}} {
		if in.c.Pin != "" {
			inputs = append(inputs, gpio.ProbeInput{Name: in.name, Config: gpio.InputConfig{Pin: in.c.Pin, ActiveLow: in.c.ActiveLow, Pull: gpio.Pull(in.c.Pull), Debounce: in.c.Debounce.D()}})
		}
	}
	for _, p := range pins {
		inputs = append(inputs, gpio.ProbeInput{Name: p, Config: gpio.InputConfig{Pin: p, Pull: "none"}})
	}
	if len(inputs) == 0 {
		fmt.Fprintln(env.Stderr, "outpost probe gpio: no input to read: give --config with gpio.pir or gpio.tamper set, or --pin NAME")
		return agent.ExitUsage
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	res := gpio.Probe(ctx, board.Lookup(log), inputs)
	code := agent.ExitOK
	if *asJSON {
		type row struct {
			Name   string `json:"name"`
			Pin    string `json:"pin"`
			High   bool   `json:"high"`
			Active bool   `json:"active"`
			Error  string `json:"error,omitempty"`
		}
		var rows []row
		for _, r := range res {
			rw := row{Name: r.Name, Pin: r.Pin, High: r.High, Active: r.Active}
			if r.Err != nil {
				rw.Error, code = r.Err.Error(), agent.ExitFailure
			}
			rows = append(rows, rw)
		}
		if c := printJSON(env, rows); c != agent.ExitOK {
			return c
		}
		return code
	}
	for _, r := range res {
		fmt.Fprintln(env.Stdout, r)
		if r.Err != nil {
			code = agent.ExitFailure
		}
	}
	return code
}

func num(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printJSON(env Env, v any) int {
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(env.Stderr, "outpost:", err)
		return agent.ExitFailure
	}
	return agent.ExitOK
}
