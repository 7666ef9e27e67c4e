// Package board finds the GPIO pins of the board the agent runs on, by
// name, through periph's host drivers (bcm283x-gpio on a Raspberry Pi up
// to the 4, ioctl-gpio on a Pi 5 and any kernel with /dev/gpiochip*,
// allwinner-gpio, sysfs-gpio).
//
// periph's host.Init succeeds even when some of its drivers failed to
// load: it reports them in its State. Lookup checks that State, so a pin
// that cannot be found is explained by the failure of the GPIO driver that
// should have provided it.
package board

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"periph.io/x/conn/v3/driver/driverreg"
	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"

	"github.com/outpost-cctv/outpost/hal/gpio"
)

// Lookup returns a gpio.PinLookup for the board's pins. Its first call
// initialises periph's host drivers (once per process).
func Lookup(log *slog.Logger) gpio.PinLookup {
	log = log.With("component", "gpio-board")
	return func(name string) (pgpio.PinIO, error) {
		return lookup(name, log, host.Init, gpioreg.ByName)
	}
}

// lookup is a Lookup's function with periph's functions injected, for
// tests.
func lookup(name string, log *slog.Logger, initHost func() (*driverreg.State, error), byName func(string) pgpio.PinIO) (pgpio.PinIO, error) {
	state, err := initHost()
	if err != nil {
		return nil, fmt.Errorf("gpio board: initialise periph host drivers: %w", err)
	}
	driverErr := CheckState(state)
	if p := byName(name); p != nil {
		if driverErr != nil {
			log.Warn("a GPIO driver failed to load; the pin was found through another", "pin", name, "err", driverErr)
		}
		return p, nil
	}
	msg := fmt.Sprintf("gpio board: no pin %s: name it as periph does (GPIO17 for BCM 17 on a Raspberry Pi, P1_11 for header pin 11)", name)
	if driverErr != nil {
		return nil, fmt.Errorf("%s; %w", msg, driverErr)
	}
	if len(loadedGPIO(state)) == 0 {
		return nil, fmt.Errorf("%s; no GPIO driver loaded%s: check /dev/gpiochip* or /dev/gpiomem exist and the agent may open them (gpio group)", msg, skipped(state))
	}
	return nil, errors.New(msg)
}

// isGPIO reports whether the driver called name provides GPIO pins.
func isGPIO(name string) bool {
	return strings.Contains(strings.ToLower(name), "gpio")
}

// CheckState returns an error naming each GPIO driver that failed to load
// in state, with its error; nil if none did. A driver skipped because its
// hardware is absent (bcm283x-gpio on an Allwinner board) is no failure.
func CheckState(state *driverreg.State) error {
	if state == nil {
		return errors.New("gpio board: periph returned no driver state")
	}
	var errs []error
	for _, f := range state.Failed {
		if f.D != nil && isGPIO(f.D.String()) {
			errs = append(errs, fmt.Errorf("gpio board: periph driver %s failed to load: %v: check the agent may open /dev/gpiomem and /dev/gpiochip* (gpio group)", f.D, f.Err))
		}
	}
	return errors.Join(errs...)
}

func loadedGPIO(state *driverreg.State) []string {
	var out []string
	for _, d := range state.Loaded {
		if d != nil && isGPIO(d.String()) {
			out = append(out, d.String())
		}
	}
	return out
}

func skipped(state *driverreg.State) string {
	var s []string
	for _, f := range state.Skipped {
		if f.D != nil && isGPIO(f.D.String()) {
			s = append(s, fmt.Sprintf("%s skipped: %v", f.D, f.Err))
		}
	}
	if len(s) == 0 {
		return ""
	}
	return " (" + strings.Join(s, "; ") + ")"
}
