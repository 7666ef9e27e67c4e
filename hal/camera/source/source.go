// Package source says what a camera source string (camera.source in the
// config, --camera on the command line) means, without opening anything:
// config validation uses it, and package hal/camera/open opens what it
// names. It imports no backend, so checking a config stays cheap.
//
// The forms are:
//
//	sim                         the simulated camera
//	/dev/videoN                 a V4L2 device
//	/dev/v4l/by-id/NAME         a V4L2 device by a name that survives
//	/dev/v4l/by-path/NAME       replugging and reboots (preferred)
//	http://HOST[:PORT]/PATH     an IP camera's MJPEG stream
//	https://HOST[:PORT]/PATH
//	file:PATH                   a raw MJPEG file, replayed
package source

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Kind is the kind of camera a source names.
type Kind int

const (
	Sim Kind = iota + 1
	V4L2
	HTTP
	File
)

func (k Kind) String() string {
	switch k {
	case Sim:
		return "sim"
	case V4L2:
		return "v4l2"
	case HTTP:
		return "http"
	case File:
		return "file"
	}
	return "unknown"
}

var (
	videoRe = regexp.MustCompile(`^/dev/video[0-9]{1,3}$`)
	byRe    = regexp.MustCompile(`^/dev/v4l/by-(id|path)/[^/]+$`)
)

// forms lists the accepted forms for error messages.
const forms = "use sim, /dev/videoN, /dev/v4l/by-id/NAME, http(s)://HOST/PATH or file:PATH"

// Parse returns the kind of camera s names and its target: the device
// path, the URL, or the file's path.
func Parse(s string) (Kind, string, error) {
	switch {
	case s == "sim":
		return Sim, "", nil
	case strings.HasPrefix(s, "/dev/"):
		if videoRe.MatchString(s) || byRe.MatchString(s) {
			return V4L2, s, nil
		}
		return 0, "", fmt.Errorf("%q is not a V4L2 camera device: use /dev/videoN or, better, its stable /dev/v4l/by-id/... name (ls /dev/v4l/by-id)", s)
	case strings.HasPrefix(s, "http://"), strings.HasPrefix(s, "https://"):
		u, err := url.Parse(s)
		if err != nil {
			return 0, "", fmt.Errorf("%q is not a valid URL: %v", Redact(s), errWithoutURL(err))
		}
		if u.Host == "" || u.Hostname() == "" {
			return 0, "", fmt.Errorf("%q has no host", s)
		}
		if u.User != nil {
			return 0, "", fmt.Errorf("%q: give the username and password in camera.username and camera.password, not in the URL (which is logged)", Redact(s))
		}
		if u.Fragment != "" {
			return 0, "", fmt.Errorf("%q: a URL fragment (#...) is never sent to the camera: remove it", s)
		}
		return HTTP, s, nil
	case strings.HasPrefix(s, "file:"):
		p := strings.TrimPrefix(s, "file:")
		switch {
		case p == "":
			return 0, "", fmt.Errorf("%q names no file: use file:PATH", s)
		case strings.HasPrefix(p, "//"):
			return 0, "", fmt.Errorf("%q: use file:/absolute/path or file:relative/path, without //", s)
		}
		return File, p, nil
	case s == "":
		return 0, "", fmt.Errorf("no camera source: %s", forms)
	}
	return 0, "", fmt.Errorf("%q is not a camera source: %s", Redact(s), forms)
}

// ValidateSource checks a camera source string without opening anything.
func ValidateSource(s string) error {
	_, _, err := Parse(s)
	return err
}

// Redact removes credentials from a source string, for logs.
func Redact(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		if i := strings.LastIndex(s, "@"); i >= 0 {
			if j := strings.Index(s, "://"); j >= 0 && j < i {
				return s[:j+3] + "xxxxx" + s[i:]
			}
		}
		return s
	}
	return u.Redacted()
}

// errWithoutURL strips the URL a url.Error repeats, which may hold
// credentials.
func errWithoutURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
