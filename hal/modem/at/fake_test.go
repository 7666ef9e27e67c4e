package at

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/outpost-cctv/outpost/internal/ptytest"
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
//
// Besides answer lines, a transcript may hold directives:
//
//	(silence)      the modem answers nothing to this command
//	(raw) "..."    bytes, as a Go string literal, written without line ends
//	(pause)        what was written so far goes out, then a 150 ms pause
//	(late)         what was written so far goes out, then a 600 ms pause
//	(vanish)       the port disappears: the pty's master is closed
type fakeModem struct {
	mu   sync.Mutex
	cmds []string
	tr   transcript
}

func (f *fakeModem) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

// play makes the modem answer from tr from the next command on.
func (f *fakeModem) play(tr transcript) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tr = tr
}

func (f *fakeModem) serve(master *os.File) {
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
		lines, ok := f.tr[cmd]
		f.mu.Unlock()
		var out bytes.Buffer
		if echo {
			out.WriteString(cmd + "\r")
		}
		if cmd == "ATE0" {
			echo = false
		}
		if !ok {
			lines = []string{"ERROR"}
		}
		// Write in two pieces so lines arrive split.
		flush := func() bool {
			b := out.Bytes()
			defer out.Reset()
			if _, err := master.Write(b[:len(b)/2]); err != nil {
				return false
			}
			_, err := master.Write(b[len(b)/2:])
			return err == nil
		}
		for _, l := range lines {
			switch {
			case l == "(silence)":
				out.Reset()
			case l == "(vanish)":
				flush()
				master.Close()
				return
			case l == "(pause)", l == "(late)":
				if !flush() {
					return
				}
				d := 150 * time.Millisecond
				if l == "(late)" {
					d = 600 * time.Millisecond
				}
				<-time.After(d)
			case strings.HasPrefix(l, "(raw) "):
				b, err := strconv.Unquote(l[len("(raw) "):])
				if err != nil {
					panic(fmt.Sprintf("bad (raw) line %q: %v", l, err))
				}
				out.WriteString(b)
			default:
				out.WriteString("\r\n" + l + "\r\n")
			}
		}
		if !flush() {
			return
		}
	}
}

// ptyModem is a fake modem behind a stable path, a symbolic link to the
// slave of its current pseudo-terminal, as udev's /dev/serial/by-id links
// are to a modem's ttyUSB ports. vanish and reappear play a modem that
// resets and re-enumerates.
type ptyModem struct {
	t    *testing.T
	fm   *fakeModem
	link string
	pair *ptyPair
}

type ptyPair struct {
	master, slave *os.File
	wg            sync.WaitGroup
}

func (p *ptyPair) close() {
	p.master.Close() // ends serve's read
	p.slave.Close()
	p.wg.Wait()
}

// newPTYModem runs a fake modem playing the named transcript and returns
// it; the modem stops when the test ends.
func newPTYModem(t *testing.T, name string) *ptyModem {
	t.Helper()
	m := &ptyModem{t: t, fm: &fakeModem{tr: loadTranscript(t, name)}, link: filepath.Join(t.TempDir(), "ttyModem")}
	m.reappear()
	t.Cleanup(func() {
		if m.pair != nil {
			m.pair.close()
		}
	})
	return m
}

// reappear opens a new pseudo-terminal and points the link at it.
func (m *ptyModem) reappear() {
	t := m.t
	t.Helper()
	master, path := ptytest.Open(t)
	// Keep the slave open and raw while the pair lives, so the pty keeps
	// its settings and the master never sees a hang-up between readings.
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
	p := &ptyPair{master: master, slave: slave}
	p.wg.Add(1)
	go func() { defer p.wg.Done(); m.fm.serve(master) }()
	m.pair = p
	os.Remove(m.link)
	if err := os.Symlink(path, m.link); err != nil {
		t.Fatal(err)
	}
}

// vanish closes the pseudo-terminal and removes the link: the port is gone.
func (m *ptyModem) vanish() {
	m.pair.close()
	m.pair = nil
	if err := os.Remove(m.link); err != nil {
		m.t.Fatal(err)
	}
}

// startModem runs a fake modem playing the named transcript on a pty and
// returns the port's path. The modem stops when the test ends.
func startModem(t *testing.T, name string) (string, *fakeModem) {
	t.Helper()
	m := newPTYModem(t, name)
	return m.link, m.fm
}
