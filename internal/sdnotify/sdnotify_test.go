package sdnotify

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestSend(t *testing.T) {
	for _, tc := range []struct{ name, socket string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", "@outpost-sdnotify-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: tc.socket, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			n, err := New(tc.socket)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Send(Ready, Status("2/2 running\nsecond line"), Watchdog); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 512)
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			k, err := conn.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(buf[:k]), "READY=1\nSTATUS=2/2 running second line\nWATCHDOG=1"; got != want {
				t.Errorf("sent %q, want %q", got, want)
			}
		})
	}
}

func TestNoSocket(t *testing.T) {
	n, err := New("")
	if n != nil || err != nil {
		t.Fatalf("New(\"\") = %v, %v; want nil, nil", n, err)
	}
	if err := n.Send(Ready); err != nil {
		t.Errorf("a nil notifier: %v", err)
	}
	if _, err := New("vsock:2:1234"); err == nil {
		t.Error("a vsock address was accepted")
	}
	gone, _ := New(filepath.Join(t.TempDir(), "absent"))
	if err := gone.Send(Ready); err == nil {
		t.Error("sending to a missing socket succeeded")
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		wantErr   bool
	}{
		{"", "", 0, false},
		{"30000000", "", 30 * time.Second, false},
		{"30000000", "42", 30 * time.Second, false},
		{"30000000", "43", 0, false}, // another process's watchdog
		{"30000000", "x", 0, true},
		{"0", "", 0, true},
		{"-5", "", 0, true},
		{"30s", "", 0, true},
	} {
		got, err := WatchdogInterval(tc.usec, tc.pid, 42)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("WatchdogInterval(%q, %q) = %v, %v; want %v, error %v", tc.usec, tc.pid, got, err, tc.want, tc.wantErr)
		}
	}
}
