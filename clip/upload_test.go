package clip

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// objectStore behaves like an object store's upload endpoint: resumable
// (Content-Range) or plain (one whole PUT), and fails on purpose: it cuts
// every cutEvery-th data request half-way, and answers 503 to every
// busyEvery-th.
type objectStore struct {
	mu        sync.Mutex
	resumable bool
	cutEvery  int // cut every n-th data request
	cutFirst  int // cut the first n data requests
	busyEvery int
	requests  int
	data      []byte
	complete  bool
	size      int64
	puts      int
}

var crRe = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+)$`)

func (s *objectStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodPut {
		http.Error(w, "PUT only", http.StatusMethodNotAllowed)
		return
	}
	s.requests++
	cr := r.Header.Get("Content-Range")
	if !s.resumable {
		if cr != "" {
			http.Error(w, "Content-Range not supported", http.StatusBadRequest)
			return
		}
		s.data = nil
		if !s.take(w, r) {
			return
		}
		s.finish(w, r, int64(len(s.data)))
		return
	}
	if size, ok := bytesStarQuery(cr); ok {
		s.size = size
		if s.complete {
			w.WriteHeader(http.StatusOK)
			return
		}
		if len(s.data) > 0 {
			w.Header().Set("Range", fmt.Sprintf("bytes=0-%d", len(s.data)-1))
		}
		w.WriteHeader(http.StatusPermanentRedirect)
		return
	}
	m := crRe.FindStringSubmatch(cr)
	if m == nil {
		http.Error(w, "bad Content-Range", http.StatusBadRequest)
		return
	}
	from, _ := strconv.ParseInt(m[1], 10, 64)
	total, _ := strconv.ParseInt(m[3], 10, 64)
	if from != int64(len(s.data)) {
		http.Error(w, "range does not continue the upload", http.StatusConflict)
		return
	}
	if s.busyEvery > 0 && s.requests%s.busyEvery == 0 {
		http.Error(w, "slow down", http.StatusServiceUnavailable)
		return
	}
	if !s.take(w, r) {
		return
	}
	if int64(len(s.data)) < total {
		w.Header().Set("Range", fmt.Sprintf("bytes=0-%d", len(s.data)-1))
		w.WriteHeader(http.StatusPermanentRedirect)
		return
	}
	s.finish(w, r, total)
}

func bytesStarQuery(cr string) (int64, bool) {
	var n int64
	if _, err := fmt.Sscanf(cr, "bytes */%d", &n); err == nil {
		return n, true
	}
	return 0, false
}

// take reads the body, or half of it before dropping the connection.
func (s *objectStore) take(w http.ResponseWriter, r *http.Request) bool {
	s.puts++
	if (s.cutEvery > 0 && s.puts%s.cutEvery == 0) || s.puts <= s.cutFirst {
		half := make([]byte, r.ContentLength/2)
		n, _ := io.ReadFull(r.Body, half)
		if s.resumable {
			s.data = append(s.data, half[:n]...)
		}
		hj, _ := w.(http.Hijacker)
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		return false
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return false
	}
	s.data = append(s.data, b...)
	return true
}

func (s *objectStore) finish(w http.ResponseWriter, r *http.Request, total int64) {
	sum := sha256.Sum256(s.data)
	if hex.EncodeToString(sum[:]) != r.Header.Get("X-Outpost-SHA256") || int64(len(s.data)) != total {
		s.data = nil
		http.Error(w, "checksum mismatch", http.StatusBadRequest)
		return
	}
	s.complete = true
	w.WriteHeader(http.StatusCreated)
}

func TestUpload(t *testing.T) {
	data := randomData(10<<20+17, 11)
	m := manifestFor("u1", data, DefaultChunkSize, 1)
	for _, tc := range []struct {
		name  string
		store *objectStore
	}{
		{"resumable", &objectStore{resumable: true}},
		{"resumable, cut and busy", &objectStore{resumable: true, cutEvery: 2, busyEvery: 3}},
		{"plain PUT", &objectStore{}},
		{"plain PUT, first two cut", &objectStore{cutFirst: 2}},
		{"plain PUT, always cut", &objectStore{cutEvery: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.store
			srv := httptest.NewTLSServer(st)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var last int64
			err := Upload(ctx, quiet(), srv.Client(), srv.URL+"/evidence/u1.mp4", bytes.NewReader(data), m,
				UploadOptions{PartSize: 1 << 20, Attempts: 6, RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond, Progress: func(n int64) { last = n }})
			st.mu.Lock()
			defer st.mu.Unlock()
			if tc.name == "plain PUT, always cut" {
				// A plain store that cuts every PUT never completes: the
				// upload must give up with an error, not hang or lie.
				if err == nil {
					t.Fatal("upload reported success to a store that never completed")
				}
				return
			}
			if err != nil {
				t.Fatalf("upload: %v", err)
			}
			if !st.complete || !bytes.Equal(st.data, data) || last != m.Size {
				t.Fatalf("store complete=%v, %d of %d bytes, progress %d", st.complete, len(st.data), len(data), last)
			}
			t.Logf("%d requests", st.requests)
		})
	}
}

func TestUploadRefused(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "signature expired", http.StatusForbidden)
	}))
	defer srv.Close()
	data := randomData(1000, 1)
	err := Upload(context.Background(), quiet(), srv.Client(), srv.URL, bytes.NewReader(data), manifestFor("u2", data, 100, 1), UploadOptions{})
	var ue *UploadError
	if err == nil || !asUploadError(err, &ue) || ue.Status != 403 {
		t.Fatalf("want a 403 UploadError, got %v", err)
	}
}

func asUploadError(err error, target **UploadError) bool {
	for err != nil {
		if u, ok := err.(*UploadError); ok {
			*target = u
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func TestCheckUploadURL(t *testing.T) {
	for _, tc := range []struct {
		url   string
		http  bool
		valid bool
	}{
		{"https://store.example/b/k?X-Amz-Signature=x", false, true},
		{"http://127.0.0.1:9000/b/k", false, false},
		{"http://127.0.0.1:9000/b/k", true, true},
		{"ftp://x/y", true, false},
		{"not a url", true, false},
	} {
		if err := CheckUploadURL(tc.url, tc.http); (err == nil) != tc.valid {
			t.Errorf("%s (http %v): %v", tc.url, tc.http, err)
		}
	}
}
