package scene

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(c *Config)
		want string // "" for valid
	}{
		{"zero value: defaults", func(c *Config) {}, ""},
		{"defaults spelled out", func(c *Config) { *c = DefaultConfig() }, ""},
		{"negative hold", func(c *Config) { c.FrozenHold = -time.Second }, "frozen_hold"},
		{"a week's hold", func(c *Config) { c.SceneHold = 7 * 24 * time.Hour }, "scene_hold"},
		{"interval longer than the blank hold", func(c *Config) { c.Interval = time.Minute }, "interval"},
		{"frozen threshold a still scene would pass", func(c *Config) { c.FrozenMaxDiff = 5 }, "frozen_max_diff"},
		{"black level above 100", func(c *Config) { c.BlackLevel = 120 }, "black_level"},
		{"uniform spread negative", func(c *Config) { c.UniformSpread = -1 }, "uniform_spread"},
		{"scene clear below raise", func(c *Config) { c.SceneRaise, c.SceneClear = 0.8, 0.6 }, "flap"},
		{"scene raise above 1", func(c *Config) { c.SceneRaise = 1.5 }, "scene_raise"},
		{"focus clear equal to raise", func(c *Config) { c.FocusRaise, c.FocusClear = 0.7, 0.7 }, "flap"},
		{"focus min contrast above 1", func(c *Config) { c.FocusMinContrast = 2 }, "focus_min_contrast"},
		{"max shift 10", func(c *Config) { c.MaxShift = 10 }, "max_shift"},
		{"no shift", func(c *Config) { c.MaxShift = -1 }, ""},
		{"window too long", func(c *Config) { c.Window = 1000 }, "window"},
		{"min detail negative", func(c *Config) { c.MinDetail = -2 }, "min_detail"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := New(c); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one about %q", err, tc.want)
			}
			if _, err := New(c); err == nil {
				t.Fatal("New accepted an invalid configuration")
			}
		})
	}
}

func TestDefaultsApplied(t *testing.T) {
	got := Config{}.withDefaults()
	if got != DefaultConfig() {
		t.Fatalf("zero config became %+v, want the defaults %+v", got, DefaultConfig())
	}
	if c := (Config{MaxShift: -1}).withDefaults(); c.MaxShift != 0 {
		t.Fatalf("max_shift -1 became %d, want 0", c.MaxShift)
	}
}
