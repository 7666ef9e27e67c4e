package agent

import (
	"log/slog"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	modemat "github.com/outpost-cctv/outpost/hal/modem/at"
	"github.com/outpost-cctv/outpost/hal/power/vedirect"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// TestHardwareSources checks that the vedirect and at sources build their
// drivers without touching a device.
func TestHardwareSources(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	log := slog.New(slog.DiscardHandler)
	cfg := config.Default()
	cfg.Power.Source = "vedirect"
	cfg.Power.VEDirect.Port = "/dev/does-not-exist"
	cfg.Modem.Source = "at"
	cfg.Modem.AT.Port = "/dev/does-not-exist"
	pw, err := newPower(cfg, clk, log)
	if _, ok := pw.(*vedirect.Sensor); err != nil || !ok {
		t.Errorf("newPower = %T, %v; want a *vedirect.Sensor", pw, err)
	}
	md, err := newModem(cfg, clk, log)
	if _, ok := md.(*modemat.Modem); err != nil || !ok {
		t.Errorf("newModem = %T, %v; want a *at.Modem", md, err)
	}
	cfg.Power.Source, cfg.Modem.Source = "x", "y"
	if _, err := newPower(cfg, clk, log); err == nil {
		t.Error("newPower accepted source x")
	}
	if _, err := newModem(cfg, clk, log); err == nil {
		t.Error("newModem accepted source y")
	}
}
