package at

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.bug.st/serial"

	"github.com/outpost-cctv/outpost/hal/modem"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// Flavors: which command reads the LTE signal.
const (
	// Quectel asks AT+QENG="servingcell" (RSRP, RSRQ, RSSI, SINR, cell,
	// band), falling back to AT+CESQ when the modem refuses it.
	Quectel = "quectel"
	// Generic asks AT+CESQ (RSRP and RSRQ only).
	Generic = "generic"
)

// DefaultTimeout is how long a command may take; AT+COPS? can take a
// second or two while the modem is searching.
const DefaultTimeout = 3 * time.Second

// Opener opens the modem's command port.
type Opener func(ctx context.Context) (io.ReadWriteCloser, error)

// Status is everything one reading learns.
type Status struct {
	Time         time.Time
	Registration Registration
	Operator     Operator
	CSQ          CSQ
	LTE          LTE
}

// Modem reads a modem through AT commands, opening its port for each
// reading.
type Modem struct {
	name    string
	open    Opener
	flavor  string
	timeout time.Duration
	clk     clock.Clock
	log     *slog.Logger

	mu sync.Mutex // one reading at a time on the port
}

var _ modem.Modem = (*Modem)(nil)

// New returns a modem on the port open opens; name says which in errors.
// A flavor of "" means Generic; a timeout of 0 means DefaultTimeout.
func New(name string, open Opener, flavor string, timeout time.Duration, clk clock.Clock, log *slog.Logger) (*Modem, error) {
	switch flavor {
	case "":
		flavor = Generic
	case Generic, Quectel:
	default:
		return nil, fmt.Errorf("at: flavor %q is not known: use %s or %s", flavor, Quectel, Generic)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Modem{name: name, open: open, flavor: flavor, timeout: timeout, clk: clk, log: log.With("component", "modem-at", "port", name)}, nil
}

// Open returns a modem on the serial port at path (e.g. /dev/ttyUSB2). It
// does not touch the port until a reading.
func Open(path, flavor string, timeout time.Duration, clk clock.Clock, log *slog.Logger) (*Modem, error) {
	return New(path, SerialOpener(path), flavor, timeout, clk, log)
}

// SerialOpener opens path as a modem's AT command port, dropping whatever
// the modem sent while nobody listened.
func SerialOpener(path string) Opener {
	return func(ctx context.Context) (io.ReadWriteCloser, error) {
		p, err := serial.Open(path, &serial.Mode{BaudRate: 115200})
		if err != nil {
			return nil, fmt.Errorf("at: open %s: %w: check the modem is connected, that this is its AT port, and that the agent may use it (dialout group)", path, err)
		}
		if err := p.SetReadTimeout(100 * time.Millisecond); err != nil {
			p.Close()
			return nil, fmt.Errorf("at: %s: set read timeout: %w", path, err)
		}
		if err := p.ResetInputBuffer(); err != nil {
			p.Close()
			return nil, fmt.Errorf("at: %s: flush: %w", path, err)
		}
		return p, nil
	}
}

// Signal reads registration, operator and LTE signal.
func (m *Modem) Signal(ctx context.Context) (modem.Signal, error) {
	st, err := m.Status(ctx)
	if err != nil {
		return modem.Signal{}, err
	}
	s := modem.Signal{
		Time:       st.Time,
		Registered: st.Registration.Registered(),
		Operator:   st.Operator.Name,
		Tech:       st.Operator.Tech,
		RSRPdBm:    st.LTE.RSRPdBm,
		RSRQdB:     st.LTE.RSRQdB,
		SINRdB:     st.LTE.SINRdB,
	}
	if s.Tech == "" {
		s.Tech = TechName(st.Registration.AcT)
	}
	return s, nil
}

// Status opens the port, asks the modem, and closes the port. A command
// the modem refuses leaves its values unknown, except registration, which
// is required; a modem that does not answer fails the whole reading.
func (m *Modem) Status(ctx context.Context) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rwc, err := m.open(ctx)
	if err != nil {
		return Status{}, err
	}
	defer func() {
		if err := rwc.Close(); err != nil {
			m.log.Debug("close port", "err", err)
		}
	}()
	s := NewSession(rwc, func(line string) { m.log.Debug("unsolicited result code", "urc", line) })
	st := Status{Time: m.clk.Now(), Registration: Registration{AcT: -1}}

	// Echo off; a modem that refuses still answers, which is what counts.
	if _, err := s.Command(ctx, "ATE0", m.timeout); err != nil && !errors.Is(err, ErrError) {
		return Status{}, err
	}
	lines, err := s.Command(ctx, "AT+CEREG?", m.timeout)
	if err != nil {
		return Status{}, err
	}
	if st.Registration, err = ParseCEREG(lines); err != nil {
		return Status{}, err
	}
	refused := func(what string, err error) bool {
		if errors.Is(err, ErrError) {
			m.log.Debug("modem refused, reported as unknown", "what", what, "err", err)
			return true
		}
		return false
	}
	if lines, err := s.Command(ctx, "AT+COPS?", m.timeout); err == nil && len(lines) > 0 {
		if st.Operator, err = ParseCOPS(lines[0]); err != nil {
			m.log.Warn("bad +COPS answer, operator unknown", "err", err)
		}
	} else if err != nil && !refused("operator", err) {
		return Status{}, err
	}
	if lines, err := s.Command(ctx, "AT+CSQ", m.timeout); err == nil && len(lines) > 0 {
		if st.CSQ, err = ParseCSQ(lines[0]); err != nil {
			m.log.Warn("bad +CSQ answer, RSSI unknown", "err", err)
		}
	} else if err != nil && !refused("rssi", err) {
		return Status{}, err
	}
	cesq := m.flavor == Generic
	if m.flavor == Quectel {
		lines, err := s.Command(ctx, `AT+QENG="servingcell"`, m.timeout)
		switch {
		case err == nil:
			if st.LTE, err = ParseQENG(lines); err != nil {
				m.log.Warn("bad +QENG answer, signal unknown", "err", err)
			}
		case refused("servingcell", err):
			cesq = true
		default:
			return Status{}, err
		}
	}
	if cesq {
		if lines, err := s.Command(ctx, "AT+CESQ", m.timeout); err == nil && len(lines) > 0 {
			if st.LTE, err = ParseCESQ(lines[0]); err != nil {
				m.log.Warn("bad +CESQ answer, signal unknown", "err", err)
			}
		} else if err != nil && !refused("signal", err) {
			return Status{}, err
		}
	}
	return st, nil
}
