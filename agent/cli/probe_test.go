package cli

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent"
)

func probeJPEG(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 64, 48)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func runProbe(t *testing.T, getenv func(string) string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	code := Main(context.Background(), Env{Stdout: &out, Stderr: &errb, Getenv: getenv}, append([]string{"probe", "camera"}, args...))
	return code, out.String(), errb.String()
}

func TestProbeFileWithSnapshot(t *testing.T) {
	dir := t.TempDir()
	img := probeJPEG(t)
	clip := filepath.Join(dir, "clip.mjpeg")
	os.WriteFile(clip, bytes.Repeat(img, 5), 0o644)
	snap := filepath.Join(dir, "snap.jpg")
	code, out, errs := runProbe(t, nil, "file:"+clip, "--fps", "20", "--for", "300ms", "--snapshot", snap)
	if code != agent.ExitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"Mode:     MJPEG 64x48 from a file @ 20 fps", "Picture:  64x48", "Dropped:  0 damaged or oversized", "Snapshot: " + snap} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(snap)
	if err != nil || !bytes.Equal(b, img) {
		t.Fatalf("snapshot %v: not the frame", err)
	}
}

// TestProbeIPCamera reads an IP camera's credentials from the config and
// the environment, never from a flag.
func TestProbeIPCamera(t *testing.T) {
	img := probeJPEG(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "viewer" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="cam"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=b")
		for r.Context().Err() == nil {
			fmt.Fprintf(w, "--b\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(img))
			w.Write(img)
			w.Write([]byte("\r\n"))
			w.(http.Flusher).Flush()
			time.Sleep(40 * time.Millisecond)
		}
	}))
	defer srv.Close()
	env := func(k string) string {
		if k == cameraPasswordEnv {
			return "s3cret"
		}
		return ""
	}
	code, out, errs := runProbe(t, env, srv.URL+"/video.mjpg", "--username", "viewer", "--for", "400ms")
	if code != agent.ExitOK || !strings.Contains(out, "Mode:     multipart MJPEG") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	code, _, errs = runProbe(t, nil, srv.URL+"/video.mjpg", "--username", "viewer", "--for", "400ms")
	if code != agent.ExitFailure || !strings.Contains(errs, "the camera refused the username and password") {
		t.Fatalf("without the password: exit %d, %s", code, errs)
	}
}

func TestProbeErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"/dev/video99"}, agent.ExitFailure, "is the camera plugged in?"},
		{[]string{"rtsp://cam/stream"}, agent.ExitUsage, "is not a camera source"},
		{[]string{}, agent.ExitUsage, "name the camera"},
		{[]string{"sim", "extra"}, agent.ExitUsage, `unexpected argument "extra"`},
		{[]string{"sim", "--for", "0", "--snapshot", "x.jpg"}, agent.ExitUsage, "a snapshot needs a capture"},
		{[]string{"file:/nonexistent.mjpeg", "--for", "100ms"}, agent.ExitFailure, "no such file or directory"},
	} {
		code, _, errs := runProbe(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("probe camera %v: exit %d, %q; want %d, %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
}
