// Package httpcam captures from IP cameras that serve Motion JPEG over
// HTTP or HTTPS: multipart/x-mixed-replace streams as most cameras and
// ffmpeg's mpjpeg muxer serve them, and raw JPEG streams.
//
// # Connection
//
// Each session is one GET of the stream URL. Credentials (Config.Username
// and Password) are sent only when the camera asks: the first request
// goes without, a 401 says which scheme it wants, and digest (SHA-256 or
// MD5, qop auth or none) is preferred to basic. Later sessions reuse the
// scheme at once, a digest answering the same nonce with a counter until
// the camera calls it stale.
//
// The response is checked before any frame is read: a web page
// (text/html: a login page, a wrong URL) or another non-MJPEG type, 404,
// 401 with the credentials given, 403 all fail with
// camera.ErrNeedsAttention and say what to check; 5xx and network errors
// are retried. A Content-Type of application/octet-stream or image/jpeg
// (ffmpeg, some cameras) is sniffed: a body starting "--" is multipart,
// one starting with a JPEG is raw.
//
// # Reading
//
// Frames are split by package mjpeg and copied once into pooled buffers
// (Camera.Recycle hands them back). Damaged parts, parts over the frame
// size cap and parts that are not images are dropped and counted; a
// stream that stalls without closing is caught by the frame timeout, a
// closed or reset one ends the session, and the camera is reconnected
// with backoff (package hal/camera/internal/reconnect).
//
// No proxy from the environment is used: cameras are on the unit's own
// network.
package httpcam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/hal/camera/internal/pool"
	"github.com/outpost-cctv/outpost/hal/camera/internal/reconnect"
	"github.com/outpost-cctv/outpost/hal/camera/mjpeg"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// Config describes the camera to open.
type Config struct {
	// URL of the MJPEG stream, http:// or https://, without credentials.
	URL string
	// Username and Password, if the camera asks for them. The password is
	// never logged.
	Username, Password string
	// FrameTimeout is how long without frames before the camera is
	// reported and reconnected; 0 means 5 s. It also bounds the wait for
	// response headers.
	FrameTimeout time.Duration
	// MaxFrameSize caps a frame; larger ones are dropped. 0 means 4 MiB.
	MaxFrameSize int
	// Meter records health; nil makes one. Pass the same meter to every
	// Open of one camera to keep counts across reopenings.
	Meter *camera.Meter
	// UserAgent is sent with each request; empty sends "outpost".
	UserAgent string
}

// Camera is an IP camera that reconnects after failures. Next must not be
// called concurrently with itself; Close, Health and Recycle may be called
// at any time.
type Camera struct {
	cfg    Config
	url    *url.URL
	name   string // the URL without credentials, for logs
	client *http.Client
	clk    clock.Clock
	pool   *pool.Pool
	src    *reconnect.Source

	mu   sync.Mutex
	auth authorizer // the scheme the camera asked for, once known
}

var (
	_ camera.Source   = (*Camera)(nil)
	_ camera.Healther = (*Camera)(nil)
)

// Open connects to the camera and waits for its first frame. An error
// that wraps camera.ErrNeedsAttention will not clear by retrying (wrong
// URL, credentials, not MJPEG); others may (camera unreachable).
func Open(ctx context.Context, cfg Config, clk clock.Clock, log *slog.Logger) (*Camera, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("httpcam: %q is not an http:// or https:// URL", Redact(cfg.URL))
	}
	if u.User != nil {
		return nil, fmt.Errorf("httpcam: %s: give the username and password in camera.username and camera.password, not in the URL", Redact(cfg.URL))
	}
	if cfg.Password != "" && cfg.Username == "" {
		return nil, fmt.Errorf("httpcam: %s: a password without a username", cfg.URL)
	}
	if cfg.FrameTimeout <= 0 {
		cfg.FrameTimeout = 5 * time.Second
	}
	if cfg.MaxFrameSize <= 0 {
		cfg.MaxFrameSize = 4 << 20
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "outpost"
	}
	if clk == nil {
		clk = clock.Real{}
	}
	if cfg.Meter == nil {
		cfg.Meter = camera.NewMeter(clk, cfg.URL, cfg.FrameTimeout)
	}
	c := &Camera{
		cfg: cfg, url: u, name: "httpcam: " + cfg.URL, clk: clk,
		pool: pool.New(8, cfg.MaxFrameSize),
		client: &http.Client{Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: cfg.FrameTimeout,
			MaxIdleConns:          1,
			IdleConnTimeout:       30 * time.Second,
			DisableCompression:    true,
		}},
	}
	c.src = reconnect.New(reconnect.Options{
		Name: c.name, Connect: c.connect, Clock: clk, Log: log,
		Meter: cfg.Meter, FrameTimeout: cfg.FrameTimeout,
	})
	if err := c.src.Start(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Redact removes credentials from a URL, for logs and errors.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	return u.Redacted()
}

// connect makes the request and checks the response.
func (c *Camera) connect(ctx context.Context) (reconnect.Session, string, error) {
	// The body outlives ctx, which ends when connect returns; ctx only
	// aborts the request while connecting.
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	resp, err := c.get(sctx)
	if !stop() {
		err = errors.Join(ctx.Err(), err)
	}
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		cancel()
		return nil, "", err
	}
	opt, mode, err := c.framing(resp)
	if err != nil {
		resp.Body.Close()
		cancel()
		return nil, "", err
	}
	opt.MaxFrame = c.cfg.MaxFrameSize
	opt.Alloc = c.pool.Get
	s := &session{body: resp.Body, cancel: cancel, rd: mjpeg.NewReader(resp.Body, opt), clk: c.clk, meter: c.cfg.Meter, pool: c.pool}
	return s, mode, nil
}

// get requests the stream, answering an authentication challenge.
func (c *Camera) get(ctx context.Context) (*http.Response, error) {
	c.mu.Lock()
	auth := c.auth
	c.mu.Unlock()
	resp, err := c.do(ctx, auth)
	if err != nil {
		return nil, err
	}
	// A scheme remembered from an earlier session may have gone out of
	// date (the camera restarted): it is retried once afresh before the
	// credentials are called wrong.
	remembered := auth != nil
	for tries := 0; resp.StatusCode == http.StatusUnauthorized && tries < 3; tries++ {
		cs := parseChallenges(resp.Header.Values("WWW-Authenticate"))
		drain(resp)
		if c.cfg.Username == "" {
			return nil, camera.NeedsAttention(fmt.Errorf("the camera asks for a username and password%s: set camera.username and camera.password", realmOf(cs)))
		}
		stale := false
		for _, ch := range cs {
			stale = stale || strings.EqualFold(ch.params["stale"], "true")
		}
		if auth != nil && !remembered && !stale {
			c.setAuth(nil)
			return nil, camera.NeedsAttention(fmt.Errorf("the camera refused the username and password%s: check camera.username and camera.password", realmOf(cs)))
		}
		remembered = false
		if auth, err = chooseAuth(cs, c.cfg.Username, c.cfg.Password); err != nil {
			return nil, camera.NeedsAttention(err)
		}
		c.setAuth(auth)
		if resp, err = c.do(ctx, auth); err != nil {
			return nil, err
		}
	}
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		return resp, nil
	case code == http.StatusUnauthorized:
		drain(resp)
		return nil, camera.NeedsAttention(errors.New("the camera keeps refusing the username and password: check camera.username and camera.password"))
	case code == http.StatusNotFound:
		drain(resp)
		return nil, camera.NeedsAttention(errors.New("404 Not Found: check the stream's path in camera.source (the camera's manual gives it; often /video.mjpg or /mjpg/video.mjpg)"))
	case code == http.StatusForbidden:
		drain(resp)
		return nil, camera.NeedsAttention(errors.New("403 Forbidden: the camera's user may not view the stream"))
	case code >= 500:
		drain(resp)
		return nil, fmt.Errorf("the camera answered %s", resp.Status)
	default:
		drain(resp)
		return nil, camera.NeedsAttention(fmt.Errorf("the camera answered %s, not a stream", resp.Status))
	}
}

func (c *Camera) setAuth(a authorizer) {
	c.mu.Lock()
	c.auth = a
	c.mu.Unlock()
}

func realmOf(cs []challenge) string {
	for _, c := range cs {
		if r := c.params["realm"]; r != "" {
			return fmt.Sprintf(" (realm %q)", r)
		}
	}
	return ""
}

// do sends one GET.
func (c *Camera) do(ctx context.Context, auth authorizer) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Accept", "multipart/x-mixed-replace, image/jpeg;q=0.9, */*;q=0.1")
	if auth != nil {
		h, err := auth.header(req.Method, req.URL.RequestURI())
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", h)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the error's prefix already
		}
		return nil, fmt.Errorf("GET: %w%s", err, netHint(err))
	}
	return resp, nil
}

// netHint says what a network error suggests checking.
func netHint(err error) string {
	var ne net.Error
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return " (the camera is up but nothing listens on that port: is the camera's stream service on, and the URL's port right?)"
	case errors.As(err, &dns):
		return " (the camera's name does not resolve: use its IP address)"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.As(err, &ne) && ne.Timeout():
		return " (is the camera powered, and on the unit's network?)"
	}
	return ""
}

// drain reads a little of an unwanted body, so the connection can be
// reused, and closes it.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}

// framing decides how to read the body from its Content-Type.
func (c *Camera) framing(resp *http.Response) (mjpeg.Options, string, error) {
	ct := resp.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.Split(ct, ";")[0]))
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		b := params["boundary"]
		if b == "" {
			b = looseBoundary(ct)
		}
		return mjpeg.Options{Mode: mjpeg.Multipart, Boundary: b}, "multipart MJPEG", nil
	case mt == "", mt == "application/octet-stream", mt == "image/jpeg", mt == "video/x-motion-jpeg", mt == "video/mjpeg", mt == "video/x-mjpeg":
		return mjpeg.Options{Mode: mjpeg.Auto}, "MJPEG (" + orNone(mt) + ")", nil
	case strings.HasPrefix(mt, "text/"):
		return mjpeg.Options{}, "", camera.NeedsAttention(fmt.Errorf("the camera sent a web page (%s), not an MJPEG stream: check the URL in camera.source (the camera's manual gives the MJPEG stream's path, often /video.mjpg or /mjpg/video.mjpg)", mt))
	default:
		return mjpeg.Options{}, "", camera.NeedsAttention(fmt.Errorf("the camera sent %s, not an MJPEG stream: Outpost reads MJPEG only; set the camera to serve MJPEG, or use its MJPEG URL", mt))
	}
}

// looseBoundary finds boundary=... in a Content-Type that
// mime.ParseMediaType refused (cameras send odd ones).
func looseBoundary(ct string) string {
	i := strings.Index(strings.ToLower(ct), "boundary=")
	if i < 0 {
		return ""
	}
	b := ct[i+len("boundary="):]
	if j := strings.IndexAny(b, "; "); j >= 0 {
		b = b[:j]
	}
	return strings.Trim(b, `"`)
}

func orNone(s string) string {
	if s == "" {
		return "no Content-Type"
	}
	return s
}

// Next returns the next frame; see camera.Source.
func (c *Camera) Next(ctx context.Context) (camera.Frame, error) { return c.src.Next(ctx) }

// Close closes the connection.
func (c *Camera) Close() error {
	err := c.src.Close()
	c.client.CloseIdleConnections()
	return err
}

// Health implements camera.Healther.
func (c *Camera) Health() camera.Health { return c.src.Health() }

// Recycle hands back the Data of a frame the receiver has finished with,
// to be reused for a later frame: with it, capture allocates nothing per
// frame. The caller must not touch data afterwards. Optional.
func (c *Camera) Recycle(data []byte) { c.pool.Put(data) }

// session reads frames from one response.
type session struct {
	body    io.ReadCloser
	cancel  context.CancelFunc
	rd      *mjpeg.Reader
	clk     clock.Clock
	meter   *camera.Meter
	pool    *pool.Pool
	skipped uint64
}

func (s *session) Read() (camera.Frame, error) {
	for {
		data, info, err := s.rd.Next()
		if n := s.rd.Skipped(); n != s.skipped {
			s.meter.Skipped(n - s.skipped)
			s.skipped = n
		}
		if err == nil {
			return camera.Frame{Data: data, Codec: camera.MJPEG, Time: s.clk.Now(), Width: info.Width, Height: info.Height}, nil
		}
		var bad *mjpeg.BadFrameError
		switch {
		case errors.As(err, &bad):
			s.meter.Dropped(bad.Reason)
			continue
		case errors.Is(err, mjpeg.ErrNotMJPEG):
			return camera.Frame{}, camera.NeedsAttention(fmt.Errorf("%w: check the URL in camera.source", err))
		case err == io.EOF:
			return camera.Frame{}, errors.New("the camera closed the stream")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return camera.Frame{}, errors.New("the stream broke off (the camera restarted, or the network dropped)")
		}
		return camera.Frame{}, fmt.Errorf("read: %w", err)
	}
}

func (s *session) Close() error {
	s.cancel()
	return s.body.Close()
}
