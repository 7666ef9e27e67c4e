package scene

import (
	"fmt"
	"time"
)

// Config tunes the checks. The zero value of a field means its default
// (see DefaultConfig).
type Config struct {
	// Interval is the time between analysed frames; frames arriving
	// sooner are ignored. Default 1 s.
	Interval time.Duration `yaml:"interval"`
	// ClearHold is how long a raised condition must be seen good before
	// it is cleared. Default 30 s.
	ClearHold time.Duration `yaml:"clear_hold"`

	// FrozenHold is how long the picture must stay still to raise
	// frozen. Default 30 s.
	FrozenHold time.Duration `yaml:"frozen_hold"`
	// FrozenMaxDiff is the largest mean absolute difference, in grey
	// levels per cell, between two analysed frames that are still the
	// same picture. Default 0.02.
	FrozenMaxDiff float64 `yaml:"frozen_max_diff"`

	// BlankHold is how long the picture must be black or uniform to
	// raise blank. Default 20 s.
	BlankHold time.Duration `yaml:"blank_hold"`
	// BlackLevel is the grey level at or below which 95% of the cells
	// make the picture black. Default 28.
	BlackLevel float64 `yaml:"black_level"`
	// UniformSpread is the spread between the 5th and 95th percentiles
	// of the cells at or below which the picture is uniform. Default 6.
	UniformSpread float64 `yaml:"uniform_spread"`

	// SceneHold is how long the view must differ from the reference to
	// raise scene_changed. Default 5 min.
	SceneHold time.Duration `yaml:"scene_hold"`
	// SceneRaise and SceneClear are the correlations with the reference
	// (0-1, 1 the same view) below which scene_changed is raised and
	// above which it clears. Defaults 0.5 and 0.7.
	SceneRaise float64 `yaml:"scene_raise"`
	SceneClear float64 `yaml:"scene_clear"`
	// MaxShift is how many cells (8 pixels each) the view may sway
	// without counting as changed. Default 1; -1 for none.
	MaxShift int `yaml:"max_shift"`

	// FocusHold is how long the picture must be softer than the
	// reference to raise out_of_focus. Default 5 min.
	FocusHold time.Duration `yaml:"focus_hold"`
	// FocusRaise and FocusClear are the ratios of sharpness to the
	// reference's below which out_of_focus is raised and above which it
	// clears. Defaults 0.6 and 0.8.
	FocusRaise float64 `yaml:"focus_raise"`
	FocusClear float64 `yaml:"focus_clear"`
	// FocusMinContrast is the standard deviation of the cells, as a
	// fraction of the reference's, a frame needs for its focus to be
	// judged. Default 0.7.
	FocusMinContrast float64 `yaml:"focus_min_contrast"`

	// Window is how many analysed frames the scene and focus scores are
	// the median of. Default 15.
	Window int `yaml:"window"`
	// MinDetail is the mean gradient, in grey levels between
	// neighbouring cells, a frame needs for the view and focus to be
	// judged. Default 1.
	MinDetail float64 `yaml:"min_detail"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Interval:         time.Second,
		ClearHold:        30 * time.Second,
		FrozenHold:       30 * time.Second,
		FrozenMaxDiff:    0.02,
		BlankHold:        20 * time.Second,
		BlackLevel:       28,
		UniformSpread:    6,
		SceneHold:        5 * time.Minute,
		SceneRaise:       0.5,
		SceneClear:       0.7,
		MaxShift:         1,
		FocusHold:        5 * time.Minute,
		FocusRaise:       0.6,
		FocusClear:       0.8,
		FocusMinContrast: 0.7,
		Window:           15,
		MinDetail:        1,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	def := func(v *time.Duration, dv time.Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	deff := func(v *float64, dv float64) {
		if *v == 0 {
			*v = dv
		}
	}
	def(&c.Interval, d.Interval)
	def(&c.ClearHold, d.ClearHold)
	def(&c.FrozenHold, d.FrozenHold)
	def(&c.BlankHold, d.BlankHold)
	def(&c.SceneHold, d.SceneHold)
	def(&c.FocusHold, d.FocusHold)
	deff(&c.FrozenMaxDiff, d.FrozenMaxDiff)
	deff(&c.BlackLevel, d.BlackLevel)
	deff(&c.UniformSpread, d.UniformSpread)
	deff(&c.SceneRaise, d.SceneRaise)
	deff(&c.SceneClear, d.SceneClear)
	deff(&c.FocusRaise, d.FocusRaise)
	deff(&c.FocusClear, d.FocusClear)
	deff(&c.FocusMinContrast, d.FocusMinContrast)
	deff(&c.MinDetail, d.MinDetail)
	if c.MaxShift == 0 {
		c.MaxShift = d.MaxShift
	} else if c.MaxShift < 0 {
		c.MaxShift = 0
	}
	if c.Window == 0 {
		c.Window = d.Window
	}
	return c
}

// Validate checks c, zero fields standing for their defaults.
func (c Config) Validate() error {
	for _, h := range []struct {
		name string
		v    time.Duration
	}{
		{"interval", c.Interval}, {"clear_hold", c.ClearHold}, {"frozen_hold", c.FrozenHold},
		{"blank_hold", c.BlankHold}, {"scene_hold", c.SceneHold}, {"focus_hold", c.FocusHold},
	} {
		if h.v < 0 || h.v > 24*time.Hour {
			return fmt.Errorf("scene: %s %v: must be between 0 (the default) and 24h", h.name, h.v)
		}
	}
	d := c.withDefaults()
	switch {
	case d.Interval > d.FrozenHold || d.Interval > d.BlankHold:
		return fmt.Errorf("scene: interval %v: must be shorter than frozen_hold (%v) and blank_hold (%v), or the checks would never see enough frames", d.Interval, d.FrozenHold, d.BlankHold)
	case c.FrozenMaxDiff < 0 || c.FrozenMaxDiff > 2:
		return fmt.Errorf("scene: frozen_max_diff %v: must be 0-2 grey levels per cell, e.g. 0.02; above that a still scene would look frozen", c.FrozenMaxDiff)
	case c.BlackLevel < 0 || c.BlackLevel > 100:
		return fmt.Errorf("scene: black_level %v: must be 0-100 grey levels, e.g. 28", c.BlackLevel)
	case c.UniformSpread < 0 || c.UniformSpread > 50:
		return fmt.Errorf("scene: uniform_spread %v: must be 0-50 grey levels, e.g. 6", c.UniformSpread)
	case c.SceneRaise < 0 || c.SceneRaise >= 1 || c.SceneClear < 0 || c.SceneClear > 1:
		return fmt.Errorf("scene: scene_raise %v, scene_clear %v: must be correlations between 0 and 1, e.g. 0.5 and 0.7", c.SceneRaise, c.SceneClear)
	case d.SceneClear <= d.SceneRaise:
		return fmt.Errorf("scene: scene_clear %v must be above scene_raise %v, or the condition would flap", d.SceneClear, d.SceneRaise)
	case c.FocusRaise < 0 || c.FocusRaise >= 1 || c.FocusClear < 0 || c.FocusClear > 1:
		return fmt.Errorf("scene: focus_raise %v, focus_clear %v: must be ratios between 0 and 1, e.g. 0.6 and 0.8", c.FocusRaise, c.FocusClear)
	case d.FocusClear <= d.FocusRaise:
		return fmt.Errorf("scene: focus_clear %v must be above focus_raise %v, or the condition would flap", d.FocusClear, d.FocusRaise)
	case c.FocusMinContrast < 0 || c.FocusMinContrast > 1:
		return fmt.Errorf("scene: focus_min_contrast %v: must be a fraction 0-1 of the reference's contrast, e.g. 0.7", c.FocusMinContrast)
	case c.MaxShift < -1 || c.MaxShift > 4:
		return fmt.Errorf("scene: max_shift %d: must be 0 (the default, 1), -1 (none) or 1-4 cells", c.MaxShift)
	case c.Window < 0 || c.Window > 600:
		return fmt.Errorf("scene: window %d: must be 1-600 frames", c.Window)
	case c.MinDetail < 0 || c.MinDetail > 50:
		return fmt.Errorf("scene: min_detail %v: must be 0-50 grey levels, e.g. 1", c.MinDetail)
	}
	return nil
}
