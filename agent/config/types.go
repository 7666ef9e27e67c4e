package config

import (
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as "30s", "5m", "1h30m" or, for the
// long spans retention needs, whole days "28d".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string {
	td := time.Duration(d)
	switch {
	case td == 0:
		return "0s"
	case td%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", td/(24*time.Hour))
	case td%time.Hour == 0:
		return fmt.Sprintf("%dh", td/time.Hour)
	case td%time.Minute == 0:
		return fmt.Sprintf("%dm", td/time.Minute)
	}
	return td.String()
}

// ParseDuration parses the Duration syntax.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "d") {
		n, err := strconv.ParseUint(strings.TrimSuffix(s, "d"), 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: use e.g. 30s, 5m, 2h or 28d", s)
		}
		return Duration(time.Duration(n) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: use e.g. 30s, 5m, 2h or 28d", s)
	}
	return Duration(d), nil
}

// MarshalText writes the Duration syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads the Duration syntax.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Size is a number of bytes written as "4096", "512KiB", "64MiB", "32GB".
// Binary (KiB, MiB, GiB, TiB) and decimal (KB, MB, GB, TB) units are both
// accepted.
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   float64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"kB", 1e3}, {"B", 1},
}

// ParseSize parses the Size syntax.
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	mult := 1.0
	num := s
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*mult > math.MaxInt64 {
		return 0, fmt.Errorf("%q is not a size: use e.g. 512KiB, 64MiB or 32GiB", s)
	}
	return Size(f * mult), nil
}

func (s Size) String() string {
	for _, u := range sizeUnits[:4] {
		if s >= Size(u.mult) && int64(s)%int64(u.mult) == 0 {
			return fmt.Sprintf("%d%s", int64(s)/int64(u.mult), u.suffix)
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalText writes the Size syntax.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the Size syntax.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// SizeOrPercent is an absolute size ("64GiB") or a share of a filesystem
// ("90%"). Exactly one of Bytes and Percent is set; both zero means unset.
type SizeOrPercent struct {
	Bytes   Size
	Percent float64
}

// Of resolves the value against a filesystem of total bytes.
func (v SizeOrPercent) Of(total int64) int64 {
	if v.Percent > 0 {
		return int64(float64(total) * v.Percent / 100)
	}
	return int64(v.Bytes)
}

func (v SizeOrPercent) String() string {
	if v.Percent > 0 {
		return strconv.FormatFloat(v.Percent, 'f', -1, 64) + "%"
	}
	return v.Bytes.String()
}

// MarshalText writes "90%" or a Size.
func (v SizeOrPercent) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText reads "90%" or a Size.
func (v *SizeOrPercent) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || f <= 0 || f > 100 {
			return fmt.Errorf("%q is not a percentage: use a number above 0 and at most 100, e.g. 90%%", s)
		}
		*v = SizeOrPercent{Percent: f}
		return nil
	}
	sz, err := ParseSize(s)
	if err != nil {
		return fmt.Errorf("%q is neither a size nor a percentage: use e.g. 64GiB or 90%%", s)
	}
	*v = SizeOrPercent{Bytes: sz}
	return nil
}

// Secret is a string that never appears in logs or printed configs.
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// LogValue redacts the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
