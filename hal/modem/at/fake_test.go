package at

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// transcript maps each command to the lines the modem answers. The line
// "(silence)" means the modem answers nothing.
type transcript map[string][]string

func loadTranscript(t testing.TB, name string) transcript {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	tr := transcript{}
	var cmd string
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case line == "", strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "> "):
			cmd = line[2:]
			tr[cmd] = nil
		default:
			tr[cmd] = append(tr[cmd], line)
		}
	}
	return tr
}

// responseLines returns every answer line of every transcript, the seeds
// of the parsers' fuzz targets.
func responseLines(t testing.TB) []string {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	var out []string
	for _, f := range files {
		for _, lines := range loadTranscript(t, filepath.Base(f)) {
			out = append(out, lines...)
		}
	}
	return out
}

// fakeModem plays a transcript on the master side of a pseudo-terminal:
// it echoes commands until ATE0, answers from the transcript, and "ERROR"
// to commands the transcript does not know. It records the commands.
type fakeModem struct {
	mu   sync.Mutex
	cmds []string
}

func (f *fakeModem) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

func (f *fakeModem) serve(master *os.File, tr transcript) {
	echo := true
	r := bufio.NewReader(master)
	for {
		raw, err := r.ReadString('\r')
		if err != nil {
			return
		}
		cmd := strings.TrimSpace(raw)
		if cmd == "" {
			continue
		}
		f.mu.Lock()
		f.cmds = append(f.cmds, cmd)
		f.mu.Unlock()
		var out bytes.Buffer
		if echo {
			out.WriteString(cmd + "\r")
		}
		if cmd == "ATE0" {
			echo = false
		}
		lines, ok := tr[cmd]
		if !ok {
			lines = []string{"ERROR"}
		}
		if len(lines) == 1 && lines[0] == "(silence)" {
			continue
		}
		for _, l := range lines {
			out.WriteString("\r\n" + l + "\r\n")
		}
		// Write in two pieces so lines arrive split.
		b := out.Bytes()
		if _, err := master.Write(b[:len(b)/2]); err != nil {
			return
		}
		if _, err := master.Write(b[len(b)/2:]); err != nil {
			return
		}
	}
}

// openPTY opens a pseudo-terminal pair and returns the master and the
// slave's path.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("ptsname: %v", err)
	}
	return m, "/dev/pts/" + strconv.Itoa(n)
}

// startModem runs a fake modem playing the named transcript on a pty and
// returns the slave's path. The modem stops when the test ends.
func startModem(t *testing.T, name string) (string, *fakeModem) {
	t.Helper()
	master, path := openPTY(t)
	// Keep the slave open and raw for the whole test, so the pty keeps its
	// settings and the master never sees a hang-up between readings.
	slave, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	if tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS); err == nil {
		tio.Iflag &^= unix.ICRNL | unix.INLCR | unix.IGNCR | unix.IXON
		tio.Oflag &^= unix.OPOST
		tio.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
		unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio)
	}
	fm := &fakeModem{}
	tr := loadTranscript(t, name)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); fm.serve(master, tr) }()
	t.Cleanup(func() {
		master.Close() // ends serve's read
		slave.Close()
		wg.Wait()
	})
	return path, fm
}
