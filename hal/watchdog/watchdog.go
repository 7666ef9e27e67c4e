// Package watchdog keeps the board's hardware watchdog (/dev/watchdog) fed
// while the agent is healthy, so that a hung agent or kernel is rebooted by
// the hardware rather than leaving a unit dark on a lamp column.
//
// Once the device is opened the hardware reboots the board unless something
// is written to it within its timeout (15 s on a Raspberry Pi). [Watchdog.Run]
// writes at every interval, but only while the health check passes; on a
// clean shutdown it writes the magic character 'V' before closing, which
// tells the driver to disarm (unless the kernel was built with
// CONFIG_WATCHDOG_NOWAYOUT, in which case the board reboots once the
// timeout passes: the service manager must then restart the agent in time).
package watchdog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
)

// DefaultPath is the watchdog device.
const DefaultPath = "/dev/watchdog"

// Open opens the watchdog device at path. From this moment the hardware
// counts down: call Run at once.
func Open(path string) (io.WriteCloser, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("watchdog: open %s: %w: check the watchdog is enabled (dtparam=watchdog=on on a Raspberry Pi), that no other program (systemd RuntimeWatchdogSec, watchdog daemon) holds it, and that the agent may write it", path, err)
	}
	return f, nil
}

// Watchdog feeds one watchdog device.
type Watchdog struct {
	dev      io.WriteCloser
	interval time.Duration
	clk      clock.Clock
	log      *slog.Logger
}

// New returns a watchdog feeding dev every interval, which must be well
// below the device's timeout (a third of it is usual).
func New(dev io.WriteCloser, interval time.Duration, clk clock.Clock, log *slog.Logger) (*Watchdog, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("watchdog: interval %s: must be above 0 and well below the device's timeout", interval)
	}
	return &Watchdog{dev: dev, interval: interval, clk: clk, log: log.With("component", "watchdog")}, nil
}

// Run feeds the device every interval while healthy returns true, until
// ctx ends; then it disarms the device with the magic close and returns
// nil. While healthy returns false it stops feeding, so the hardware
// reboots the board unless health returns first. A write error ends Run at
// once, without the magic close, and is returned: the board will reboot.
func (w *Watchdog) Run(ctx context.Context, healthy func() bool) error {
	t := w.clk.NewTicker(w.interval)
	defer t.Stop()
	wasHealthy := true
	for {
		select {
		case <-ctx.Done():
			return w.magicClose()
		case <-t.C():
		}
		ok := healthy()
		if ok != wasHealthy {
			if ok {
				w.log.Info("agent healthy again: feeding the watchdog")
			} else {
				w.log.Error("agent unhealthy: no longer feeding the watchdog, the board will reboot unless it recovers")
			}
			wasHealthy = ok
		}
		if !ok {
			continue
		}
		if _, err := w.dev.Write([]byte{'\n'}); err != nil {
			w.dev.Close()
			return fmt.Errorf("watchdog: feed: %w: the board will reboot when the watchdog's timeout passes", err)
		}
	}
}

// magicClose writes 'V' and closes the device, disarming it.
func (w *Watchdog) magicClose() error {
	_, werr := w.dev.Write([]byte{'V'})
	cerr := w.dev.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("watchdog: magic close: %w: the board may reboot when the watchdog's timeout passes", err)
	}
	return nil
}
