package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/hal/camera"
	hgpio "github.com/outpost-cctv/outpost/hal/gpio"
	modemat "github.com/outpost-cctv/outpost/hal/modem/at"
	"github.com/outpost-cctv/outpost/hal/modem/mmcli"
	"github.com/outpost-cctv/outpost/hal/power/sysfs"
	"github.com/outpost-cctv/outpost/hal/power/vedirect"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// TestHardwareSources checks that every power and modem source builds its
// driver without touching a device.
func TestHardwareSources(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	log := slog.New(slog.DiscardHandler)
	cfg := config.Default()
	cfg.Power.Source = "vedirect"
	cfg.Power.VEDirect.Port = "/dev/does-not-exist"
	cfg.Modem.Source = "at"
	cfg.Modem.AT.Port = "/dev/does-not-exist"
	pw, err := NewPower(cfg, clk, log)
	if _, ok := pw.(*vedirect.Sensor); err != nil || !ok {
		t.Errorf("NewPower = %T, %v; want a *vedirect.Sensor", pw, err)
	}
	md, err := NewModem(cfg, clk, log)
	if _, ok := md.(*modemat.Modem); err != nil || !ok {
		t.Errorf("NewModem = %T, %v; want a *at.Modem", md, err)
	}
	for _, src := range []string{"ina219", "ina226"} {
		cfg.Power.Source = src
		pw, err = NewPower(cfg, clk, log)
		if _, ok := pw.(*i2cSensor); err != nil || !ok {
			t.Errorf("NewPower(%s) = %T, %v; want an *i2cSensor", src, pw, err)
		}
	}
	cfg.Power.Source, cfg.Power.Sysfs.Root = "sysfs", "../hal/power/sysfs/testdata/axp20x"
	pw, err = NewPower(cfg, clk, log)
	if _, ok := pw.(*sysfs.Sensor); err != nil || !ok {
		t.Errorf("NewPower(sysfs) = %T, %v; want a *sysfs.Sensor", pw, err)
	} else if r, err := pw.Read(context.Background()); err != nil || r.BatteryV == nil {
		t.Errorf("sysfs reading %+v, %v", r, err)
	}
	cfg.Modem.Source = "mmcli"
	md, err = NewModem(cfg, clk, log)
	if _, ok := md.(*mmcli.Modem); err != nil || !ok {
		t.Errorf("NewModem(mmcli) = %T, %v; want a *mmcli.Modem", md, err)
	}
	cfg.Power.Source, cfg.Modem.Source = "x", "y"
	if _, err := NewPower(cfg, clk, log); err == nil {
		t.Error("NewPower accepted source x")
	}
	if _, err := NewModem(cfg, clk, log); err == nil {
		t.Error("NewModem accepted source y")
	}
}

// TestPins drives fake pins: the PIR sensor starts a recording event and
// publishes one, the tamper switch's state follows the door, and the ir
// command switches the relay.
func TestPins(t *testing.T) {
	pins := map[string]*waitPin{
		"GPIO17": newWaitPin("GPIO17"), "GPIO22": newWaitPin("GPIO22"), "GPIO27": newWaitPin("GPIO27"),
	}
	lookup := func(name string) (gpio.PinIO, error) { return pins[name], nil }
	cfg := config.Default().GPIO
	cfg.PIR.Pin, cfg.Tamper.Pin, cfg.IRRelay.Pin = "GPIO17", "GPIO22", "GPIO27"
	cfg.PIR.Debounce, cfg.Tamper.Debounce = config.Duration(time.Millisecond), config.Duration(time.Millisecond)
	cfg.PIR.Pull, cfg.Tamper.Pull = "none", "none" // the fake pins would take the pull as their level

	var mu sync.Mutex
	var triggers []string
	events := make(chan wire.Event, 8)
	p := NewPins(cfg, lookup, clock.Real{}, slog.New(slog.DiscardHandler),
		func(kind string, _ time.Time) { mu.Lock(); triggers = append(triggers, kind); mu.Unlock() },
		func(_ context.Context, _ uplink.Priority, e wire.Event) { events <- e })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	next := func(want string) wire.Event {
		t.Helper()
		select {
		case e := <-events:
			if e.Kind != want {
				t.Fatalf("event %s %q, want %s", e.Kind, e.Message, want)
			}
			return e
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event", want)
		}
		return wire.Event{}
	}
	// An edge is sent once the input waits for one (it is set up and has
	// read its initial state); the fake pin takes the edge's level as it
	// receives it.
	edge := func(name string, l gpio.Level) {
		<-pins[name].waiting
		pins[name].EdgesChan <- l
	}
	edge("GPIO17", gpio.High)
	if e := next(KindPIR); e.Severity != wire.SeverityInfo {
		t.Errorf("pir event %+v", e)
	}
	mu.Lock()
	if len(triggers) != 1 || triggers[0] != KindPIR {
		t.Errorf("triggers %v", triggers)
	}
	mu.Unlock()
	waitTamper := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if open, known := p.TamperOpen(); known && open == want {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("tamper never read open=%v", want)
	}
	edge("GPIO22", gpio.High)
	waitTamper(true)
	edge("GPIO22", gpio.Low)
	waitTamper(false)
	// The relay is set up once Run has opened the pins.
	deadline := time.Now().Add(5 * time.Second)
	var res any
	var err error
	for time.Now().Before(deadline) {
		if res, err = p.handleIR(ctx, uplink.Request{Args: json.RawMessage(`{"on":true}`)}); err == nil {
			break
		}
	}
	if err != nil || res.(map[string]bool)["on"] != true || pins["GPIO27"].Read() != gpio.High {
		t.Fatalf("ir on: %v, %v, pin %v", res, err, pins["GPIO27"].Read())
	}
	var _ hgpio.PinLookup = lookup
}

// waitPin is a fake pin that tells when an input first waits for an edge.
type waitPin struct {
	*gpiotest.Pin
	once    sync.Once
	waiting chan struct{}
}

func newWaitPin(name string) *waitPin {
	return &waitPin{Pin: &gpiotest.Pin{N: name, L: gpio.Low, EdgesChan: make(chan gpio.Level)}, waiting: make(chan struct{})}
}

func (p *waitPin) WaitForEdge(d time.Duration) bool {
	p.once.Do(func() { close(p.waiting) })
	return p.Pin.WaitForEdge(d)
}

// fixedSource is a camera whose every frame is a new picture.
type fixedSource struct{ n int }

func (s *fixedSource) Next(context.Context) (camera.Frame, error) {
	s.n++
	return camera.Frame{Data: []byte(fmt.Sprintf("frame %d", s.n)), Width: 64, Height: 48}, nil
}
func (s *fixedSource) Close() error { return nil }

// TestSimCameraFaults: frozen repeats one picture, even when set before
// the first frame; black sends a black JPEG; none lets the camera through.
func TestSimCameraFaults(t *testing.T) {
	fi := &faultInjector{}
	open := fi.wrap(func(context.Context) (camera.Source, error) { return &fixedSource{}, nil })
	src, _ := open(context.Background())
	set := func(f string) {
		if _, err := fi.handle(context.Background(), uplink.Request{Args: json.RawMessage(`{"fault":"` + f + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	next := func() string {
		f, _ := src.Next(context.Background())
		return string(f.Data)
	}
	set(SimFaultFrozen)
	if a, b := next(), next(); a != "frame 1" || b != "frame 1" {
		t.Errorf("frozen from the start: %q %q", a, b)
	}
	set(SimFaultNone)
	if a := next(); a != "frame 3" {
		t.Errorf("none: %q", a)
	}
	set(SimFaultBlack)
	if b := next(); !strings.HasPrefix(b, "\xff\xd8") {
		t.Errorf("black is not a JPEG")
	}
	if _, err := fi.handle(context.Background(), uplink.Request{Args: json.RawMessage(`{"fault":"smoke"}`)}); err == nil {
		t.Error("an unknown fault was accepted")
	}
}
