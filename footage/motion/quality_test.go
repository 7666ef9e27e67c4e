package motion

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/footage/motion/jpegdc"
)

// TestQualityOnLabelledClips runs the detector on the clips that
// scripts/motion-clips.sh makes with ffmpeg (objects of several sizes
// crossing; a cloud's brightness ramp; the IR illuminator's step; night
// noise; a lamp column swaying; rain-like speckle) and scores its events
// against the clips' labels: event-level precision and recall, goal 0.95
// each, and no event at all on the ramp, noise and speckle clips.
func TestQualityOnLabelledClips(t *testing.T) {
	if testing.Short() {
		t.Skip("the quality run is not repeated in -short runs (the emulated architectures): it measures the detector, not the platform")
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is not installed, and the quality test's clips are made with it: `make test` installs it (scripts/test-deps.sh)")
	}
	dir := t.TempDir()
	out, err := exec.Command("../../scripts/motion-clips.sh", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("motion-clips.sh: %v\n%s", err, out)
	}
	clips, _ := filepath.Glob(filepath.Join(dir, "*.mjpeg"))
	if len(clips) < 10 {
		t.Fatalf("%d clips made", len(clips))
	}
	sort.Strings(clips)
	var detected, truePos, labels, found int
	var report strings.Builder
	fmt.Fprintf(&report, "%-14s %-20s %s\n", "clip", "labels (s)", "events (s)")
	for _, clip := range clips {
		name := strings.TrimSuffix(filepath.Base(clip), ".mjpeg")
		want := readLabels(t, strings.TrimSuffix(clip, ".mjpeg")+".labels")
		got := detect(t, clip, 10)
		detected += len(got)
		labels += len(want)
		// An event is right when it overlaps a labelled crossing (with a
		// second's slack: the detector needs a few frames to start and a
		// quiet spell to end); a crossing is found when an event overlaps it.
		matched := make([]bool, len(want))
		for _, e := range got {
			ok := false
			for i, l := range want {
				if e[0] <= l[1]+1 && e[1] >= l[0]-1 {
					ok, matched[i] = true, true
				}
			}
			if ok {
				truePos++
			}
		}
		for _, m := range matched {
			if m {
				found++
			}
		}
		fmt.Fprintf(&report, "%-14s %-20s %s\n", name, fmtSpans(want), fmtSpans(got))
		switch name {
		case "ramp", "noise", "speckle":
			if len(got) > 0 {
				t.Errorf("%s: %d events, want none", name, len(got))
			}
		}
	}
	precision, recall := 1.0, 1.0
	if detected > 0 {
		precision = float64(truePos) / float64(detected)
	}
	if labels > 0 {
		recall = float64(found) / float64(labels)
	}
	t.Logf("motion quality on %d labelled clips: precision %.2f (%d of %d events right), recall %.2f (%d of %d crossings found)\n%s",
		len(clips), precision, truePos, detected, recall, found, labels, report.String())
	if precision < 0.95 || recall < 0.95 {
		t.Errorf("precision %.2f, recall %.2f: goal 0.95 each", precision, recall)
	}
}

func readLabels(t *testing.T, path string) [][2]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var a, b float64
		if _, err := fmt.Sscan(sc.Text(), &a, &b); err != nil {
			t.Fatalf("%s: %q: %v", path, sc.Text(), err)
		}
		out = append(out, [2]float64{a, b})
	}
	return out
}

// detect runs the detector over an MJPEG clip at fps and returns its
// events as [start, end] in seconds from the clip's start.
func detect(t *testing.T, path string, fps int) [][2]float64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDetector(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var dec jpegdc.Decoder
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	sec := func(at time.Time) float64 { return at.Sub(start).Seconds() }
	var out [][2]float64
	take := func(e Event, ok bool) {
		switch {
		case !ok || e.Update:
		case e.Started():
			out = append(out, [2]float64{sec(e.Start), -1})
		case len(out) > 0:
			out[len(out)-1][1] = sec(e.End)
		}
	}
	soi := []byte{0xff, 0xd8, 0xff}
	k := 0
	for len(data) > 0 {
		next := bytes.Index(data[3:], soi)
		frame := data
		if next >= 0 {
			frame, data = data[:next+3], data[next+3:]
		} else {
			data = nil
		}
		img, err := dec.Decode(frame, nil)
		if err != nil {
			t.Fatalf("%s frame %d: %v", path, k, err)
		}
		at := start.Add(time.Duration(k) * time.Second / time.Duration(fps))
		take(d.Process(at, img))
		k++
	}
	take(d.Flush())
	for i := range out {
		if out[i][1] < 0 {
			out[i][1] = float64(k) / float64(fps)
		}
	}
	return out
}

func fmtSpans(s [][2]float64) string {
	if len(s) == 0 {
		return "-"
	}
	var parts []string
	for _, x := range s {
		parts = append(parts, fmt.Sprintf("%.1f-%.1f", x[0], x[1]))
	}
	return strings.Join(parts, " ")
}
