// Package i2cbus opens the board's I²C bus for the I²C power sensors
// (hal/power/ina219, hal/power/ina226), through periph's host drivers.
//
// periph's host.Init succeeds even when some of its drivers failed to
// load: it reports them in its State. Open checks that State, so a failure
// of the driver that provides I²C (sysfs-i2c on Linux) is reported with its
// own error, instead of as a bus that "does not exist".
//
// Only the agent opens and closes the bus; drivers get the i2c.Bus.
package i2cbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/host/v3"
)

// Open initialises periph's host drivers and opens the I²C bus called name:
// "1", "I2C1" or "/dev/i2c-1" for a Raspberry Pi's GPIO header bus; ""
// for the first bus found. host.Init runs once per process; later calls
// return its first result.
func Open(ctx context.Context, name string, log *slog.Logger) (i2c.BusCloser, error) {
	return open(ctx, name, log, host.Init, i2creg.Open)
}

// open is Open with periph's functions injected, for tests.
func open(ctx context.Context, name string, log *slog.Logger,
	initHost func() (*driverreg.State, error), openBus func(string) (i2c.BusCloser, error)) (i2c.BusCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("i2cbus: %w", err)
	}
	state, err := initHost()
	if err != nil {
		return nil, fmt.Errorf("i2cbus: initialise periph host drivers: %w", err)
	}
	if err := CheckState(state); err != nil {
		return nil, err
	}
	for _, f := range state.Failed {
		log.Debug("periph driver failed to load; I²C does not need it", "driver", f.D.String(), "err", f.Err)
	}
	bus, err := openBus(name)
	if err != nil {
		shown := name
		if shown == "" {
			shown = "(first bus)"
		}
		return nil, fmt.Errorf("i2cbus: open %s: %w%s: enable I²C (dtparam=i2c_arm=on in config.txt, or raspi-config) and check the agent may open /dev/i2c-* (i2c group)", shown, err, skipped(state))
	}
	return bus, nil
}

// isI2C reports whether the driver called name provides I²C buses.
func isI2C(name string) bool {
	return strings.Contains(strings.ToLower(name), "i2c")
}

// CheckState returns an error naming each I²C driver that failed to load
// in state, with its error; nil if none did. A driver that was skipped (on
// Linux, sysfs-i2c skips itself when no /dev/i2c-* exists) is not a
// failure: opening a bus then fails and says why.
func CheckState(state *driverreg.State) error {
	if state == nil {
		return errors.New("i2cbus: periph returned no driver state")
	}
	var errs []error
	for _, f := range state.Failed {
		if f.D != nil && isI2C(f.D.String()) {
			errs = append(errs, fmt.Errorf("i2cbus: periph driver %s failed to load: %v: check /dev/i2c-* exist and the agent may open them (i2c group)", f.D, f.Err))
		}
	}
	return errors.Join(errs...)
}

// skipped describes the I²C drivers periph skipped, to explain a bus that
// could not be opened.
func skipped(state *driverreg.State) string {
	var b strings.Builder
	for _, f := range state.Skipped {
		if f.D != nil && isI2C(f.D.String()) {
			fmt.Fprintf(&b, " (periph skipped %s: %v)", f.D, f.Err)
		}
	}
	return b.String()
}
