// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)): a process started by systemd with Type=notify tells the
// service manager it is ready, how it is doing, that it is stopping, and
// that it is alive (the watchdog), by sending short datagrams to the unix
// socket named in $NOTIFY_SOCKET.
//
// The protocol is newline-separated KEY=VALUE assignments in one datagram,
// for example "READY=1\nSTATUS=6/6 components running". A socket name that
// starts with '@' is in the abstract namespace. The watchdog interval is
// given in $WATCHDOG_USEC (microseconds) and applies to the process whose
// id is in $WATCHDOG_PID when that is set; a service must send WATCHDOG=1
// at least that often, and conventionally does so at half the interval.
//
// It is a few dozen lines written here rather than a dependency so that the
// unit's binary stays small and the protocol is visible where it is used.
package sdnotify

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// The assignments the agent sends.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
	Watchdog = "WATCHDOG=1"
)

// Status returns a STATUS= assignment with a one-line, human-readable
// status, as `systemctl status` shows it. Newlines are replaced, since they
// separate assignments.
func Status(s string) string {
	return "STATUS=" + strings.ReplaceAll(s, "\n", " ")
}

// Notifier sends notifications to one socket. The zero value and a nil
// *Notifier send nothing: a process not started by systemd.
type Notifier struct {
	addr *net.UnixAddr
}

// New returns a notifier for the socket named by $NOTIFY_SOCKET (socket),
// or nil when socket is empty. Only unix sockets are supported (systemd
// also allows vsock: addresses for virtual machines, which a board does
// not need).
func New(socket string) (*Notifier, error) {
	if socket == "" {
		return nil, nil
	}
	if socket[0] != '/' && socket[0] != '@' {
		return nil, fmt.Errorf("sdnotify: NOTIFY_SOCKET %q: only absolute paths and abstract ('@') unix sockets are supported", socket)
	}
	return &Notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}, nil
}

// Send sends the assignments in one datagram. Each call opens and closes
// its own socket, as sd_notify does, so that a service manager that
// re-executed itself (and re-created its socket) still gets the message.
func (n *Notifier) Send(assignments ...string) error {
	if n == nil || n.addr == nil || len(assignments) == 0 {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(assignments, "\n"))); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// WatchdogInterval reads the watchdog interval systemd set for this
// process: $WATCHDOG_USEC (usec), applying only when $WATCHDOG_PID
// (watchdogPID) is empty or equals pid. It returns 0 when there is no
// watchdog, and an error when the variables are malformed.
func WatchdogInterval(usec, watchdogPID string, pid int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	if watchdogPID != "" {
		p, err := strconv.Atoi(watchdogPID)
		if err != nil {
			return 0, fmt.Errorf("sdnotify: WATCHDOG_PID %q is not a process id", watchdogPID)
		}
		if p != pid {
			return 0, nil // meant for another process
		}
	}
	u, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || u == 0 {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC %q is not a positive number of microseconds", usec)
	}
	return time.Duration(u) * time.Microsecond, nil
}
