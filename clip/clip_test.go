package clip

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func manifestFor(id string, data []byte, chunk, window int) Manifest {
	sum := sha256.Sum256(data)
	return Manifest{ID: id, Kind: "clip", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]),
		ChunkSize: chunk, Chunks: chunkCount(int64(len(data)), chunk), Window: window}
}

// link carries chunks from a sender to a receiver and acks back, losing or
// damaging a chosen share of them.
type link struct {
	mu       sync.Mutex
	rnd      *rand.Rand
	lossData float64
	lossAck  float64
	corrupt  float64
	chunks   chan []byte
	acks     chan Ack
	// cut stops delivery of chunks after this many (0: never).
	cut       int
	delivered int
}

func newLink(seed uint64) *link {
	return &link{rnd: rand.New(rand.NewPCG(seed, 1)), chunks: make(chan []byte, 1024), acks: make(chan Ack, 1024)}
}

func (l *link) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut > 0 && l.delivered >= l.cut {
		return nil
	}
	if l.rnd.Float64() < l.lossData {
		return nil
	}
	b := append([]byte(nil), payload...)
	// A corrupting link damages its second chunk for certain, then a
	// random share: the draws interleave with the acks' in an order the
	// scheduler picks, so chance alone could damage none of a short clip.
	if l.corrupt > 0 && (l.delivered == 1 || l.rnd.Float64() < l.corrupt) {
		b[len(b)-1] ^= 0x40
	}
	l.delivered++
	l.chunks <- b
	return nil
}

func (l *link) ack(ctx context.Context, a Ack) error {
	l.mu.Lock()
	lose := l.rnd.Float64() < l.lossAck && !a.Done
	l.mu.Unlock()
	if !lose {
		select {
		case l.acks <- a:
		default:
		}
	}
	return nil
}

func fastSend() SendOptions {
	return SendOptions{InitialRTO: 50 * time.Millisecond, MinRTO: 20 * time.Millisecond, MaxRTO: 200 * time.Millisecond, Idle: 5 * time.Second, ConfirmWait: 5 * time.Second}
}

type result struct {
	send SendResult
	err  error
}

func transfer(t *testing.T, l *link, data []byte, m Manifest, out string, have Bitmap) (SendResult, ReceiveStats, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, _, err := OpenPart(out, m)
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan result, 1)
	go func() {
		r, err := Send(ctx, quiet(), l, "t", m, bytes.NewReader(data), have, l.acks, fastSend())
		sent <- result{r, err}
	}()
	st, rerr := Receive(ctx, quiet(), p, l.chunks, l.ack, ReceiveOptions{Stall: 100 * time.Millisecond, Timeout: 10 * time.Second})
	r := <-sent
	if r.err != nil {
		t.Fatalf("send: %v", r.err)
	}
	return r.send, st, rerr
}

func randomData(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func checkFile(t *testing.T, out string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("received file differs from the sent one")
	}
	for _, s := range []string{".part", ".part.map", ".part.json"} {
		if _, err := os.Stat(out + s); err == nil {
			t.Errorf("%s left behind", s)
		}
	}
}

func TestTransfer(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		lossData, lossAck, bad float64
	}{
		{"clean link", 0, 0, 0},
		{"lossy link", 0.1, 0.1, 0},
		{"corrupting link", 0, 0, 0.05},
		{"everything", 0.05, 0.2, 0.05},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := randomData(1<<20+123, 7)
			m := manifestFor("t1", data, 16<<10, 8)
			l := newLink(uint64(len(tc.name)))
			l.lossData, l.lossAck, l.corrupt = tc.lossData, tc.lossAck, tc.bad
			out := filepath.Join(t.TempDir(), "clip.mp4")
			sr, rs, err := transfer(t, l, data, m, out, Bitmap{})
			if err != nil {
				t.Fatalf("receive: %v", err)
			}
			checkFile(t, out, data)
			if !sr.Confirmed {
				t.Error("sender did not see the confirmation")
			}
			if tc.lossData == 0 && tc.bad == 0 && tc.lossAck == 0 && sr.Resent != 0 {
				t.Errorf("clean link: %d chunks resent", sr.Resent)
			}
			if tc.bad > 0 && rs.Corrupt == 0 {
				t.Error("no corrupt chunk was detected")
			}
			t.Logf("sent %d (%d repeats), received %d (%d dup, %d corrupt)", sr.Sent, sr.Resent, rs.Chunks, rs.Duplicates, rs.Corrupt)
		})
	}
}

func TestResumeResendsAtMostOneWindow(t *testing.T) {
	data := randomData(800<<10, 9)
	const window = 8
	m := manifestFor("t2", data, 16<<10, window)
	out := filepath.Join(t.TempDir(), "clip.mp4")

	// First attempt: the link dies after 20 chunks; the receiver gives up.
	l := newLink(1)
	l.cut = 20
	ctx, cancel := context.WithCancel(context.Background())
	p, _, err := OpenPart(out, m)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Send(ctx, quiet(), l, "t", m, bytes.NewReader(data), Bitmap{}, l.acks, fastSend())
	}()
	_, err = Receive(ctx, quiet(), p, l.chunks, l.ack, ReceiveOptions{Stall: 50 * time.Millisecond, Timeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("want ErrTimeout, got %v", err)
	}
	cancel()
	<-done
	p.Close()

	// Second attempt resumes from what is on disk.
	p2, resumed, err := OpenPart(out, m)
	if err != nil {
		t.Fatal(err)
	}
	if resumed != 20 {
		t.Fatalf("resumed with %d chunks, want 20", resumed)
	}
	have := p2.Have()
	p2.Close()
	l2 := newLink(2)
	sr, rs, err := transfer(t, l2, data, m, out, have)
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, out, data)
	if dup := rs.Duplicates; dup > window {
		t.Errorf("%d chunks re-sent on resume, more than one window (%d)", dup, window)
	}
	if sr.Sent > m.Chunks-20+window {
		t.Errorf("resumed sender sent %d chunks for %d missing", sr.Sent, m.Chunks-20)
	}
}

func TestCorruptFileDetectedByHash(t *testing.T) {
	data := randomData(100<<10, 3)
	m := manifestFor("t3", data, 16<<10, 4)
	lie := append([]byte(nil), data...)
	lie[5000] ^= 1 // the sender's copy differs from what the manifest says
	out := filepath.Join(t.TempDir(), "clip.mp4")
	l := newLink(3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, _, _ := OpenPart(out, m)
	go Send(ctx, quiet(), l, "t", m, bytes.NewReader(lie), Bitmap{}, l.acks, fastSend())
	_, err := Receive(ctx, quiet(), p, l.chunks, l.ack, ReceiveOptions{})
	if !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("want ErrHashMismatch, got %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a file that failed verification was put in place")
	}
}

func TestSenderGivesUpWhenIdle(t *testing.T) {
	data := randomData(64<<10, 4)
	m := manifestFor("t4", data, 16<<10, 2)
	l := newLink(4)
	o := fastSend()
	o.Idle = 300 * time.Millisecond
	_, err := Send(context.Background(), quiet(), l, "t", m, bytes.NewReader(data), Bitmap{}, make(chan Ack), o)
	if !errors.Is(err, ErrIdle) {
		t.Fatalf("want ErrIdle, got %v", err)
	}
}

func TestSenderCancel(t *testing.T) {
	data := randomData(64<<10, 5)
	m := manifestFor("t5", data, 16<<10, 2)
	l := newLink(5)
	acks := make(chan Ack, 1)
	acks <- Ack{Cancel: true}
	r, err := Send(context.Background(), quiet(), l, "t", m, bytes.NewReader(data), Bitmap{}, acks, fastSend())
	if err != nil || !r.Cancelled {
		t.Fatalf("got %+v, %v", r, err)
	}
}

func TestChunkFraming(t *testing.T) {
	data := []byte("some clip bytes")
	f := EncodeChunk(nil, 3, 10, data)
	i, n, got, err := DecodeChunk(f)
	if err != nil || i != 3 || n != 10 || !bytes.Equal(got, data) {
		t.Fatalf("round trip: %d %d %q %v", i, n, got, err)
	}
	f[len(f)-1] ^= 1
	if _, _, _, err := DecodeChunk(f); !errors.Is(err, ErrChunkCorrupt) {
		t.Errorf("bit flip: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("OPX1"), EncodeChunk(nil, 10, 10, data), []byte("XXXX0000000000000000")} {
		if _, _, _, err := DecodeChunk(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestManifestValidate(t *testing.T) {
	good := manifestFor("abc", make([]byte, 1000), 100, 4)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Manifest){
		"id":     func(m *Manifest) { m.ID = "../etc" },
		"chunks": func(m *Manifest) { m.Chunks = 11 },
		"size":   func(m *Manifest) { m.ChunkSize = 0 },
		"sha":    func(m *Manifest) { m.SHA256 = "abc" },
	} {
		m := good
		mut(&m)
		if m.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBitmapRoundTrip(t *testing.T) {
	b := NewBitmap(19)
	for _, i := range []int{0, 1, 2, 5, 18} {
		b.Set(i)
	}
	got, err := DecodeBitmap(b.Encode(), 19)
	if err != nil || got.Count() != 5 || !got.Has(18) || got.Has(3) || got.Prefix() != 3 {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := DecodeBitmap(b.Encode(), 40); err == nil {
		t.Error("wrong length accepted")
	}
}

func FuzzDecodeChunk(f *testing.F) {
	f.Add(EncodeChunk(nil, 0, 1, []byte("x")))
	f.Add(EncodeChunk(nil, 5, 9, make([]byte, 100)))
	f.Add([]byte("OPX1\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		i, n, data, err := DecodeChunk(b)
		if err == nil {
			again := EncodeChunk(nil, i, n, data)
			if !bytes.Equal(again, b) {
				t.Fatal("decoded chunk does not re-encode to the same bytes")
			}
		}
	})
}

func FuzzDecodeBitmap(f *testing.F) {
	f.Add("", 0)
	f.Add(NewBitmap(9).Encode(), 9)
	f.Add("/w", 8)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		b, err := DecodeBitmap(s, n)
		if err == nil && b.Count() > n {
			t.Fatalf("bitmap of %d marks %d", n, b.Count())
		}
	})
}
