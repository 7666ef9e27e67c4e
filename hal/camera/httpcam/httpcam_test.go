package httpcam

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/hal/camera/internal/footagetest"
	"github.com/outpost-cctv/outpost/hal/camera/mjpeg"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// footageDir holds the footage generated for this package's tests.
var footageDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "httpcam-footage-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	footageDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func testJPEG(t testing.TB, w, h, seed int) []byte {
	t.Helper()
	m := image.NewGray(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = uint8(i*seed + seed)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fileFrames splits a raw MJPEG file into its frames.
func fileFrames(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := mjpeg.NewReader(f, mjpeg.Options{Mode: mjpeg.Raw})
	var out [][]byte
	for {
		b, _, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
}

// logBuffer collects log lines for checking.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func openCam(t *testing.T, cfg Config, log io.Writer) (*Camera, error) {
	t.Helper()
	if log == nil {
		log = io.Discard
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Open(ctx, cfg, clock.Real{}, slog.New(slog.NewTextHandler(log, nil)))
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func next(t *testing.T, c *Camera, limit time.Duration) (camera.Frame, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	return c.Next(ctx)
}

// TestFFmpegStream reads the multipart stream ffmpeg serves: every frame
// arrives intact and in order, at the file's rate.
func TestFFmpegStream(t *testing.T) {
	file := footagetest.Generate(t, footageDir, 1, "1280x720")
	want := fileFrames(t, file)
	srv := footagetest.Serve(t, file)
	c, err := openCam(t, Config{URL: srv.URL}, nil)
	if err != nil {
		t.Fatalf("%v\nffmpeg: %s", err, srv.Log())
	}
	start := time.Now()
	var got [][]byte
	for len(got) < 30 {
		f, err := next(t, c, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if f.Width != 1280 || f.Height != 720 || f.Codec != camera.MJPEG {
			t.Fatalf("frame %+v", f)
		}
		got = append(got, f.Data)
	}
	elapsed := time.Since(start)
	// The first frame may be any of the file's; the rest follow in order.
	first := -1
	for i, w := range want {
		if bytes.Equal(w, got[0]) {
			first = i
		}
	}
	if first < 0 {
		t.Fatal("the first frame is none of the file's")
	}
	for i, g := range got {
		if !bytes.Equal(g, want[(first+i)%len(want)]) {
			t.Fatalf("frame %d is not the file's frame %d", i, (first+i)%len(want))
		}
	}
	// 29 intervals at 25 fps is 1.16 s; ffmpeg may send a little ahead.
	if elapsed < 900*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("30 frames took %v, want about 1.2 s at 25 fps", elapsed)
	}
	if h := c.Health(); h.FPS < 18 || h.FPS > 32 || h.Dropped != 0 || h.Condition != camera.ConditionOK {
		t.Errorf("health %+v", h)
	}
}

// TestFFmpegRestart kills the server and starts it again: capture resumes
// by itself, and the gap is reported.
func TestFFmpegRestart(t *testing.T) {
	file := footagetest.Generate(t, footageDir, 1, "1280x720")
	srv := footagetest.Serve(t, file)
	var log logBuffer
	c, err := openCam(t, Config{URL: srv.URL}, &log)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := next(t, c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	srv.Kill()
	killed := time.Now()
	go func() {
		time.Sleep(800 * time.Millisecond)
		srv.Resume()
	}()
	// Frames buffered before the kill may still come; then the next
	// frame comes from a new connection.
	var f camera.Frame
	for {
		f, err = next(t, c, 8*time.Second)
		if err != nil {
			t.Fatalf("Next = %v; want capture to resume by itself\nlog:\n%s", err, log.String())
		}
		if f.Time.After(killed.Add(700 * time.Millisecond)) {
			break
		}
	}
	resumed := time.Since(killed)
	if resumed > 5*time.Second {
		t.Errorf("capture resumed %v after the kill, want within a few seconds", resumed)
	}
	h := c.Health()
	if h.Reconnects < 1 || h.LastGap < 700*time.Millisecond || h.LastGap > 5*time.Second {
		t.Errorf("health %+v: want a reconnect and the gap", h)
	}
	if !strings.Contains(log.String(), "camera frames resumed") || !strings.Contains(log.String(), "gap=") {
		t.Errorf("no gap in the log:\n%s", log.String())
	}
}

// TestFFmpegGone: a server that stays down is reported at the frame
// timeout with the reason, and capture resumes when it is back.
func TestFFmpegGone(t *testing.T) {
	file := footagetest.Generate(t, footageDir, 1, "1280x720")
	srv := footagetest.Serve(t, file)
	c, err := openCam(t, Config{URL: srv.URL, FrameTimeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	var nerr error
	for nerr == nil {
		_, nerr = next(t, c, 5*time.Second)
	}
	if !errors.Is(nerr, camera.ErrNoFrames) || !strings.Contains(nerr.Error(), "connection refused") {
		t.Fatalf("Next = %v, want no frames, saying the connection is refused", nerr)
	}
	if h := c.Health(); h.Condition != camera.ConditionNoFrames {
		t.Errorf("condition %q", h.Condition)
	}
	srv.Resume()
	if _, err := next(t, c, 5*time.Second); err != nil {
		for errors.Is(err, camera.ErrNoFrames) { // one more timeout may pass while it restarts
			_, err = next(t, c, 5*time.Second)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// streamServer serves frames as multipart MJPEG from a Go handler, for
// what ffmpeg will not do: authentication and bad input.
type streamServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests int
	gone     chan struct{} // closed when a stalled client goes away
}

func newStreamServer(t *testing.T, h func(s *streamServer, w http.ResponseWriter, r *http.Request, n int)) *streamServer {
	s := &streamServer{gone: make(chan struct{}, 10)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		n := s.requests
		s.mu.Unlock()
		h(s, w, r, n)
	}))
	t.Cleanup(s.Close)
	return s
}

func writePart(w http.ResponseWriter, boundary string, img []byte) {
	fmt.Fprintf(w, "--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", boundary, len(img))
	w.Write(img)
	io.WriteString(w, "\r\n")
	w.(http.Flusher).Flush()
}

// serveFrames streams imgs, then more of img until the client leaves.
func serveFrames(w http.ResponseWriter, r *http.Request, imgs ...[]byte) {
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=frame")
	for _, img := range imgs {
		writePart(w, "frame", img)
	}
	for r.Context().Err() == nil {
		writePart(w, "frame", imgs[len(imgs)-1])
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAuth(t *testing.T) {
	img := testJPEG(t, 64, 48, 1)
	const user, pass = "viewer", "s3cret"
	digestCheck := func(r *http.Request, nonce string) bool {
		h := r.Header.Get("Authorization")
		cs := parseChallenges([]string{h})
		if len(cs) != 1 || cs[0].scheme != "digest" {
			return false
		}
		p := cs[0].params
		md := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
		ha1 := md(user + ":" + p["realm"] + ":" + pass)
		ha2 := md("GET:" + p["uri"])
		return p["nonce"] == nonce && p["uri"] == r.URL.RequestURI() && p["response"] == md(ha1+":"+nonce+":"+p["nc"]+":"+p["cnonce"]+":auth:"+ha2)
	}
	for _, tc := range []struct {
		name       string
		user, pass string
		handler    func(s *streamServer, w http.ResponseWriter, r *http.Request, n int)
		wantErr    string
	}{
		{"basic", user, pass, func(s *streamServer, w http.ResponseWriter, r *http.Request, n int) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="IP Camera"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			serveFrames(w, r, img)
		}, ""},
		{"digest", user, pass, func(s *streamServer, w http.ResponseWriter, r *http.Request, n int) {
			if !digestCheck(r, "nonce-1") {
				w.Header().Add("WWW-Authenticate", `Basic realm="IP Camera"`)
				w.Header().Add("WWW-Authenticate", `Digest realm="IP Camera", qop="auth", nonce="nonce-1", opaque="o"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			serveFrames(w, r, img)
		}, ""},
		{"wrong password", user, "guess", func(s *streamServer, w http.ResponseWriter, r *http.Request, n int) {
			if !digestCheck(r, "nonce-1") {
				w.Header().Set("WWW-Authenticate", `Digest realm="IP Camera", qop="auth", nonce="nonce-1"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			serveFrames(w, r, img)
		}, `the camera refused the username and password (realm "IP Camera"): check camera.username and camera.password`},
		{"no credentials", "", "", func(s *streamServer, w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("WWW-Authenticate", `Basic realm="IP Camera"`)
			w.WriteHeader(http.StatusUnauthorized)
		}, `the camera asks for a username and password (realm "IP Camera"): set camera.username and camera.password`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newStreamServer(t, tc.handler)
			c, err := openCam(t, Config{URL: srv.URL + "/video.mjpg", Username: tc.user, Password: tc.pass}, nil)
			if tc.wantErr != "" {
				if !errors.Is(err, camera.ErrNeedsAttention) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open = %v, want a needs-attention error %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := next(t, c, 5*time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDigestReconnect: a reconnection reuses the digest scheme, and a
// nonce the camera calls stale is replaced without calling the
// credentials wrong.
func TestDigestReconnect(t *testing.T) {
	img := testJPEG(t, 64, 48, 1)
	var mu sync.Mutex
	nonce := "n1"
	srv := newStreamServer(t, func(s *streamServer, w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		cur := nonce
		mu.Unlock()
		h := r.Header.Get("Authorization")
		switch {
		case h == "":
			w.Header().Set("WWW-Authenticate", `Digest realm="cam", qop="auth", nonce="`+cur+`"`)
			w.WriteHeader(http.StatusUnauthorized)
		case !strings.Contains(h, `nonce="`+cur+`"`):
			w.Header().Set("WWW-Authenticate", `Digest realm="cam", qop="auth", stale=true, nonce="`+cur+`"`)
			w.WriteHeader(http.StatusUnauthorized)
		default:
			// One frame per connection: each Next reconnects.
			w.Header().Set("Content-Type", "multipart/x-mixed-replace;boundary=frame")
			writePart(w, "frame", img)
		}
	})
	c, err := openCam(t, Config{URL: srv.URL, Username: "u", Password: "p", FrameTimeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := next(t, c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// The reconnection sends the remembered digest at once.
	if _, err := next(t, c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	before := srv.requests
	srv.mu.Unlock()
	if before != 3 { // challenge, first connection, second connection
		t.Errorf("%d requests, want 3: the digest was not reused", before)
	}
	mu.Lock()
	nonce = "n2"
	mu.Unlock()
	if _, err := next(t, c, 5*time.Second); err != nil {
		t.Fatalf("after the nonce went stale: %v", err)
	}
}

func TestBadResponses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		handler   http.HandlerFunc
		attention bool
		want      string
	}{
		{"login page", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, "<!DOCTYPE html><html><title>Login</title></html>")
		}, true, "the camera sent a web page (text/html), not an MJPEG stream: check the URL in camera.source"},
		{"html served as octet-stream", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			io.WriteString(w, "<!DOCTYPE html><html><title>Login</title></html>")
		}, true, `neither multipart MJPEG nor a raw JPEG stream: it starts with "<!DOCTYPE html>`},
		{"not found", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, true, "404 Not Found: check the stream's path"},
		{"forbidden", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }, true, "403 Forbidden"},
		{"H.264", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Content-Type", "video/mp4") }, true, "the camera sent video/mp4, not an MJPEG stream"},
		{"server error", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }, false, "the camera answered 503 Service Unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			_, err := openCam(t, Config{URL: srv.URL + "/cam", FrameTimeout: time.Second}, nil)
			if err == nil || errors.Is(err, camera.ErrNeedsAttention) != tc.attention || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v; want attention=%v, %q", err, tc.attention, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "httpcam: "+srv.URL+"/cam: ") {
				t.Errorf("error %q does not name the camera", err)
			}
		})
	}
}

// TestBadInput: damaged parts, garbage and parts over the cap among good
// frames are dropped and counted; the good frames all arrive.
func TestBadInput(t *testing.T) {
	good := [][]byte{testJPEG(t, 64, 48, 1), testJPEG(t, 64, 48, 2), testJPEG(t, 64, 48, 3), testJPEG(t, 64, 48, 4)}
	big := testJPEG(t, 640, 480, 5)
	srv := newStreamServer(t, func(s *streamServer, w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=frame")
		writePart(w, "frame", good[0])
		io.WriteString(w, "garbage between parts\r\n")
		fmt.Fprintf(w, "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(good[1])-100)
		w.Write(good[1][:len(good[1])-100]) // truncated
		io.WriteString(w, "\r\n")
		writePart(w, "frame", good[1])
		writePart(w, "frame", big) // over the cap
		fmt.Fprintf(w, "--frame\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello\r\n")
		writePart(w, "frame", good[2])
		writePart(w, "frame", good[3])
		<-r.Context().Done()
	})
	c, err := openCam(t, Config{URL: srv.URL, MaxFrameSize: len(big) - 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for range 4 {
		f, err := next(t, c, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.Data)
	}
	for i := range good {
		if !bytes.Equal(got[i], good[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	h := c.Health()
	if h.Dropped != 3 || h.SkippedBytes == 0 {
		t.Fatalf("health %+v: want 3 dropped (truncated, over the cap, not an image) and skipped bytes", h)
	}
}

// TestStall: a stream that stops without closing is reported at the
// frame timeout, the connection is closed, and a new one is made.
func TestStall(t *testing.T) {
	img := testJPEG(t, 64, 48, 1)
	srv := newStreamServer(t, func(s *streamServer, w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=frame")
		writePart(w, "frame", img)
		<-r.Context().Done() // stall until the client gives up
		s.gone <- struct{}{}
	})
	c, err := openCam(t, Config{URL: srv.URL, FrameTimeout: 300 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := next(t, c, 5*time.Second); err != nil { // the frame Open read
		t.Fatal(err)
	}
	_, err = next(t, c, 5*time.Second)
	if !errors.Is(err, camera.ErrNoFrames) || !strings.Contains(err.Error(), "stopped sending") {
		t.Fatalf("Next = %v, want the stall reported", err)
	}
	select {
	case <-srv.gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the stalled connection was not closed")
	}
	// A new connection brings a frame. Its reconnect backoff (250 ms) is
	// close to the 300 ms frame timeout, so on a loaded machine Next may
	// report the wait once more before the frame arrives; the source must
	// deliver within a few seconds all the same.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := next(t, c, 5*time.Second)
		if err == nil {
			break
		}
		if !errors.Is(err, camera.ErrNoFrames) || time.Now().After(deadline) {
			t.Fatalf("Next after the stall = %v, want a frame from a new connection", err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "rtsp://cam/stream"}, `"rtsp://cam/stream" is not an http:// or https:// URL`},
		{Config{URL: "http://admin:pw@cam/video.mjpg"}, "http://admin:xxxxx@cam/video.mjpg: give the username and password in camera.username and camera.password, not in the URL"},
		{Config{URL: "http://cam/v", Password: "pw"}, "a password without a username"},
	} {
		_, err := Open(context.Background(), tc.cfg, clock.Real{}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want %q", tc.cfg.URL, err, tc.want)
		}
	}
}
