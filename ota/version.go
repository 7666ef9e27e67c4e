package ota

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Version is a parsed agent version: a semantic version "v1.2.3", with an
// optional pre-release "v1.2.3-rc.1", and the forms git describe gives a
// build after a tag, "v1.2.3-4-gabcdef" (four commits after v1.2.3: newer
// than v1.2.3, older than v1.2.4), possibly ending "-dirty". Build metadata
// after "+" is ignored.
type Version struct {
	Major, Minor, Patch int
	Pre                 []string // pre-release identifiers; none sorts after any
	Commits             int      // commits after the tag (git describe)
	Raw                 string
}

var (
	coreRE     = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-(.+))?$`)
	describeRE = regexp.MustCompile(`^(?:(.+)-)?([0-9]+)-g[0-9a-f]{4,40}$`)
	preIdentRE = regexp.MustCompile(`^[0-9A-Za-z-]+$`)
)

// ParseVersion parses s; a version that is not of the forms above is
// refused with ErrVersion.
func ParseVersion(s string) (Version, error) {
	v := Version{Raw: s}
	core, _, _ := strings.Cut(s, "+")
	core = strings.TrimSuffix(core, "-dirty")
	m := coreRE.FindStringSubmatch(core)
	if m == nil {
		return v, refuse(ErrVersion, fmt.Sprintf("version %q is not a release version like v1.2.3 (builds without a tag cannot be compared: tag the release)", s))
	}
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	v.Patch, _ = strconv.Atoi(m[3])
	rest := m[4]
	if d := describeRE.FindStringSubmatch(rest); d != nil {
		n, err := strconv.Atoi(d[2])
		if err != nil {
			return v, refuse(ErrVersion, fmt.Sprintf("version %q: commit count out of range", s))
		}
		v.Commits = n
		rest = d[1]
	}
	if rest != "" {
		for _, id := range strings.Split(rest, ".") {
			if !preIdentRE.MatchString(id) {
				return v, refuse(ErrVersion, fmt.Sprintf("version %q: pre-release %q is not dot-separated letters, digits and hyphens", s, rest))
			}
			v.Pre = append(v.Pre, id)
		}
	}
	return v, nil
}

func (v Version) String() string { return v.Raw }

// Compare returns -1, 0 or +1 as v is older than, the same as, or newer
// than w.
func (v Version) Compare(w Version) int {
	for _, d := range [...]int{v.Major - w.Major, v.Minor - w.Minor, v.Patch - w.Patch} {
		if d != 0 {
			return sign(d)
		}
	}
	if c := comparePre(v.Pre, w.Pre); c != 0 {
		return c
	}
	return sign(v.Commits - w.Commits)
}

func comparePre(a, b []string) int {
	switch {
	case len(a) == 0 && len(b) == 0:
		return 0
	case len(a) == 0:
		return 1 // a release is newer than its pre-releases
	case len(b) == 0:
		return -1
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		x, xerr := strconv.ParseUint(a[i], 10, 64)
		y, yerr := strconv.ParseUint(b[i], 10, 64)
		switch {
		case xerr == nil && yerr == nil:
			if x != y {
				if x < y {
					return -1
				}
				return 1
			}
		case xerr == nil:
			return -1 // numeric identifiers sort before alphanumeric ones
		case yerr == nil:
			return 1
		default:
			if c := strings.Compare(a[i], b[i]); c != 0 {
				return c
			}
		}
	}
	return sign(len(a) - len(b))
}

func sign(d int) int {
	switch {
	case d < 0:
		return -1
	case d > 0:
		return 1
	}
	return 0
}
