package gpio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

func TestOutput(t *testing.T) {
	for _, activeLow := range []bool{false, true} {
		t.Run(fmt.Sprint("active low ", activeLow), func(t *testing.T) {
			pin := &gpiotest.Pin{N: "GPIO27"}
			o, err := NewOutput(pin, OutputConfig{Pin: "GPIO27", ActiveLow: activeLow}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			for _, on := range []bool{true, false, true} {
				if err := o.Set(on); err != nil {
					t.Fatal(err)
				}
				if o.On() != on {
					t.Errorf("On() = %v after Set(%v)", o.On(), on)
				}
				if want := pgpio.Level(on != activeLow); pin.Read() != want {
					t.Errorf("pin %v after Set(%v), want %v", pin.Read(), on, want)
				}
			}
		})
	}
}

func TestOutputFails(t *testing.T) {
	o, err := NewOutput(&brokenPin{}, OutputConfig{Pin: "GPIO27"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Set(true); err == nil || !strings.Contains(err.Error(), "output GPIO27: set on") {
		t.Fatalf("Set = %v", err)
	}
	if _, err := NewOutput(&brokenPin{}, OutputConfig{}, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("NewOutput accepted no pin name")
	}
}

func TestProbe(t *testing.T) {
	pins := map[string]*gpiotest.Pin{
		"GPIO17": {N: "GPIO17", L: pgpio.High},
		"GPIO22": {N: "GPIO22"},
		"GPIO23": {N: "GPIO23", L: pgpio.Low},
	}
	lookup := func(name string) (pgpio.PinIO, error) {
		if p, ok := pins[name]; ok {
			return p, nil
		}
		if name == "GPIO5" {
			return nil, nil
		}
		return nil, fmt.Errorf("gpio board: no pin %s", name)
	}
	inputs := []ProbeInput{
		{"pir", InputConfig{Pin: "GPIO17"}},
		{"tamper", InputConfig{Pin: "GPIO22", Pull: PullUp}},
		{"door", InputConfig{Pin: "GPIO23", ActiveLow: true}},
		{"spare", InputConfig{Pin: "GPIO99"}},
		{"nil", InputConfig{Pin: "GPIO5"}},
		{"bad", InputConfig{Pin: "GPIO6", Pull: "sideways"}},
	}
	got := Probe(context.Background(), lookup, inputs)
	want := []string{
		"pir GPIO17: high (active)",
		"tamper GPIO22: high (active)", // pulled up
		"door GPIO23: low (active)",
		"spare GPIO99: gpio board: no pin GPIO99",
		"nil GPIO5: gpio: GPIO5: no such pin",
		`bad GPIO6: gpio: input GPIO6: pull "sideways"`,
	}
	for i, r := range got {
		if s := r.String(); !strings.HasPrefix(s, want[i]) {
			t.Errorf("result %d: %s, want %s", i, s, want[i])
		}
	}
	if pins["GPIO22"].P != pgpio.PullUp {
		t.Errorf("pull %v, want up", pins["GPIO22"].P)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, r := range Probe(ctx, lookup, inputs[:2]) {
		if !errors.Is(r.Err, context.Canceled) {
			t.Errorf("%s after cancel: %v", r.Name, r.Err)
		}
	}
}
