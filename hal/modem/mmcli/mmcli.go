package mmcli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/hal/modem"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// Defaults for the Config fields left zero.
const (
	DefaultPath       = "mmcli"
	DefaultModem      = "any"
	DefaultTimeout    = 5 * time.Second
	DefaultSignalRate = 10 * time.Second
)

// Config says how to reach ModemManager.
type Config struct {
	// Path is the mmcli binary, a path or a name looked up in PATH;
	// default "mmcli".
	Path string
	// Modem selects the modem: its index ("0"), its D-Bus path, or "any",
	// the first modem; default "any", which follows the modem when it
	// re-appears under a new index.
	Modem string
	// Timeout bounds each run of mmcli (1 s to 1 min); default 5 s.
	Timeout time.Duration
	// SignalRate is how often ModemManager polls the modem's signal, set
	// with --signal-setup (1 s to 1 h, whole seconds); default 10 s.
	SignalRate time.Duration
	// Clock stamps readings; default the system clock.
	Clock clock.Clock
}

// Validate checks the configuration before anything runs.
func (c Config) Validate() error {
	var errs []error
	if strings.ContainsAny(c.Modem, " \t\n") || strings.HasPrefix(c.Modem, "-") {
		errs = append(errs, fmt.Errorf("mmcli: modem %q is not a modem: give its index (0), its D-Bus path, or any", c.Modem))
	}
	if c.Timeout != 0 && (c.Timeout < time.Second || c.Timeout > time.Minute) {
		errs = append(errs, fmt.Errorf("mmcli: timeout %s is outside 1s..1m", c.Timeout))
	}
	if c.SignalRate != 0 && (c.SignalRate < time.Second || c.SignalRate > time.Hour || c.SignalRate%time.Second != 0) {
		errs = append(errs, fmt.Errorf("mmcli: signal rate %s is not a whole number of seconds within 1s..1h", c.SignalRate))
	}
	return errors.Join(errs...)
}

// Modem reads a modem through mmcli. It is safe for concurrent use.
type Modem struct {
	path, modem string
	timeout     time.Duration
	rate        int // seconds
	clk         clock.Clock
	log         *slog.Logger

	mu sync.Mutex // guards the fields below
	// setUp is the D-Bus path of the modem object the signal was set up
	// on, "" before.
	setUp string
	// lastWarn is the last warning logged, so a repeated one is not.
	lastWarn string
}

var (
	_ modem.Modem          = (*Modem)(nil)
	_ modem.TrafficCounter = (*Modem)(nil)
)

// New returns a modem read through mmcli. It runs nothing until a reading.
func New(cfg Config, log *slog.Logger) (*Modem, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Modem{path: cfg.Path, modem: cfg.Modem, timeout: cfg.Timeout, clk: cfg.Clock}
	if m.path == "" {
		m.path = DefaultPath
	}
	if m.modem == "" {
		m.modem = DefaultModem
	}
	if m.timeout == 0 {
		m.timeout = DefaultTimeout
	}
	m.rate = int(DefaultSignalRate / time.Second)
	if cfg.SignalRate != 0 {
		m.rate = int(cfg.SignalRate / time.Second)
	}
	if m.clk == nil {
		m.clk = clock.Real{}
	}
	m.log = log.With("component", "modem-mmcli", "modem", m.modem)
	return m, nil
}

// Signal reads registration, operator, technology and signal. A modem
// ModemManager does not know fails the reading; signal values ModemManager
// cannot give are unknown (nil), with a warning in the log.
func (m *Modem) Signal(ctx context.Context) (modem.Signal, error) {
	st, err := m.Status(ctx)
	if err != nil {
		return modem.Signal{}, err
	}
	s := modem.Signal{
		Time:       m.clk.Now(),
		Registered: st.Registered(),
		Operator:   st.Operator,
		Tech:       st.Tech(),
		QualityPct: st.QualityPct,
	}
	if err := m.setupSignal(ctx, st.DBusPath); err != nil {
		m.warn("signal set-up failed, signal unknown", err)
		return s, nil
	}
	out, err := m.run(ctx, "-m", m.modem, "--signal-get", "-J")
	var ms Measurements
	if err == nil {
		ms, err = ParseSignal(out)
	}
	if err != nil {
		m.warn("signal unknown", err)
		return s, nil
	}
	if ms.Rate == 0 {
		// ModemManager forgot the set-up (it restarted): set up again at
		// the next reading; this one's values are all unknown anyway.
		m.mu.Lock()
		m.setUp = ""
		m.mu.Unlock()
	}
	s.RSRPdBm, s.RSRQdB, s.SINRdB, s.RSSIdBm = ms.LTERSRPdBm, ms.LTERSRQdB, ms.LTESNRdB, ms.LTERSSIdBm
	s.NRRSRPdBm, s.NRRSRQdB, s.NRSINRdB = ms.NRRSRPdBm, ms.NRRSRQdB, ms.NRSNRdB
	if s.RSSIdBm == nil {
		s.RSSIdBm = ms.UMTSRSSIdBm
	}
	if s.RSSIdBm == nil {
		s.RSSIdBm = ms.GSMRSSIdBm
	}
	m.mu.Lock()
	m.lastWarn = ""
	m.mu.Unlock()
	return s, nil
}

// Status runs `mmcli -m <modem> -J`.
func (m *Modem) Status(ctx context.Context) (Status, error) {
	out, err := m.run(ctx, "-m", m.modem, "-J")
	if err != nil {
		return Status{}, err
	}
	st, err := ParseStatus(out)
	if err != nil {
		return Status{}, fmt.Errorf("%w, from %s -m %s -J: check the path is ModemManager's mmcli, 1.10 or later", err, m.path, m.modem)
	}
	return st, nil
}

// setupSignal runs --signal-setup unless it already ran for the modem
// object at dbusPath.
func (m *Modem) setupSignal(ctx context.Context, dbusPath string) error {
	m.mu.Lock()
	done := m.setUp != "" && m.setUp == dbusPath
	m.mu.Unlock()
	if done {
		return nil
	}
	if _, err := m.run(ctx, "-m", m.modem, "--signal-setup="+strconv.Itoa(m.rate)); err != nil {
		return err
	}
	m.log.Info("signal polling set up", "rate_s", m.rate, "dbus_path", dbusPath)
	m.mu.Lock()
	m.setUp = dbusPath
	if dbusPath == "" {
		m.setUp = "?" // unknown path: do not set up again at each reading
	}
	m.mu.Unlock()
	return nil
}

// Traffic sums the byte counters of the modem's bearers. A modem without a
// bearer is not connected and has carried nothing (zero counters); a
// bearer mmcli cannot read fails the reading.
func (m *Modem) Traffic(ctx context.Context) (modem.Traffic, error) {
	st, err := m.Status(ctx)
	if err != nil {
		return modem.Traffic{}, err
	}
	t := modem.Traffic{Time: m.clk.Now()}
	if len(st.Bearers) == 0 {
		var zero uint64
		t.RxBytes, t.TxBytes, t.TotalRxBytes, t.TotalTxBytes = &zero, &zero, &zero, &zero
		return t, nil
	}
	add := func(sum **uint64, v *uint64) {
		if v == nil {
			return
		}
		if *sum == nil {
			*sum = new(uint64)
		}
		**sum += *v
	}
	for _, path := range st.Bearers {
		out, err := m.run(ctx, "-b", path, "-J")
		if err != nil {
			return modem.Traffic{}, err
		}
		b, err := ParseBearer(out)
		if err != nil {
			return modem.Traffic{}, fmt.Errorf("mmcli: bearer %s: %w", path, err)
		}
		add(&t.RxBytes, b.RxBytes)
		add(&t.TxBytes, b.TxBytes)
		add(&t.TotalRxBytes, b.TotalRxBytes)
		add(&t.TotalTxBytes, b.TotalTxBytes)
		if b.Connected {
			if !t.Connected || (b.Duration != nil && (t.Duration == nil || *b.Duration > *t.Duration)) {
				t.Interface, t.Duration = b.Interface, b.Duration
			}
			t.Connected = true
		}
	}
	return t, nil
}

// warn logs a warning, once until it changes or a reading succeeds, so a
// modem without signal support does not fill the log.
func (m *Modem) warn(msg string, err error) {
	m.mu.Lock()
	repeated := m.lastWarn == err.Error()
	m.lastWarn = err.Error()
	m.mu.Unlock()
	if repeated {
		m.log.Debug(msg, "err", err)
		return
	}
	m.log.Warn(msg, "err", err)
}

// maxOutput bounds what is kept of mmcli's output: its JSON is a few
// kilobytes.
const maxOutput = 1 << 20

// capped keeps the first maxOutput bytes written to it and drops the rest.
type capped struct{ bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := maxOutput - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// run runs mmcli with args within the timeout and returns its standard
// output. Its errors quote mmcli's standard error.
func (m *Modem) run(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	line := m.path + " " + strings.Join(args, " ")
	cmd := exec.CommandContext(ctx, m.path, args...)
	var stdout, stderr capped
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// If mmcli left a child holding its output open, stop waiting for it.
	cmd.WaitDelay = 500 * time.Millisecond
	killGroup(cmd)
	err := cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	switch {
	case err == nil:
		return stdout.Bytes(), nil
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("mmcli: %s: %w: install ModemManager (apt install modemmanager) or set the path to mmcli", line, err)
	case ctx.Err() != nil:
		if msg != "" {
			msg = " (stderr: " + strconv.Quote(msg) + ")"
		}
		return nil, fmt.Errorf("mmcli: %s: no answer in time%s: ModemManager may be busy or stuck; check systemctl status ModemManager: %w", line, msg, ctx.Err())
	case msg == "":
		return nil, fmt.Errorf("mmcli: %s: %w, with nothing on stderr", line, err)
	}
	return nil, fmt.Errorf("mmcli: %s: %w: %s%s", line, err, msg, hint(msg))
}

// hint says what to do about mmcli's usual complaints.
func hint(stderr string) string {
	s := strings.ToLower(stderr)
	switch {
	case strings.Contains(s, "couldn't find modem"), strings.Contains(s, "couldn't find the modem"):
		return ": check the modem is plugged in and listed by mmcli -L"
	case strings.Contains(s, "modemmanager1 was not provided"), strings.Contains(s, "couldn't create manager"),
		strings.Contains(s, "modemmanager is not running"), strings.Contains(s, "couldn't get bus"):
		return ": check ModemManager runs: systemctl status ModemManager"
	case strings.Contains(s, "not authorized"), strings.Contains(s, "permission"):
		return ": the agent may not use ModemManager; run it as a user the D-Bus policy allows"
	case strings.Contains(s, "couldn't find bearer"):
		return ": the bearer went away (the modem disconnected); it is read again next time"
	}
	return ""
}
