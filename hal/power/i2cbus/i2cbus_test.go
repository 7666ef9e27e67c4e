package i2cbus

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"periph.io/x/conn/v3/driver"
	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"
)

// fakeDriver stands in for one of periph's host drivers in a State.
type fakeDriver string

func (d fakeDriver) String() string          { return string(d) }
func (d fakeDriver) Prerequisites() []string { return nil }
func (d fakeDriver) After() []string         { return nil }
func (d fakeDriver) Init() (bool, error)     { return true, nil }

var _ driver.Impl = fakeDriver("")

func failure(name, err string) driverreg.DriverFailure {
	return driverreg.DriverFailure{D: fakeDriver(name), Err: errors.New(err)}
}

func TestCheckState(t *testing.T) {
	tests := []struct {
		name    string
		state   *driverreg.State
		wantErr []string
	}{
		{"all loaded", &driverreg.State{Loaded: []driver.Impl{fakeDriver("sysfs-i2c"), fakeDriver("bcm283x-gpio")}}, nil},
		{"other driver failed", &driverreg.State{
			Loaded: []driver.Impl{fakeDriver("sysfs-i2c")},
			Failed: []driverreg.DriverFailure{failure("bcm283x-dma", "need more access, try as root")},
		}, nil},
		{"i2c skipped", &driverreg.State{Skipped: []driverreg.DriverFailure{failure("sysfs-i2c", "no I²C bus found")}}, nil},
		{"i2c failed", &driverreg.State{
			Loaded: []driver.Impl{fakeDriver("bcm283x-gpio")},
			Failed: []driverreg.DriverFailure{
				failure("bcm283x-dma", "need more access"),
				failure("sysfs-i2c", `i2creg: can't register bus "/dev/i2c-1" twice`),
			},
		}, []string{"periph driver sysfs-i2c failed to load", "can't register bus", "i2c group"}},
		{"nil state", nil, []string{"no driver state"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckState(tt.state)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("CheckState = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckState = nil, want an error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckState = %v, want it to say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "dma") {
				t.Errorf("CheckState = %v: names a driver I²C does not need", err)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	loaded := &driverreg.State{Loaded: []driver.Impl{fakeDriver("sysfs-i2c")}}
	noBus := &driverreg.State{Skipped: []driverreg.DriverFailure{failure("sysfs-i2c", "no I²C bus found")}}
	failed := &driverreg.State{Failed: []driverreg.DriverFailure{failure("sysfs-i2c", "permission denied")}}
	tests := []struct {
		name    string
		state   *driverreg.State
		initErr error
		busErr  error
		wantErr []string
	}{
		{"opens", loaded, nil, nil, nil},
		{"host init fails", nil, errors.New("drivers: cycle"), nil, []string{"initialise periph host drivers", "cycle"}},
		{"i2c driver failed", failed, nil, nil, []string{"sysfs-i2c failed to load: permission denied"}},
		{"no bus", noBus, nil, errors.New(`i2creg: can't open unknown bus: "1"`), []string{"open 1", "unknown bus", "periph skipped sysfs-i2c: no I²C bus found", "dtparam=i2c_arm=on"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opened := false
			bus, err := open(context.Background(), "1", slog.New(slog.DiscardHandler),
				func() (*driverreg.State, error) { return tt.state, tt.initErr },
				func(name string) (i2c.BusCloser, error) {
					opened = true
					if name != "1" {
						t.Errorf("opened %q, want 1", name)
					}
					if tt.busErr != nil {
						return nil, tt.busErr
					}
					return &i2ctest.Playback{}, nil
				})
			if len(tt.wantErr) == 0 {
				if err != nil || bus == nil {
					t.Fatalf("open = %v, %v", bus, err)
				}
				return
			}
			if err == nil {
				t.Fatal("open succeeded, want an error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("open = %v, want it to say %q", err, w)
				}
			}
			if tt.state == failed && opened {
				t.Error("opened a bus after its driver failed")
			}
		})
	}
}

func TestOpenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := open(ctx, "", slog.New(slog.DiscardHandler),
		func() (*driverreg.State, error) { t.Fatal("host initialised after cancel"); return nil, nil },
		func(string) (i2c.BusCloser, error) { return nil, nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("open = %v", err)
	}
}
