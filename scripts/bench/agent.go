package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat;
// 100 on every Linux architecture Outpost runs on.
const clockTicks = 100

// procStats is what a process used: CPU time (user + system) and its peak
// resident set (VmHWM).
type procStats struct {
	CPU     float64 // seconds
	PeakRSS float64 // bytes
}

// readProc reads the CPU time and peak RSS of a running process.
func readProc(pid int) (procStats, error) {
	var st procStats
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return st, fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return st, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseFloat(f[11], 64)  // field 14
	stt, _ := strconv.ParseFloat(f[12], 64) // field 15
	st.CPU = (ut + stt) / clockTicks
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, l := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			st.PeakRSS = kb * 1024
		}
	}
	return st, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// agentRun is one recording of the stream by one program.
type agentRun struct {
	Stats  procStats
	Frames int // frames stored
	Served int // frames the server sent
}

// mjpegServer serves a test pattern as an HTTP MJPEG stream
// (multipart/x-mixed-replace) at real time. Every connection gets its own
// ffmpeg, which starts when the client connects and writes straight to
// the socket, so a client that probes the stream and then reconnects
// (Motion does) is served like a camera would serve it.
type mjpegServer struct {
	ln     net.Listener
	dir    string
	w, h   int
	logf   func(string, ...any)
	mu     sync.Mutex
	procs  []*exec.Cmd
	closed bool
	wg     sync.WaitGroup
}

func startMJPEGServer(dir string, w, h int, logf func(string, ...any)) (*mjpegServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &mjpegServer{ln: ln, dir: dir, w: w, h: h, logf: logf}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *mjpegServer) URL() string { return "http://" + s.ln.Addr().String() + "/" }

func (s *mjpegServer) serve() {
	defer s.wg.Done()
	for n := 0; ; n++ {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.stream(c.(*net.TCPConn), n)
		}()
	}
}

// stream answers one request with ffmpeg's multipart output.
func (s *mjpegServer) stream(c *net.TCPConn, n int) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimSpace(l) == "" {
			break
		}
	}
	if _, err := io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=ffmpeg\r\nCache-Control: no-cache\r\n\r\n"); err != nil {
		return
	}
	f, err := c.File()
	if err != nil {
		return
	}
	defer f.Close()
	args := []string{"-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=25", s.w, s.h),
		"-c:v", "mjpeg", "-q:v", "5", "-progress", "file:" + filepath.Join(s.dir, fmt.Sprintf("ffmpeg-%d.progress", n)),
		"-f", "mpjpeg", "pipe:1"}
	s.logf("connection %d: $ ffmpeg %s", n, shellJoin(args))
	cmd := exec.Command("ffmpeg", args...)
	cmd.Stdout = f
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return
	}
	s.procs = append(s.procs, cmd)
	s.mu.Unlock()
	cmd.Wait()
}

// Close stops serving and returns the frames served over all connections.
func (s *mjpegServer) Close() int {
	s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for _, p := range s.procs {
		p.Process.Signal(syscall.SIGTERM)
	}
	s.mu.Unlock()
	s.wg.Wait()
	total := 0
	ms, _ := filepath.Glob(filepath.Join(s.dir, "ffmpeg-*.progress"))
	for _, m := range ms {
		total += servedFrames(m)
	}
	return total
}

// servedFrames is the last frame count in ffmpeg's -progress file.
func servedFrames(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "frame="); ok {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return n
}

// record runs one program (motion or outpost) on a fresh stream for d,
// then stops it with SIGTERM and counts what it stored.
func (r *runner) record(ctx context.Context, who string, w, h int, d time.Duration, outpostBin string) (agentRun, error) {
	var res agentRun
	dir, err := os.MkdirTemp(r.outDir, who+"-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	srv, err := startMJPEGServer(dir, w, h, r.logf)
	if err != nil {
		return res, fmt.Errorf("MJPEG server: %v", err)
	}
	served := false
	defer func() {
		if !served {
			srv.Close()
		}
	}()
	url := srv.URL()
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o755)
	logPath := filepath.Join(r.outDir, who+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return res, err
	}
	defer logFile.Close()

	var cmd *exec.Cmd
	switch who {
	case "motion":
		conf := filepath.Join(dir, "motion.conf")
		os.WriteFile(conf, []byte(motionConf(url, data, filepath.Join(dir, "motion.log"), w, h)), 0o644)
		cmd = exec.Command("motion", "-n", "-c", conf)
	case "outpost":
		conf := filepath.Join(dir, "outpost.yaml")
		closed, _ := freePort()
		os.WriteFile(conf, []byte(outpostConf(url, data, w, h, closed)), 0o644)
		cmd = exec.Command(outpostBin, "run", "--config", conf)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		return res, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-time.After(d):
	case err := <-exited:
		b, _ := os.ReadFile(logPath)
		return res, fmt.Errorf("%s exited early (%v): %s", who, err, lastLines(b, 5))
	case <-ctx.Done():
		cmd.Process.Kill()
		<-exited
		return res, ctx.Err()
	}
	res.Stats, err = readProc(cmd.Process.Pid)
	if err != nil {
		return res, err
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
	res.Served, served = srv.Close(), true
	if who == "motion" {
		b, _ := os.ReadFile(filepath.Join(dir, "motion.log"))
		r.logf("motion.log:\n%s", lastLines(b, 40))
		res.Frames, err = r.motionFrames(ctx, data)
	} else {
		res.Frames, err = r.outpostFrames(ctx, outpostBin, data)
	}
	return res, err
}

func lastLines(b []byte, n int) string {
	ls := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// motionConf is Motion's configuration: the HTTP stream, detection on
// every frame, every frame stored as it came (passthrough, no
// re-encoding), no web server, no pictures. emulate_motion keeps the
// movie open for the whole run, as Outpost's continuous mode records
// every frame; detection still runs on every frame.
func motionConf(url, dir, log string, w, h int) string {
	return fmt.Sprintf(`daemon off
setup_mode off
log_file %s
log_level 6
target_dir %s
netcam_url %s
width %d
height %d
framerate 25
emulate_motion on
threshold 1500
event_gap 60
pre_capture 0
post_capture 0
movie_output on
movie_passthrough on
movie_codec mkv
movie_max_time 0
picture_output off
snapshot_interval 0
webcontrol_port 0
stream_port 0
`, log, dir, url, w, h)
}

// outpostConf is the agent's configuration: the HTTP stream at 25 fps,
// continuous recording (the default), motion detection (always on), and
// a broker that is not there, so that telemetry goes to the outbox.
func outpostConf(url, dir string, w, h, brokerPort int) string {
	return fmt.Sprintf(`unit:
  id: bench-unit
log:
  level: warn
data_dir: %s
camera:
  source: %s
  width: %d
  height: %d
  fps: 25
recording:
  mode: continuous
uplink:
  broker: tcp://127.0.0.1:%d
`, dir, url, w, h, brokerPort)
}

// motionFrames counts the video packets of every movie Motion wrote.
func (r *runner) motionFrames(ctx context.Context, dir string) (int, error) {
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".mkv") || strings.HasSuffix(p, ".mp4")) {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		return 0, errors.New("motion stored no movie (see bin/bench/motion.log and bench.log)")
	}
	total := 0
	for _, f := range files {
		out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0",
			"-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", f).Output()
		if err != nil {
			return total, fmt.Errorf("ffprobe %s: %v", f, err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(strings.Split(string(out), "\n")[0]))
		total += n
	}
	return total, nil
}

// outpostFrames sums the FRAMES column of `outpost footage ls`.
func (r *runner) outpostFrames(ctx context.Context, bin, data string) (int, error) {
	out, err := exec.CommandContext(ctx, bin, "footage", "ls", "--data", data).CombinedOutput()
	r.logf("$ outpost footage ls --data %s\n%s", data, out)
	if err != nil {
		return 0, fmt.Errorf("outpost footage ls: %v: %s", err, out)
	}
	col := -1
	total := 0
	for _, l := range strings.Split(string(out), "\n") {
		if col < 0 {
			if i := strings.Index(l, "FRAMES"); i >= 0 && strings.HasPrefix(l, "SEGMENT") {
				col = i
			}
			continue
		}
		if len(l) <= col || strings.TrimSpace(l) == "" {
			break
		}
		f := strings.Fields(l[col:])
		n, err := strconv.Atoi(f[0])
		if err != nil {
			break
		}
		total += n
	}
	if col < 0 {
		return 0, fmt.Errorf("outpost footage ls: no segment table in %q", out)
	}
	return total, nil
}

// benchAgent: the whole agent against Motion, each recording and
// motion-detecting the same HTTP MJPEG stream: 720p25, then 1080p25 if
// the time budget allows.
func (r *runner) benchAgent(ctx context.Context) {
	repro := fmt.Sprintf("`go run ./scripts/bench -only agent -agent-duration %s`", r.agentDur)
	if why := r.need("motion", "ffmpeg", "ffprobe"); why != "" {
		r.add(Row{Group: "agent", Figure: "Whole agent vs Motion", Goal: "≤ 0.5× Motion's CPU, ≤ 0.33× its peak memory", Reproduce: repro, NotMeasured: why})
		return
	}
	bin, err := filepath.Abs(filepath.Join(r.outDir, "outpost"))
	if err != nil {
		fatal(err)
	}
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/outpost")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		r.add(Row{Group: "agent", Figure: "Whole agent vs Motion", Goal: "≤ 0.5× Motion's CPU", Reproduce: repro, NotMeasured: fmt.Sprintf("go build ./cmd/outpost: %v: %s", err, out)})
		return
	}
	sizes := []struct {
		name string
		w, h int
	}{{"720p25", 1280, 720}, {"1080p25", 1920, 1080}}
	// Each recording takes its duration plus about 4 s to start, stop and
	// count what was stored.
	const overhead = 4 * time.Second
	const minDur = 15 * time.Second
	for i, sz := range sizes {
		runs, dur := r.count, r.agentDur
		if i > 0 {
			left := r.budget - time.Since(r.start)
			if r.quick {
				r.add(Row{Group: "agent", Figure: "Whole agent vs Motion, " + sz.name, Goal: "—", Reproduce: repro, NotMeasured: "quick mode does 720p only"})
				continue
			}
			// Shorter recordings rather than fewer: each figure stays a
			// median of r.count runs.
			if fit := left/time.Duration(2*runs) - overhead; fit < dur {
				dur = fit.Truncate(5 * time.Second)
			}
			if dur < minDur {
				r.add(Row{Group: "agent", Figure: "Whole agent vs Motion, " + sz.name, Goal: "—", Reproduce: repro,
					NotMeasured: fmt.Sprintf("not within the time budget (%s left of %s; %d × 2 recordings of at least %s needed)", left.Round(time.Second), r.budget, runs, minDur)})
				continue
			}
		}
		var mo, op []agentRun
		var failed error
		for k := 0; k < runs && failed == nil; k++ {
			for _, who := range []string{"motion", "outpost"} {
				r.say("%s %s run %d/%d, %s", who, sz.name, k+1, runs, dur)
				res, err := r.record(ctx, who, sz.w, sz.h, dur, bin)
				r.logf("%s %s: %+v err=%v", who, sz.name, res, err)
				if err != nil {
					failed = fmt.Errorf("%s: %v", who, err)
					break
				}
				if who == "motion" {
					mo = append(mo, res)
				} else {
					op = append(op, res)
				}
			}
		}
		if failed != nil {
			r.add(Row{Group: "agent", Figure: "Whole agent vs Motion, " + sz.name, Goal: "≤ 0.5× Motion's CPU, ≤ 0.33× its peak memory", Reproduce: repro, NotMeasured: failed.Error()})
			continue
		}
		r.agentRows(sz.name, dur, mo, op, fmt.Sprintf("`go run ./scripts/bench -only agent -agent-duration %s`", dur))
	}
}

func runMedian(rs []agentRun, f func(agentRun) float64) float64 {
	var v []float64
	for _, x := range rs {
		v = append(v, f(x))
	}
	return median(v)
}

func (r *runner) agentRows(name string, dur time.Duration, mo, op []agentRun, repro string) {
	secs := dur.Seconds()
	cpu := func(a agentRun) float64 { return a.Stats.CPU }
	rss := func(a agentRun) float64 { return a.Stats.PeakRSS }
	frames := func(a agentRun) float64 { return float64(a.Frames) }
	served := func(a agentRun) float64 { return float64(a.Served) }
	oc, mc := runMedian(op, cpu), runMedian(mo, cpu)
	or, mr := runMedian(op, rss), runMedian(mo, rss)
	of, mf := runMedian(op, frames), runMedian(mo, frames)
	os_, ms := runMedian(op, served), runMedian(mo, served)
	n := len(op)
	ver := r.peers["motion"].Version
	head := fmt.Sprintf("Whole agent, %s MJPEG over HTTP from ffmpeg on loopback, %.0f s, record + motion-detect (median of %d)", name, secs, n)
	r.add(Row{Group: "agent", Figure: head + ": CPU time (user + system)",
		Ours: fmt.Sprintf("%.2f s (%.1f %% of a core)", oc, 100*oc/secs), Peer: fmt.Sprintf("Motion %s, passthrough: %.2f s (%.1f %% of a core)", ver, mc, 100*mc/secs),
		Ratio: ratioTimes(oc, mc), Goal: "≤ 0.5× Motion's", Met: ptr(oc <= 0.5*mc), Reproduce: repro,
		Values: map[string]float64{"cpu-s": oc, "motion-cpu-s": mc, "seconds": secs}})
	r.add(Row{Group: "agent", Figure: name + ": peak resident memory (VmHWM)",
		Ours: fmt.Sprintf("%.1f MiB", or/(1<<20)), Peer: fmt.Sprintf("Motion: %.1f MiB", mr/(1<<20)),
		Ratio: ratioTimes(or, mr), Goal: "≤ 0.33× Motion's", Met: ptr(or <= 0.33*mr), Reproduce: "same",
		Values: map[string]float64{"rss-bytes": or, "motion-rss-bytes": mr}})
	r.add(Row{Group: "agent", Figure: name + ": frames stored (`outpost footage ls`; Motion's movies by ffprobe)",
		Ours: fmt.Sprintf("%s of %s served", fmtInt(of), fmtInt(os_)), Peer: fmt.Sprintf("Motion: %s of %s served", fmtInt(mf), fmtInt(ms)),
		Ratio: ratioTimes(of/max(os_, 1), mf/max(ms, 1)) + " (shares of served)", Goal: "≥ Motion's share, ≥ 99 % of served",
		Met: ptr(of/max(os_, 1) >= mf/max(ms, 1) && of >= 0.99*os_), Reproduce: "same",
		Values: map[string]float64{"frames": of, "served": os_, "motion-frames": mf, "motion-served": ms}})
}
