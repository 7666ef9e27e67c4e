package at

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptPort answers each write with the next scripted reply, handing it
// out three bytes per Read so lines arrive in pieces. A Read with nothing
// to give waits a moment and returns (0, nil), as a serial port with a read
// timeout does.
type scriptPort struct {
	mu      sync.Mutex
	replies []string
	pending []byte
	writes  []string
}

func (p *scriptPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writes = append(p.writes, string(b))
	if len(p.replies) > 0 {
		p.pending = append(p.pending, p.replies[0]...)
		p.replies = p.replies[1:]
	}
	return len(b), nil
}

func (p *scriptPort) Read(b []byte) (int, error) {
	p.mu.Lock()
	if len(p.pending) == 0 {
		p.mu.Unlock()
		<-time.After(time.Millisecond)
		return 0, nil
	}
	defer p.mu.Unlock()
	n := copy(b[:min(3, len(b))], p.pending)
	p.pending = p.pending[n:]
	return n, nil
}

func TestSessionCommand(t *testing.T) {
	tests := []struct {
		name    string
		cmd     string
		reply   string
		want    []string
		urcs    []string
		wantErr error
		result  string
	}{
		{"plain", "AT+CSQ", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n", []string{"+CSQ: 20,99"}, nil, nil, ""},
		{"echo", "AT+CSQ", "AT+CSQ\r\r\n+CSQ: 20,99\r\nOK\r\n", []string{"+CSQ: 20,99"}, nil, nil, ""},
		{"urc in the middle", "AT+COPS?", "\r\n+QIND: \"csq\",20,99\r\n+COPS: 0,0,\"EE\",7\r\nRING\r\nOK\r\n",
			[]string{`+COPS: 0,0,"EE",7`}, []string{`+QIND: "csq",20,99`, "RING"}, nil, ""},
		{"bare newlines", "AT+CSQ", "\n+CSQ: 5,99\nOK\n", []string{"+CSQ: 5,99"}, nil, nil, ""},
		{"error", "AT+QENG=\"servingcell\"", "\r\nERROR\r\n", nil, nil, ErrError, "ERROR"},
		{"cme error", "AT+COPS?", "\r\n+CME ERROR: 10\r\n", nil, nil, ErrError, "+CME ERROR: 10"},
		{"no answer", "AT+CSQ", "", nil, nil, ErrNoAnswer, ""},
		{"no final result", "AT+CSQ", "\r\n+CSQ: 20,99\r\n", nil, nil, ErrNoAnswer, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &scriptPort{replies: []string{tt.reply}}
			var urcs []string
			s := NewSession(p, func(l string) { urcs = append(urcs, l) })
			got, err := s.Command(context.Background(), tt.cmd, 30*time.Millisecond)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			var ce *CommandError
			if tt.result != "" && (!errors.As(err, &ce) || ce.Result != tt.result) {
				t.Fatalf("error %v, want result %q", err, tt.result)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("lines %q, want %q", got, tt.want)
			}
			if !reflect.DeepEqual(urcs, tt.urcs) {
				t.Errorf("URCs %q, want %q", urcs, tt.urcs)
			}
			if p.writes[0] != tt.cmd+"\r" {
				t.Errorf("wrote %q", p.writes[0])
			}
		})
	}
}

func TestSessionCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := NewSession(&scriptPort{}, nil)
	if _, err := s.Command(ctx, "AT", time.Minute); !errors.Is(err, ErrNoAnswer) || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want no answer, canceled", err)
	}
}

func TestResponsePrefix(t *testing.T) {
	for cmd, want := range map[string]string{
		"AT+CSQ": "+CSQ:", "AT+CEREG?": "+CEREG:", `AT+QENG="servingcell"`: "+QENG:", "ATE0": "", "at+cops?": "+COPS:",
	} {
		if got := responsePrefix(cmd); got != want {
			t.Errorf("responsePrefix(%q) = %q, want %q", cmd, got, want)
		}
	}
}

// eofPort answers with reply, then reports the end of the stream.
type eofPort struct{ r *strings.Reader }

func (p eofPort) Write(b []byte) (int, error) { return len(b), nil }
func (p eofPort) Read(b []byte) (int, error)  { return p.r.Read(b) }

// FuzzSession feeds the session arbitrary modem output, seeded from the
// answers in testdata: it must return lines, a refusal or an error, never
// panic, and never return a final result code as a response line.
func FuzzSession(f *testing.F) {
	for _, l := range responseLines(f) {
		f.Add("AT+CSQ", "\r\n"+l+"\r\nOK\r\n")
	}
	f.Add("AT+CEREG?", "AT+CEREG?\r\r\n+CEREG: 1\r\n+CEREG: 0,1\r\nOK\r\n")
	f.Fuzz(func(t *testing.T, cmd, reply string) {
		s := NewSession(eofPort{strings.NewReader(reply)}, func(string) {})
		lines, err := s.Command(context.Background(), cmd, time.Second)
		if err != nil && !errors.Is(err, ErrError) && !errors.Is(err, io.EOF) {
			t.Fatalf("unexpected error %v", err)
		}
		for _, l := range lines {
			if l == "OK" || l == "ERROR" || strings.ContainsAny(l, "\r\n") {
				t.Fatalf("response line %q", l)
			}
		}
	})
}
