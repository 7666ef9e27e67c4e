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
		{"unknown power source", func(c *Config) { c.Power.Source = "ina219" }, "use sim or vedirect"},
		{"at", func(c *Config) { c.Modem.Source = "at" }, ""},
		{"at generic", func(c *Config) { c.Modem.Source = "at"; c.Modem.AT.Flavor = "generic" }, ""},
		{"at flavor", func(c *Config) { c.Modem.Source = "at"; c.Modem.AT.Flavor = "huawei" }, "modem.at.flavor"},
		{"at port", func(c *Config) { c.Modem.Source = "at"; c.Modem.AT.Port = "" }, "modem.at.port"},
		{"at timeout", func(c *Config) { c.Modem.Source = "at"; c.Modem.AT.Timeout = 0 }, "modem.at.timeout"},
		{"unknown modem source", func(c *Config) { c.Modem.Source = "mmcli" }, "use sim or at"},
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
