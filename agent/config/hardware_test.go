package config

import (
	"strings"
	"testing"
	"time"
)

// TestHardwareSources checks the power.vedirect and modem.at settings.
func TestHardwareSources(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string // "" for valid
	}{
		{"vedirect", func(c *Config) { c.Power.Source = "vedirect" }, ""},
		{"vedirect by-id path", func(c *Config) {
			c.Power.Source = "vedirect"
			c.Power.VEDirect.Port = "/dev/serial/by-id/usb-VictronEnergy_BV_VE_Direct_cable-if00-port0"
		}, ""},
		{"vedirect relative port", func(c *Config) { c.Power.Source = "vedirect"; c.Power.VEDirect.Port = "ttyUSB0" }, "power.vedirect.port"},
		{"vedirect timeout", func(c *Config) {
			c.Power.Source = "vedirect"
			c.Power.VEDirect.Timeout = Duration(time.Minute)
		}, "power.vedirect.timeout"},
		{"vedirect port ignored for sim", func(c *Config) { c.Power.VEDirect.Port = "" }, ""},
		{"unknown power source", func(c *Config) { c.Power.Source = "ina3221" }, "use sim, vedirect, ina219, ina226 or sysfs"},
		{"ina219", func(c *Config) { c.Power.Source = "ina219" }, ""},
		{"ina226 panel", func(c *Config) {
			c.Power.Source = "ina226"
			c.Power.INA.Measures = "panel"
			c.Power.INA.MaxCurrentA = 8
		}, ""},
		{"ina address", func(c *Config) { c.Power.Source = "ina226"; c.Power.INA.Address = 0x76 }, "power.ina.address: 0x76 is outside 0x40-0x4f"},
		{"ina shunt", func(c *Config) { c.Power.Source = "ina219"; c.Power.INA.ShuntOhms = 0 }, "power.ina.shunt_ohms"},
		{"ina measures", func(c *Config) { c.Power.Source = "ina219"; c.Power.INA.Measures = "solar" }, "power.ina.measures"},
		{"sysfs", func(c *Config) { c.Power.Source = "sysfs"; c.Power.Sysfs.Name = "axp20x-battery" }, ""},
		{"sysfs sign", func(c *Config) { c.Power.Source = "sysfs"; c.Power.Sysfs.CurrentSign = "up" }, "power.sysfs.current_sign"},
		{"gpio pull", func(c *Config) { c.GPIO.PIR.Pin = "GPIO17"; c.GPIO.PIR.Pull = "high" }, "gpio.pir.pull"},
		{"watchdog device", func(c *Config) { c.Watchdog.Device = "watchdog0" }, "watchdog.device"},
		{"watchdog", func(c *Config) { c.Watchdog.Device = "/dev/watchdog" }, ""},
		{"at", func(c *Config) { c.Modem.Source = "at" }, ""},
		{"at generic", func(c *Config) { c.Modem.Source = "at"; c.Modem.AT.Flavor = "generic" }, ""},
		{"at flavor", func(c *Config) { c.Modem.Source = "at"; c.Modem.AT.Flavor = "huawei" }, "modem.at.flavor"},
		{"at port", func(c *Config) { c.Modem.Source = "at"; c.Modem.AT.Port = "" }, "modem.at.port"},
		{"at timeout", func(c *Config) { c.Modem.Source = "at"; c.Modem.AT.Timeout = 0 }, "modem.at.timeout"},
		{"unknown modem source", func(c *Config) { c.Modem.Source = "qmi" }, "use sim, at or mmcli"},
		{"at simcom", func(c *Config) { c.Modem.Source = "at"; c.Modem.AT.Flavor = "simcom" }, ""},
		{"mmcli", func(c *Config) { c.Modem.Source = "mmcli" }, ""},
		{"mmcli modem", func(c *Config) { c.Modem.Source = "mmcli"; c.Modem.MMCLI.Modem = "--help" }, "modem.mmcli.modem"},
		{"mmcli rate", func(c *Config) {
			c.Modem.Source = "mmcli"
			c.Modem.MMCLI.SignalRate = Duration(1500 * time.Millisecond)
		}, "modem.mmcli.signal_rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.edit(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate error %v, want one naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestMotionConfig(t *testing.T) {
	c, err := Parse("m.yaml", []byte("motion:\n  trigger: motion_or_pir\n  zones: [[[0, 0.5], [1, 0.5], [1, 1], [0, 1]]]\n  ignore:\n    - [[0.2, 0.6], [0.4, 0.6], [0.3, 0.9]]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Motion.Zones) != 1 || len(c.Motion.Zones[0]) != 4 || c.Motion.Zones[0][1] != [2]float64{1, 0.5} || len(c.Motion.Ignore[0]) != 3 {
		t.Fatalf("zones %v ignore %v", c.Motion.Zones, c.Motion.Ignore)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"motion:\n  zones: [[[0, 0], [1.5, 0], [0, 1]]]\n", "m.yaml:2: motion.zones[0]: corner [1.5 0]: coordinates are fractions of the picture"},
		{"motion:\n  zones: [[[0, 0], [1, 0]]]\n", "motion.zones[0]: a zone needs at least three [x, y] corners, found 2"},
		{"motion:\n  zones: [[[0, 0, 1], [1, 0], [0, 1]]]\n", "motion.zones[0][0]: expected a list of 2 values, found 3"},
		{"motion:\n  zones: 3\n", "motion.zones: expected a list"},
		{"motion:\n  trigger: motion_and_pir\n", `motion.trigger: "motion_and_pir" needs a PIR sensor: set gpio.pir.pin`},
		{"motion:\n  trigger: heat\n", `motion.trigger: "heat" is not known`},
	} {
		_, err := Parse("m.yaml", []byte(bad.yaml))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.yaml, err, bad.want)
		}
	}
}
