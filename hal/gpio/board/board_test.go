package board

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"periph.io/x/conn/v3/driver"
	"periph.io/x/conn/v3/driver/driverreg"
	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// fakeDriver stands in for one of periph's host drivers in a State.
type fakeDriver string

func (d fakeDriver) String() string          { return string(d) }
func (d fakeDriver) Prerequisites() []string { return nil }
func (d fakeDriver) After() []string         { return nil }
func (d fakeDriver) Init() (bool, error)     { return true, nil }

func failure(name, err string) driverreg.DriverFailure {
	return driverreg.DriverFailure{D: fakeDriver(name), Err: errors.New(err)}
}

func TestLookup(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO17"}
	ok := &driverreg.State{Loaded: []driver.Impl{fakeDriver("bcm283x-gpio"), fakeDriver("rpi")}}
	gpiomemDenied := &driverreg.State{
		Loaded: []driver.Impl{fakeDriver("ioctl-gpio")},
		Failed: []driverreg.DriverFailure{failure("bcm283x-gpio", "need more access, try as root or setup udev rules"), failure("bcm283x-dma", "need root")},
	}
	none := &driverreg.State{Skipped: []driverreg.DriverFailure{failure("ioctl-gpio", "no GPIO chips found"), failure("bcm283x-gpio", "bcm283x CPU not detected")}}
	tests := []struct {
		name    string
		pin     string
		state   *driverreg.State
		initErr error
		wantErr []string
	}{
		{"found", "GPIO17", ok, nil, nil},
		{"found despite a failed driver", "GPIO17", gpiomemDenied, nil, nil},
		{"unknown name", "GPIO99", ok, nil, []string{"no pin GPIO99", "GPIO17 for BCM 17"}},
		{"driver failed", "GPIO99", gpiomemDenied, nil, []string{"no pin GPIO99", "periph driver bcm283x-gpio failed to load: need more access"}},
		{"no driver", "GPIO17x", none, nil, []string{"no GPIO driver loaded", "ioctl-gpio skipped: no GPIO chips found"}},
		{"host init fails", "GPIO17", nil, errors.New("boom"), []string{"initialise periph host drivers: boom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := lookup(tt.pin, slog.New(slog.DiscardHandler),
				func() (*driverreg.State, error) { return tt.state, tt.initErr },
				func(name string) pgpio.PinIO {
					if name == "GPIO17" {
						return pin
					}
					return nil
				})
			if tt.wantErr == nil {
				if err != nil || p != pin {
					t.Fatalf("lookup = %v, %v", p, err)
				}
				return
			}
			if err == nil {
				t.Fatal("lookup succeeded, want an error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("lookup = %v, want it to say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "dma") {
				t.Errorf("lookup = %v: names a driver GPIO does not need", err)
			}
		})
	}
}

func TestCheckState(t *testing.T) {
	if err := CheckState(&driverreg.State{Failed: []driverreg.DriverFailure{failure("sysfs-i2c", "x")}}); err != nil {
		t.Errorf("CheckState blamed a non-GPIO driver: %v", err)
	}
	err := CheckState(&driverreg.State{Failed: []driverreg.DriverFailure{failure("allwinner-gpio", "mmap: permission denied"), failure("sysfs-gpio", "x")}})
	if err == nil || !strings.Contains(err.Error(), "allwinner-gpio failed to load: mmap: permission denied") || !strings.Contains(err.Error(), "sysfs-gpio") {
		t.Errorf("CheckState = %v", err)
	}
	if err := CheckState(nil); err == nil {
		t.Error("CheckState(nil) = nil")
	}
}
