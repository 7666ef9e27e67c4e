package agent

import (
	"bufio"
	"bytes"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SystemStats is the board's state for telemetry/system. A nil field is
// not available on this board.
type SystemStats struct {
	CPUTempC             *float64
	Load1, Load5, Load15 *float64
	MemTotalBytes        *int64
	MemAvailableBytes    *int64
	Uptime               *time.Duration
}

// ReadSystem reads the board's state from a Linux root file system
// (os.DirFS("/") on a unit): the CPU temperature from
// /sys/class/thermal (the zone named cpu or soc, else the first), the
// load from /proc/loadavg, memory from /proc/meminfo and the uptime from
// /proc/uptime. What is missing or unreadable is left nil.
func ReadSystem(root fs.FS) SystemStats {
	var s SystemStats
	s.CPUTempC = cpuTemp(root)
	if b, err := fs.ReadFile(root, "proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		for i, p := range []**float64{&s.Load1, &s.Load5, &s.Load15} {
			if i < len(f) {
				if v, err := strconv.ParseFloat(f[i], 64); err == nil && v >= 0 {
					*p = &v
				}
			}
		}
	}
	if b, err := fs.ReadFile(root, "proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			f := strings.Fields(v)
			if len(f) == 0 {
				continue
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || n < 0 {
				continue
			}
			if len(f) > 1 && f[1] == "kB" {
				n *= 1024
			}
			switch k {
			case "MemTotal":
				s.MemTotalBytes = &n
			case "MemAvailable":
				s.MemAvailableBytes = &n
			}
		}
	}
	if b, err := fs.ReadFile(root, "proc/uptime"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil && v >= 0 {
				d := time.Duration(v * float64(time.Second))
				s.Uptime = &d
			}
		}
	}
	return s
}

func cpuTemp(root fs.FS) *float64 {
	zones, err := fs.Glob(root, "sys/class/thermal/thermal_zone*")
	if err != nil || len(zones) == 0 {
		return nil
	}
	sort.Strings(zones)
	pick := zones[0]
	for _, z := range zones {
		if b, err := fs.ReadFile(root, path.Join(z, "type")); err == nil {
			t := strings.ToLower(strings.TrimSpace(string(b)))
			if strings.Contains(t, "cpu") || strings.Contains(t, "soc") {
				pick = z
				break
			}
		}
	}
	b, err := fs.ReadFile(root, path.Join(pick, "temp"))
	if err != nil {
		return nil
	}
	milli, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || milli < -60000 || milli > 200000 {
		return nil // a sensor reading outside any board's range is a fault, not a temperature
	}
	c := float64(milli) / 1000
	return &c
}
