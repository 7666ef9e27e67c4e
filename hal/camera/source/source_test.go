package source

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in     string
		kind   Kind
		target string
		err    string
	}{
		{"sim", Sim, "", ""},
		{"/dev/video0", V4L2, "/dev/video0", ""},
		{"/dev/video12", V4L2, "/dev/video12", ""},
		{"/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_A1B2C3D4-video-index0", V4L2, "/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_A1B2C3D4-video-index0", ""},
		{"/dev/v4l/by-path/platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.2:1.0-video-index0", V4L2, "/dev/v4l/by-path/platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.2:1.0-video-index0", ""},
		{"http://192.168.8.20/video.mjpg", HTTP, "http://192.168.8.20/video.mjpg", ""},
		{"https://cam.local:8443/mjpg/video.mjpg?resolution=1280x720", HTTP, "https://cam.local:8443/mjpg/video.mjpg?resolution=1280x720", ""},
		{"file:test.mjpeg", File, "test.mjpeg", ""},
		{"file:/var/lib/outpost/replay.mjpeg", File, "/var/lib/outpost/replay.mjpeg", ""},
		{"/dev/sda", 0, "", `"/dev/sda" is not a V4L2 camera device: use /dev/videoN or, better, its stable /dev/v4l/by-id/... name`},
		{"/dev/v4l/by-id/", 0, "", "is not a V4L2 camera device"},
		{"http://admin:secret@192.168.8.20/video.mjpg", 0, "", `"http://admin:xxxxx@192.168.8.20/video.mjpg": give the username and password in camera.username and camera.password`},
		{"http:///video.mjpg", 0, "", "has no host"},
		{"http://cam/video.mjpg#x", 0, "", "fragment"},
		{"rtsp://192.168.8.20/stream1", 0, "", `"rtsp://192.168.8.20/stream1" is not a camera source: use sim, /dev/videoN`},
		{"file:", 0, "", "names no file"},
		{"file:///tmp/x.mjpeg", 0, "", "without //"},
		{"", 0, "", "no camera source"},
		{"video0", 0, "", "is not a camera source"},
	} {
		k, target, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %v, want an error containing %q", tc.in, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("Parse(%q): the error shows the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil || k != tc.kind || target != tc.target {
			t.Errorf("Parse(%q) = %v, %q, %v; want %v, %q", tc.in, k, target, err, tc.kind, tc.target)
		}
		if ValidateSource(tc.in) != nil {
			t.Errorf("ValidateSource(%q) refused a good source", tc.in)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"http://u:p@cam/v":  "http://u:xxxxx@cam/v",
		"http://cam/v":      "http://cam/v",
		"/dev/video0":       "/dev/video0",
		"http://u:p@ca m/v": "http://xxxxx@ca m/v",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
