package at

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ErrNoAnswer means the modem sent no final result in time: it may be
// resetting, or the port may be its data port rather than its command
// port.
var ErrNoAnswer = errors.New("at: no answer from the modem")

// ErrError is wrapped by every error result of a command ("ERROR", "+CME
// ERROR", "+CMS ERROR"): the modem answered, but refused.
var ErrError = errors.New("at: command refused")

// ErrPortLost is wrapped by errors reading or writing the port: the modem
// was unplugged, reset or re-enumerated under the session.
var ErrPortLost = errors.New("at: port lost")

// CommandError is the modem's refusal of a command.
type CommandError struct {
	Command string
	// Result is the final result line, e.g. "ERROR" or "+CME ERROR: 10".
	Result string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("at: %s: modem answered %q", e.Command, e.Result)
}

// Unwrap returns ErrError.
func (e *CommandError) Unwrap() error { return ErrError }

// Port is the modem's command port. A Read that finds nothing within a
// short time returns (0, nil), so the session can notice its context
// ending; go.bug.st/serial ports with a read timeout behave so.
type Port interface {
	io.Reader
	io.Writer
}

const maxLine = 4096

// Session talks to one modem over one port. It is not safe for concurrent
// use: one command at a time.
type Session struct {
	port Port
	// URC receives each unsolicited result code; nil drops them.
	urc  func(line string)
	buf  []byte
	rbuf []byte
}

// NewSession returns a session on port; urc, if not nil, is called with each
// unsolicited result code.
func NewSession(port Port, urc func(line string)) *Session {
	return &Session{port: port, urc: urc, rbuf: make([]byte, 256)}
}

// Command sends cmd (e.g. "AT+CSQ") and returns its information response
// lines. It fails with a *CommandError when the modem refuses, and with
// ErrNoAnswer when no final result comes within timeout or before ctx
// ends.
func (s *Session) Command(ctx context.Context, cmd string, timeout time.Duration) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := io.WriteString(s.port, cmd+"\r"); err != nil {
		return nil, fmt.Errorf("%w: %s: write: %w: check the modem is still connected", ErrPortLost, cmd, err)
	}
	prefix := responsePrefix(cmd)
	var resp []string
	for {
		line, err := s.line(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w to %s in %s: it may be resetting, or the port may not be its AT command port: %w", ErrNoAnswer, cmd, timeout, ctx.Err())
			}
			return nil, fmt.Errorf("%w: %s: read: %w: check the modem is still connected", ErrPortLost, cmd, err)
		}
		switch {
		case line == "OK":
			return resp, nil
		case line == "ERROR", strings.HasPrefix(line, "+CME ERROR:"), strings.HasPrefix(line, "+CMS ERROR:"):
			return resp, &CommandError{Command: cmd, Result: line}
		case strings.EqualFold(line, cmd):
			// echo
		case prefix != "" && strings.HasPrefix(line, prefix):
			resp = append(resp, line)
		default:
			if s.urc != nil {
				s.urc(line)
			}
		}
	}
}

// responsePrefix is the prefix of the information response to cmd:
// "+CSQ:" for "AT+CSQ", "+QENG:" for `AT+QENG="servingcell"`, "" for
// commands without one.
func responsePrefix(cmd string) string {
	c := strings.ToUpper(cmd)
	if !strings.HasPrefix(c, "AT+") {
		return ""
	}
	name := c[2:]
	if i := strings.IndexAny(name, "=?"); i >= 0 {
		name = name[:i]
	}
	return name + ":"
}

// clean drops what line noise leaves in a line: control characters,
// bytes that are not UTF-8, and spaces around it.
func clean(b []byte) string {
	keep := b[:0:0]
	for _, c := range b {
		if c >= 0x20 && c != 0x7f {
			keep = append(keep, c)
		}
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(keep), ""))
}

// line returns the next non-blank line, cleaned of line noise.
func (s *Session) line(ctx context.Context) (string, error) {
	for {
		if i := bytes.IndexAny(s.buf, "\r\n"); i >= 0 {
			line := clean(s.buf[:i])
			s.buf = s.buf[i+1:]
			if line != "" {
				return line, nil
			}
			continue
		}
		if len(s.buf) > maxLine {
			s.buf = s.buf[:0] // a line this long is noise
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := s.port.Read(s.rbuf)
		s.buf = append(s.buf, s.rbuf[:n]...)
		if err != nil {
			return "", err
		}
	}
}
