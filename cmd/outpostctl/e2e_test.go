package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/clip"
	"github.com/outpost-cctv/outpost/internal/faultproxy"
	"github.com/outpost-cctv/outpost/internal/testbroker"
)

// End-to-end tests of the control room's tool: a real mosquitto, a unit
// (outpost demo with the simulated camera) and the real outpostctl binary.

var bins struct{ outpost, outpostctl string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "outpostctl-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.outpost = filepath.Join(dir, "outpost")
	bins.outpostctl = filepath.Join(dir, "outpostctl")
	for _, b := range []struct{ out, pkg string }{{bins.outpost, "../outpost"}, {bins.outpostctl, "."}} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", b.pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// unit runs a simulated unit against the broker until the test ends.
func unit(t testing.TB, b *testbroker.Broker, id string, extra ...string) string {
	t.Helper()
	data := t.TempDir()
	args := append([]string{"demo", "--broker", b.URL(), "--unit-id", id, "--data", data}, extra...)
	cmd := exec.Command(bins.outpost, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() || os.Getenv("OUTPOST_TEST_UNIT_LOG") != "" {
			t.Logf("unit %s output:\n%s", id, out.String())
		}
	})
	return data
}

func ctl(t testing.TB, b *testbroker.Broker, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bins.outpostctl, append([]string{"--broker", b.URL()}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// waitOnline polls outpostctl units until the unit is listed online.
func waitOnline(t testing.TB, b *testbroker.Broker, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		out, _, _ := ctl(t, b, "units", "--json")
		var units []struct {
			ID     string `json:"id"`
			Status *struct {
				State string `json:"state"`
			} `json:"status"`
		}
		if json.Unmarshal([]byte(out), &units) == nil {
			for _, u := range units {
				if u.ID == id && u.Status != nil && u.Status.State == "online" {
					return
				}
			}
		}
	}
	t.Fatalf("unit %s never showed online", id)
}

type probe struct {
	Streams []struct {
		CodecName  string `json:"codec_name"`
		NbFrames   string `json:"nb_read_frames"`
		RFrameRate string `json:"r_frame_rate"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, file string) (frames int, seconds float64, codec string) {
	t.Helper()
	bin, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatal("ffprobe is not installed: run 'make test' (installs ffmpeg as root) or apt-get install ffmpeg")
	}
	out, err := exec.Command(bin, "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil || len(p.Streams) != 1 {
		t.Fatalf("ffprobe output: %v: %s", err, out)
	}
	frames, _ = strconv.Atoi(p.Streams[0].NbFrames)
	seconds, _ = strconv.ParseFloat(p.Format.Duration, 64)
	return frames, seconds, p.Streams[0].CodecName
}

func sha256File(t *testing.T, file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

type pullReport struct {
	Manifest struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
		Frames int    `json:"frames"`
		Chunks int    `json:"chunks"`
	} `json:"manifest"`
	ResumedChunks  int `json:"resumed_chunks"`
	ChunksReceived int `json:"chunks_received"`
	Duplicates     int `json:"duplicates"`
	Corrupt        int `json:"corrupt"`
}

func TestClipPull(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	unit(t, b, "cam-1")
	waitOnline(t, b, "cam-1")
	from := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	to := from.Add(5 * time.Second)
	waitRecorded(to)

	out := filepath.Join(t.TempDir(), "c.mp4")
	stdout, stderr, code := ctl(t, b, "clip", "pull", "cam-1", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339), "-o", out, "--json")
	rep := verifiedPull(t, out, stdout, stderr, code)
	checkClip(t, out, rep, 5*time.Second)
}

// verifiedPull checks that a clip pull succeeded and that the file's
// SHA-256 is the one in the unit's manifest, and returns its report.
func verifiedPull(t *testing.T, out, stdout, stderr string, code int) pullReport {
	t.Helper()
	if code != 0 {
		t.Fatalf("clip pull: exit %d\n%s", code, stderr)
	}
	var rep pullReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("report: %v: %s", err, stdout)
	}
	if got := sha256File(t, out); got != rep.Manifest.SHA256 {
		t.Fatalf("file SHA-256 %s, manifest %s", got, rep.Manifest.SHA256)
	}
	return rep
}

// checkClip checks a pulled clip with ffprobe: MJPEG, as many frames as
// the unit exported, and lasting about the range asked for. The simulated camera
// skips frames when the machine is too busy to take them at 25 fps (a test
// run with -race on two cores can be), so the count is checked against the
// unit's own count, and against the full rate only loosely.
func checkClip(t *testing.T, out string, rep pullReport, span time.Duration) {
	t.Helper()
	frames, secs, codec := ffprobe(t, out)
	full := int(span.Seconds() * 25)
	if codec != "mjpeg" || frames != rep.Manifest.Frames || frames < full*8/10 || frames > full+1 {
		t.Errorf("ffprobe: %d frames of %s; the unit exported %d; want about %d", frames, codec, rep.Manifest.Frames, full)
	}
	// On a machine too busy to keep up, the first or last fraction of a
	// second of the range may not have been recorded; the clip must still
	// cover most of it and never more.
	if secs < span.Seconds()*0.75 || secs > span.Seconds()+0.1 {
		t.Errorf("ffprobe: the clip lasts %.3f s, want %.1f s", secs, span.Seconds())
	}
}

// waitRecorded waits until footage up to t has been recorded and synced:
// footage accrues in real time, and the store syncs every second.
func waitRecorded(t time.Time) {
	time.Sleep(time.Until(t.Add(1500 * time.Millisecond)))
}

func TestClipPullResumesAfterKill(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	unit(t, b, "cam-2")
	waitOnline(t, b, "cam-2")
	from := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	to := from.Add(4 * time.Second)
	waitRecorded(to)
	out := filepath.Join(t.TempDir(), "c.mp4")
	const window = 4
	args := []string{"--broker", b.URL(), "clip", "pull", "cam-2", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339),
		"-o", out, "--chunk-size", "4096", "--window", strconv.Itoa(window), "--json"}

	// First run: kill it once part of the file is in.
	cmd := exec.Command(bins.outpostctl, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for received(out) < 50 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("the first pull never got 50 chunks in")
		}
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	had := received(out)

	stdout, stderr, code := ctl(t, b, args[2:]...)
	rep := verifiedPull(t, out, stdout, stderr, code)
	if rep.ResumedChunks < had || rep.ResumedChunks == 0 {
		t.Errorf("resumed with %d chunks, %d were on disk", rep.ResumedChunks, had)
	}
	if rep.Duplicates > window {
		t.Errorf("%d chunks re-sent after the resume, more than one window (%d)", rep.Duplicates, window)
	}
	t.Logf("killed with %d of %d chunks; resumed with %d, %d duplicates", had, rep.Manifest.Chunks, rep.ResumedChunks, rep.Duplicates)
}

// received counts the chunks marked in a partial download's map.
func received(out string) int {
	b, _ := os.ReadFile(out + ".part.map")
	return bytes.Count(b, []byte{1})
}

func TestUnitsAndSnapshot(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	unit(t, b, "cam-3")
	waitOnline(t, b, "cam-3")
	stdout, stderr, code := ctl(t, b, "units")
	if code != 0 || !strings.Contains(stdout, "cam-3") || !strings.Contains(stdout, "online") {
		t.Fatalf("units: exit %d\n%s%s", code, stdout, stderr)
	}
	out := filepath.Join(t.TempDir(), "s.jpg")
	if _, stderr, code := ctl(t, b, "snapshot", "cam-3", "-o", out); code != 0 {
		t.Fatalf("snapshot: exit %d: %s", code, stderr)
	}
	jpg, _ := os.ReadFile(out)
	if len(jpg) < 1000 || !bytes.HasPrefix(jpg, []byte{0xFF, 0xD8}) {
		t.Fatalf("snapshot is not a JPEG (%d bytes)", len(jpg))
	}
}

func TestOfflineAndUnknownUnits(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	_, stderr, code := ctl(t, b, "--timeout", "3s", "snapshot", "nobody", "-o", filepath.Join(t.TempDir(), "x.jpg"))
	if code != 4 || !strings.Contains(stderr, "unknown") {
		t.Errorf("unknown unit: exit %d: %s", code, stderr)
	}
	_, stderr, code = ctl(t, b, "units")
	if code != 0 {
		t.Errorf("units on an empty broker: exit %d: %s", code, stderr)
	}
	dead := &testbroker.Broker{Host: "127.0.0.1", Port: testbroker.FreePort(t)}
	_, stderr, code = ctl(t, dead, "units")
	if code != 5 {
		t.Errorf("broker down: exit %d: %s", code, stderr)
	}
}

// unitBehindLink starts a broker and a unit that reaches it through a
// fault-injecting proxy, as through a cellular link; the control room
// (outpostctl) talks to the broker directly.
func unitBehindLink(t *testing.T, id string, extra ...string) (*testbroker.Broker, *faultproxy.Proxy) {
	t.Helper()
	b := testbroker.Start(t, testbroker.Options{})
	link, err := faultproxy.Start(b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.Close() })
	unit(t, b.Via(link.Addr()), id, extra...)
	waitOnline(t, b, id)
	return b, link
}

// TestClipPullThroughBadLink puts a cellular-like link between the unit and
// the broker (latency, a bandwidth cap, a connection drop every few
// seconds): the pull completes and verifies.
func TestClipPullThroughBadLink(t *testing.T) {
	b, link := unitBehindLink(t, "cam-4")
	from := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	to := from.Add(2 * time.Second)
	waitRecorded(to)

	link.SetLatency(40 * time.Millisecond) // 80 ms round trip
	link.SetBandwidth(1 << 20)
	out := filepath.Join(t.TempDir(), "c.mp4")
	type result struct {
		stdout, stderr string
		code           int
	}
	done := make(chan result, 1)
	go func() {
		o, e, c := ctl(t, b, "--timeout", "60s", "clip", "pull", "cam-4", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339), "-o", out, "--json")
		done <- result{o, e, c}
	}()
	// Cut the unit's connection twice while chunks are flowing.
	for _, at := range []int{8, 20} {
		deadline := time.Now().Add(60 * time.Second)
		for received(out) < at && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		link.Drop()
	}
	r := <-done
	stdout, stderr, code := r.stdout, r.stderr, r.code
	rep := verifiedPull(t, out, stdout, stderr, code)
	checkClip(t, out, rep, 2*time.Second)
	st := link.Stats()
	t.Logf("link: %d connections dropped, %d bytes up; %d duplicates at the receiver", st.Dropped, st.BytesUp, rep.Duplicates)
	if st.Dropped < 2 {
		t.Errorf("the link dropped %d times, not twice: the test did not test recovery", st.Dropped)
	}
}

func TestTriggerAndEvents(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	unit(t, b, "cam-5")
	waitOnline(t, b, "cam-5")
	if _, stderr, code := ctl(t, b, "trigger", "cam-5", "--kind", "pir"); code != 0 {
		t.Fatalf("trigger: exit %d: %s", code, stderr)
	}
	// The recorder writes the event with the next frames; poll until the
	// unit lists it.
	deadline := time.Now().Add(15 * time.Second)
	for {
		stdout, stderr, code := ctl(t, b, "events", "cam-5", "--since", "1h", "--json")
		if code != 0 {
			t.Fatalf("events: exit %d: %s", code, stderr)
		}
		var evs []struct {
			Kind string    `json:"kind"`
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal([]byte(stdout), &evs); err != nil {
			t.Fatalf("events output: %v: %s", err, stdout)
		}
		if len(evs) == 1 && evs[0].Kind == "pir" && time.Since(evs[0].Time) < time.Minute {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trigger never appeared: %s", stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if stdout, _, code := ctl(t, b, "events", "cam-5"); code != 0 || !strings.Contains(stdout, "pir") || !strings.Contains(stdout, "outpostctl clip pull cam-5") {
		t.Errorf("events table: exit %d:\n%s", code, stdout)
	}
}

// TestMotionEvents: the simulated van crossing the view is detected on the
// unit, recorded as an event in the footage store and listed by
// outpostctl events.
func TestMotionEvents(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	cfg := filepath.Join(t.TempDir(), "unit.yaml")
	os.WriteFile(cfg, []byte("unit:\n  id: cam-6\ncamera:\n  width: 640\n  height: 360\n  sim:\n    motion_every: 6s\n    motion_duration: 2s\n"), 0o644)
	unit(t, b, "cam-6", "--config", cfg)
	waitOnline(t, b, "cam-6")
	// Crossings are 4 s apart, well above the detector's 2 s of quiet that
	// ends an event, so each crossing is its own event.
	deadline := time.Now().Add(40 * time.Second)
	for {
		stdout, stderr, code := ctl(t, b, "events", "cam-6", "--since", "1h", "--json")
		if code != 0 {
			t.Fatalf("events: exit %d: %s", code, stderr)
		}
		var evs []struct {
			Kind string `json:"kind"`
		}
		json.Unmarshal([]byte(stdout), &evs)
		if len(evs) >= 2 {
			for _, e := range evs {
				if e.Kind != "motion" {
					t.Errorf("event of kind %q", e.Kind)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than two motion events after 40 s of a van crossing every 6 s: %s", stdout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestClipPullEvent: a manual trigger is recorded as an event; its clip
// runs from the pre-roll before it to the post-roll after it.
func TestClipPullEvent(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	cfg := filepath.Join(t.TempDir(), "unit.yaml")
	os.WriteFile(cfg, []byte("unit:\n  id: cam-7\ncamera:\n  width: 320\n  height: 240\n  sim:\n    motion_every: 0s\nrecording:\n  pre_roll: 2s\n  post_roll: 2s\n"), 0o644)
	unit(t, b, "cam-7", "--config", cfg)
	waitOnline(t, b, "cam-7")
	waitRecorded(time.Now().Add(2 * time.Second)) // a pre-roll's worth of footage
	if _, stderr, code := ctl(t, b, "trigger", "cam-7"); code != 0 {
		t.Fatalf("trigger: exit %d: %s", code, stderr)
	}
	var seq uint64
	var at time.Time
	deadline := time.Now().Add(15 * time.Second)
	for seq == 0 {
		stdout, _, _ := ctl(t, b, "events", "cam-7", "--json")
		var evs []struct {
			Seq  uint64    `json:"seq"`
			Time time.Time `json:"time"`
		}
		if json.Unmarshal([]byte(stdout), &evs) == nil && len(evs) == 1 {
			seq, at = evs[0].Seq, evs[0].Time
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trigger was never listed: %s", stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitRecorded(at.Add(2 * time.Second)) // the post-roll
	out := filepath.Join(t.TempDir(), "e.mp4")
	stdout, stderr, code := ctl(t, b, "clip", "pull", "cam-7", "--event", strconv.FormatUint(seq, 10), "-o", out, "--json")
	rep := verifiedPull(t, out, stdout, stderr, code)
	checkClip(t, out, rep, 4*time.Second)
	if _, stderr, code := ctl(t, b, "clip", "pull", "cam-7", "--event", "999999", "-o", out+".x"); code != 3 {
		t.Errorf("unknown event: exit %d, want 3: %s", code, stderr)
	}
}

// TestCorruptChunkCaughtAndResent injects a damaged copy of a chunk into
// the transfer's chunk topic while a pull runs (as a faulty relay would):
// the receiver rejects it by its CRC, asks for it again, and the file
// still verifies.
func TestCorruptChunkCaughtAndResent(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "unit.yaml")
	os.WriteFile(cfg, []byte("unit:\n  id: cam-8\ncamera:\n  width: 640\n  height: 360\n"), 0o644)
	b, link := unitBehindLink(t, "cam-8", "--config", cfg)
	from := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	to := from.Add(2 * time.Second)
	waitRecorded(to)
	link.SetBandwidth(256 << 10) // a few seconds of transfer to inject into

	out := filepath.Join(t.TempDir(), "c.mp4")
	type result struct {
		stdout, stderr string
		code           int
	}
	done := make(chan result, 1)
	go func() {
		o, e, c := ctl(t, b, "clip", "pull", "cam-8", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339), "-o", out, "--chunk-size", "16384", "--json")
		done <- result{o, e, c}
	}()
	// Once the manifest is known and a few chunks are in, publish a
	// damaged copy of the last chunk (not yet sent: the window is far
	// behind it).
	deadline := time.Now().Add(30 * time.Second)
	var m clip.Manifest
	for received(out) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the pull never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	raw, err := os.ReadFile(out + ".part.json")
	if err != nil || json.Unmarshal(raw, &m) != nil {
		t.Fatalf("part manifest: %v", err)
	}
	bad := clip.EncodeChunk(nil, m.Chunks-1, m.Chunks, make([]byte, 100))
	bad[len(bad)-1] ^= 0xFF // CRC no longer matches
	frame := filepath.Join(t.TempDir(), "bad.bin")
	os.WriteFile(frame, bad, 0o644)
	if o, err := exec.Command("mosquitto_pub", "-h", b.Host, "-p", strconv.Itoa(b.Port), "-t", "outpost/cam-8/xfer/"+m.ID+"/chunk", "-f", frame).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, o)
	}
	r := <-done
	rep := verifiedPull(t, out, r.stdout, r.stderr, r.code)
	if rep.Corrupt != 1 {
		t.Errorf("%d corrupt chunks detected, want the 1 injected", rep.Corrupt)
	}
}
