package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Machine is what the figures were measured on.
type Machine struct {
	CPU    string  `json:"cpu"`
	Cores  int     `json:"cores"`
	MemGiB float64 `json:"mem_gib"`
	Go     string  `json:"go"`
	Kernel string  `json:"kernel"`
	OS     string  `json:"os"`
	Date   string  `json:"date"`
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Date: time.Now().UTC().Format("2006-01-02 15:04 MST")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if m.CPU == "" {
		m.CPU = runtime.GOARCH
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"), "%f", &kb)
		m.MemGiB = kb / (1 << 20)
	}
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		m.Go = strings.TrimSpace(string(out))
	} else {
		m.Go = runtime.Version()
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	return m
}

// PeerStatus says whether a peer tool is there, from which Debian
// package, at which version, or why not.
type PeerStatus struct {
	Tool    string `json:"tool"`
	Package string `json:"package"`
	Path    string `json:"path,omitempty"`
	Version string `json:"version,omitempty"`
	Missing string `json:"missing,omitempty"`
}

// peerPackages maps each peer tool to the Debian package that has it.
var peerPackages = map[string]string{
	"dd":      "coreutils",
	"ffmpeg":  "ffmpeg",
	"ffprobe": "ffmpeg",
	"tjbench": "libjpeg-turbo-progs",
	"bsdiff":  "bsdiff",
	"xdelta3": "xdelta3",
	"zstd":    "zstd",
	"motion":  "motion",
	// Not a peer: the broker the clip-pull benchmark runs.
	"mosquitto": "mosquitto",
}

var peerOrder = []string{"dd", "ffmpeg", "ffprobe", "tjbench", "bsdiff", "xdelta3", "zstd", "motion", "mosquitto"}

// lookPath finds a tool on $PATH or in the system directories, which a
// user's $PATH may lack (mosquitto is in /usr/sbin).
func lookPath(t string) (string, error) {
	if p, err := exec.LookPath(t); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		if fi, err := os.Stat(d + "/" + t); err == nil && !fi.IsDir() {
			return d + "/" + t, nil
		}
	}
	return exec.LookPath(t)
}

// ensurePeers finds each peer tool and, as root, installs the Debian
// packages of those missing with apt-get. It never fails: a peer that is
// still missing is recorded with the reason, and its rows are skipped.
func (r *runner) ensurePeers(ctx context.Context, install bool) map[string]*PeerStatus {
	peers := map[string]*PeerStatus{}
	var missing []string
	seen := map[string]bool{}
	look := func() {
		missing = missing[:0]
		clear(seen)
		for _, t := range peerOrder {
			p := &PeerStatus{Tool: t, Package: peerPackages[t]}
			if path, err := lookPath(t); err == nil {
				p.Path = path
			} else {
				p.Missing = fmt.Sprintf("%s is not installed (Debian package %s: apt-get install %s)", t, p.Package, p.Package)
				if !seen[p.Package] {
					missing = append(missing, p.Package)
					seen[p.Package] = true
				}
			}
			peers[t] = p
		}
	}
	look()
	if len(missing) > 0 {
		switch {
		case !install:
			r.say("missing peers (not installing, -install=false): %s", strings.Join(missing, " "))
		case os.Geteuid() != 0:
			r.say("missing peers, not root so not installing: apt-get install %s", strings.Join(missing, " "))
		default:
			r.say("installing peers from Debian's packages: %s", strings.Join(missing, " "))
			ictx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			run := func(args ...string) error {
				cmd := exec.CommandContext(ictx, "apt-get", args...)
				cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
				out, err := cmd.CombinedOutput()
				r.logf("$ apt-get %s\n%s", strings.Join(args, " "), out)
				return err
			}
			err := run(append([]string{"install", "-y", "--no-install-recommends"}, missing...)...)
			if err != nil {
				// The package lists may be stale or absent: refresh once.
				if run("update") == nil {
					err = run(append([]string{"install", "-y", "--no-install-recommends"}, missing...)...)
				}
			}
			cancel()
			if err != nil {
				r.say("apt-get install failed (%v): see %s", err, r.logPath)
			}
			look()
			for _, p := range peers {
				if p.Missing != "" && err != nil {
					p.Missing += fmt.Sprintf("; apt-get install failed: %v", err)
				}
			}
		}
	}
	for _, t := range peerOrder {
		p := peers[t]
		if p.Missing == "" {
			p.Version = debVersion(p.Package)
		}
	}
	var have []string
	for _, t := range peerOrder {
		if peers[t].Missing == "" {
			have = append(have, t+" "+peers[t].Version)
		} else {
			r.say("peer missing: %s", peers[t].Missing)
		}
	}
	r.say("peers: %s", strings.Join(have, ", "))
	return peers
}

// debVersion is the installed version of a Debian package, or "".
func debVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// need returns "" when every tool is there, or why a row cannot be measured.
func (r *runner) need(tools ...string) string {
	var why []string
	for _, t := range tools {
		if p := r.peers[t]; p != nil && p.Missing != "" {
			why = append(why, p.Missing)
		}
	}
	return strings.Join(why, "; ")
}
