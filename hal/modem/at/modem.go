package at

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"go.bug.st/serial"

	"github.com/outpost-cctv/outpost/hal/modem"
	"github.com/outpost-cctv/outpost/internal/backoff"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// Flavors: which command reads the LTE signal.
const (
	// Quectel asks AT+QENG="servingcell" (RSRP, RSRQ, RSSI, SINR, cell,
	// band, and the NR cell in 5G), falling back to AT+CESQ when the modem
	// refuses it.
	Quectel = "quectel"
	// SIMCom asks AT+CPSI? (RSRP, RSRQ, RSSI, SINR, cell, band), falling
	// back to AT+CESQ when the modem refuses it.
	SIMCom = "simcom"
	// Generic asks AT+CESQ (RSRP and RSRQ only).
	Generic = "generic"
)

// DefaultTimeout is how long a command may take; AT+COPS? can take a
// second or two while the modem is searching.
const DefaultTimeout = 3 * time.Second

// RetryMin and RetryMax bound the wait before the port is tried again after
// a reading failed because the port could not be opened, vanished, or the
// modem did not answer: RetryMin after the first failure, doubling (with
// jitter) up to RetryMax.
const (
	RetryMin = 10 * time.Second
	RetryMax = 5 * time.Minute
)

// Opener opens the modem's command port.
type Opener func(ctx context.Context) (io.ReadWriteCloser, error)

// Status is everything one reading learns.
type Status struct {
	Time         time.Time
	Registration Registration
	Operator     Operator
	CSQ          CSQ
	LTE          LTE
	// NR is the 5G NR cell, zero when the modem is not on one or its
	// flavor does not say.
	NR NR
	// Tech is the radio technology the flavor's serving-cell command
	// reports, empty when it does not.
	Tech string
}

// UnavailableError is returned, without touching the port, while the modem
// is left alone after failed readings.
type UnavailableError struct {
	Port string
	// Until is when the port will be tried again.
	Until time.Time
	// Failures is the number of failed readings in a row.
	Failures int
	// Last is the last reading's error.
	Last error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("at: %s: not tried again until %s after %d failed readings in a row; last: %v",
		e.Port, e.Until.UTC().Format(time.TimeOnly), e.Failures, e.Last)
}

// Unwrap returns the last reading's error.
func (e *UnavailableError) Unwrap() error { return e.Last }

// Modem reads a modem through AT commands, opening its port for each
// reading.
type Modem struct {
	name    string
	open    Opener
	flavor  string
	timeout time.Duration
	clk     clock.Clock
	log     *slog.Logger

	// sem holds the port for one reading at a time; a channel rather than
	// a mutex so a caller waiting for it can give up when its context ends.
	sem chan struct{}
	// The fields below are guarded by sem.
	retry    *backoff.Backoff
	retryAt  time.Time
	failures int
	lastErr  error
}

var (
	_ modem.Modem = (*Modem)(nil)
	_ modem.Clock = (*Modem)(nil)
)

// New returns a modem on the port open opens; name says which in errors.
// A flavor of "" means Generic; a timeout of 0 means DefaultTimeout.
func New(name string, open Opener, flavor string, timeout time.Duration, clk clock.Clock, log *slog.Logger) (*Modem, error) {
	switch flavor {
	case "":
		flavor = Generic
	case Generic, Quectel, SIMCom:
	default:
		return nil, fmt.Errorf("at: flavor %q is not known: use %s, %s or %s", flavor, Quectel, SIMCom, Generic)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Modem{
		name: name, open: open, flavor: flavor, timeout: timeout, clk: clk,
		log: log.With("component", "modem-at", "port", name),
		sem: make(chan struct{}, 1), retry: backoff.New(RetryMin, RetryMax),
	}, nil
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

// Signal reads registration, operator, cell and signal. RSSI comes from
// the serving-cell command when it gives one, otherwise from AT+CSQ.
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
		RSSIdBm:    st.LTE.RSSIdBm,
		CellID:     st.LTE.CellID,
		TAC:        st.LTE.TAC,
		Band:       st.LTE.Band,
		NRRSRPdBm:  st.NR.RSRPdBm,
		NRRSRQdB:   st.NR.RSRQdB,
		NRSINRdB:   st.NR.SINRdB,
	}
	if s.Tech == "" {
		s.Tech = st.Tech
	}
	if s.Tech == "" {
		s.Tech = TechName(st.Registration.AcT)
	}
	if s.RSSIdBm == nil {
		s.RSSIdBm = st.CSQ.RSSIdBm
	}
	if s.CellID == "" {
		s.CellID = hexID(st.Registration.CellID)
	}
	if s.TAC == "" {
		s.TAC = hexID(st.Registration.TAC)
	}
	if s.Band == 0 && st.LTE.RSRPdBm == nil {
		s.Band = st.NR.Band // 5G SA: the NR cell is the serving cell
	}
	return s, nil
}

// Clock reads the modem's real-time clock (AT+CCLK?), which the network
// sets when the modem registers: a fallback time source for a unit that
// has neither NTP nor GNSS. It fails with ErrClockNotSet while the clock
// still holds its power-on default.
func (m *Modem) Clock(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := m.withSession(ctx, func(s *Session) error {
		lines, err := s.Command(ctx, "AT+CCLK?", m.timeout)
		if err != nil {
			return err
		}
		for _, l := range lines {
			if t, err = ParseCCLK(l); err == nil || errors.Is(err, ErrClockNotSet) {
				return err
			}
		}
		return fmt.Errorf("at: %s: no valid +CCLK answer in %q: the modem's clock cannot be read", m.name, lines)
	})
	return t, err
}

// Status opens the port, asks the modem, and closes the port. A command
// the modem refuses leaves its values unknown, except registration, which
// is required; a modem that does not answer fails the whole reading.
func (m *Modem) Status(ctx context.Context) (Status, error) {
	var st Status
	err := m.withSession(ctx, func(s *Session) error {
		var err error
		st, err = m.status(ctx, s)
		return err
	})
	return st, err
}

// withSession runs fn on a session over a freshly opened port, one at a
// time, and closes the port afterwards. After a reading fails because the
// port cannot be opened, vanishes, or the modem does not answer, the port
// is left alone for a growing while (RetryMin to RetryMax): a modem that is
// resetting or re-enumerating is not hammered, and readings meanwhile fail
// at once with an *UnavailableError.
func (m *Modem) withSession(ctx context.Context, fn func(*Session) error) error {
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("at: %s: waiting for the port: %w", m.name, ctx.Err())
	}
	defer func() { <-m.sem }()
	if now := m.clk.Now(); now.Before(m.retryAt) {
		return &UnavailableError{Port: m.name, Until: m.retryAt, Failures: m.failures, Last: m.lastErr}
	}
	err := m.session(ctx, fn)
	switch {
	case err == nil || !portFailure(err):
		if m.failures > 0 {
			m.log.Info("modem answers again", "failed_readings", m.failures)
		}
		m.failures, m.lastErr, m.retryAt = 0, nil, time.Time{}
		m.retry.Reset()
	case errors.Is(ctx.Err(), context.Canceled):
		// The caller gave up (the agent is stopping); that says nothing
		// about the modem.
	default:
		m.failures++
		m.lastErr = err
		wait := m.retry.Next()
		m.retryAt = m.clk.Now().Add(wait)
		if m.failures == 1 {
			m.log.Warn("modem unavailable, readings unknown until it answers", "err", err, "retry_in", wait)
		} else {
			m.log.Debug("modem still unavailable", "err", err, "failures", m.failures, "retry_in", wait)
		}
	}
	return err
}

// portFailure reports whether err means the port or the modem is gone or
// mute, rather than the modem answering something unexpected.
func portFailure(err error) bool {
	return errors.Is(err, ErrNoAnswer) || errors.Is(err, ErrPortLost) || errors.Is(err, errOpen)
}

// errOpen marks a failure to open the port.
var errOpen = errors.New("at: open failed")

type openError struct{ err error }

func (e openError) Error() string   { return e.err.Error() }
func (e openError) Unwrap() []error { return []error{e.err, errOpen} }

func (m *Modem) session(ctx context.Context, fn func(*Session) error) error {
	rwc, err := m.open(ctx)
	if err != nil {
		return openError{err}
	}
	defer func() {
		if err := rwc.Close(); err != nil {
			m.log.Debug("close port", "err", err)
		}
	}()
	s := NewSession(rwc, func(line string) {
		if line == "RDY" {
			m.log.Info("modem restarted (RDY)")
			return
		}
		m.log.Debug("unsolicited result code", "urc", line)
	})
	// Echo off; a modem that refuses still answers, which is what counts.
	if _, err := s.Command(ctx, "ATE0", m.timeout); err != nil && !errors.Is(err, ErrError) {
		return err
	}
	return fn(s)
}

func (m *Modem) status(ctx context.Context, s *Session) (Status, error) {
	st := Status{Time: m.clk.Now(), Registration: Registration{AcT: -1}}
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
		if st.CSQ, err = ParseCSQ(lines[len(lines)-1]); err != nil {
			m.log.Warn("bad +CSQ answer, RSSI unknown", "err", err)
		}
	} else if err != nil && !refused("rssi", err) {
		return Status{}, err
	}
	cesq := m.flavor == Generic
	switch m.flavor {
	case Quectel:
		lines, err := s.Command(ctx, `AT+QENG="servingcell"`, m.timeout)
		switch {
		case err == nil:
			if st.LTE, err = ParseQENG(lines); err != nil {
				m.log.Warn("bad +QENG answer, signal unknown", "err", err)
			}
			if st.NR, err = ParseQENGNR(lines); err != nil {
				m.log.Warn("bad +QENG answer, 5G signal unknown", "err", err)
			}
		case refused("servingcell", err):
			cesq = true
		default:
			return Status{}, err
		}
	case SIMCom:
		lines, err := s.Command(ctx, "AT+CPSI?", m.timeout)
		switch {
		case err == nil:
			c, err := ParseCPSI(lines)
			if err != nil {
				m.log.Warn("bad +CPSI answer, signal unknown", "err", err)
				break
			}
			st.LTE, st.NR, st.Tech = c.LTE, c.NR, c.Tech
		case refused("cpsi", err):
			cesq = true
		default:
			return Status{}, err
		}
	}
	if cesq {
		if lines, err := s.Command(ctx, "AT+CESQ", m.timeout); err == nil && len(lines) > 0 {
			if st.LTE, err = ParseCESQ(lines[len(lines)-1]); err != nil {
				m.log.Warn("bad +CESQ answer, signal unknown", "err", err)
			}
		} else if err != nil && !refused("signal", err) {
			return Status{}, err
		}
	}
	return st, nil
}
