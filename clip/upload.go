package clip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/outpost-cctv/outpost/internal/backoff"
	"github.com/outpost-cctv/outpost/internal/clock"
)

// Uploading straight to the control room's evidence store
//
// A large control room keeps evidence in S3-compatible object storage and
// hands the unit a presigned HTTPS URL; the clip then goes there without
// passing through the broker. Upload speaks the resumable-upload dialect of
// PUT with Content-Range that object stores use for resumable uploads:
//
//	PUT url, empty body, "Content-Range: bytes */SIZE"
//	  → 308 with "Range: bytes=0-N": N+1 bytes are stored; continue there
//	  → 308 without Range: nothing stored yet
//	  → 200/201: the object is complete
//	PUT url, "Content-Range: bytes A-B/SIZE", bytes A..B
//	  → 308 (more to come, Range as above) or 200/201 (complete)
//
// A store that answers the status query with anything else (a plain
// presigned PUT URL, say) gets the whole file in one PUT, retried whole.
// Every request carries "X-Outpost-SHA256" with the file's hash so the
// store (or a function in front of it) can verify the object.

// UploadOptions tunes Upload.
type UploadOptions struct {
	Clock clock.Clock
	// PartSize is the bytes sent per request (default 4 MiB).
	PartSize int64
	// Attempts bounds consecutive failed requests (default 8), retried
	// after a backoff from RetryMin (500 ms) to RetryMax (30 s).
	Attempts           int
	RetryMin, RetryMax time.Duration
	// Progress is called with the bytes the store holds.
	Progress func(stored int64)
}

// UploadError is a refusal by the store that retrying will not fix.
type UploadError struct {
	Status int
	Body   string
}

func (e *UploadError) Error() string {
	return fmt.Sprintf("clip: the upload URL answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Body)
}

var rangeRe = regexp.MustCompile(`^bytes=0-(\d+)$`)

// CheckUploadURL accepts https URLs, and http ones only when allowHTTP
// (tests on loopback).
func CheckUploadURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("upload_url %q is not a URL", raw)
	}
	if u.Scheme != "https" && !(allowHTTP && u.Scheme == "http") {
		return fmt.Errorf("upload_url must be https, not %q", u.Scheme)
	}
	return nil
}

// Upload sends the file described by m, read from r, to rawURL.
func Upload(ctx context.Context, log *slog.Logger, client *http.Client, rawURL string, r io.ReaderAt, m Manifest, o UploadOptions) error {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.PartSize == 0 {
		o.PartSize = 4 << 20
	}
	if o.Attempts == 0 {
		o.Attempts = 8
	}
	if o.RetryMin == 0 {
		o.RetryMin = 500 * time.Millisecond
	}
	if o.RetryMax == 0 {
		o.RetryMax = 30 * time.Second
	}
	bo := backoff.New(o.RetryMin, o.RetryMax)
	failures := 0
	retry := func(err error) error {
		var ue *UploadError
		if errors.As(err, &ue) || ctx.Err() != nil {
			return err
		}
		failures++
		if failures >= o.Attempts {
			return fmt.Errorf("clip: upload gave up after %d failed attempts: %w", failures, err)
		}
		log.Warn("upload interrupted; retrying", "transfer", m.ID, "err", err, "attempt", failures)
		return bo.Wait(ctx, o.Clock)
	}

	resumable := true
	for {
		var stored int64
		var done bool
		var err error
		if resumable {
			stored, done, resumable, err = uploadStatus(ctx, client, rawURL, m)
			if err != nil {
				if err := retry(err); err != nil {
					return err
				}
				continue
			}
		}
		if done {
			if o.Progress != nil {
				o.Progress(m.Size)
			}
			return nil
		}
		if !resumable {
			err = putRange(ctx, client, rawURL, r, m, 0, m.Size, false)
			if err == nil {
				if o.Progress != nil {
					o.Progress(m.Size)
				}
				return nil
			}
			if err := retry(err); err != nil {
				return err
			}
			continue
		}
		if o.Progress != nil {
			o.Progress(stored)
		}
		end := min(stored+o.PartSize, m.Size)
		if err := putRange(ctx, client, rawURL, r, m, stored, end, true); err != nil {
			if err := retry(err); err != nil {
				return err
			}
			continue
		}
		failures = 0
		bo.Reset()
	}
}

// uploadStatus asks the store how much it holds.
func uploadStatus(ctx context.Context, client *http.Client, rawURL string, m Manifest) (stored int64, done, resumable bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, rawURL, http.NoBody)
	if err != nil {
		return 0, false, false, &UploadError{Body: err.Error()}
	}
	req.Header.Set("Content-Range", fmt.Sprintf("bytes */%d", m.Size))
	req.Header.Set("X-Outpost-SHA256", m.SHA256)
	resp, err := client.Do(req)
	if err != nil {
		return 0, false, true, err
	}
	defer drain(resp)
	switch {
	case resp.StatusCode == http.StatusPermanentRedirect:
		n, ok := parseStored(resp.Header.Get("Range"))
		if !ok {
			return 0, false, true, fmt.Errorf("clip: the upload URL sent an unreadable Range %q", resp.Header.Get("Range"))
		}
		return n, false, true, nil
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated:
		return m.Size, true, true, nil
	case resp.StatusCode >= 500:
		return 0, false, true, fmt.Errorf("clip: upload URL: %s", resp.Status)
	default:
		// Not a resumable upload: fall back to one whole PUT.
		return 0, false, false, nil
	}
}

func parseStored(h string) (int64, bool) {
	if h == "" {
		return 0, true
	}
	mm := rangeRe.FindStringSubmatch(h)
	if mm == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(mm[1], 10, 64)
	return n + 1, err == nil
}

func putRange(ctx context.Context, client *http.Client, rawURL string, r io.ReaderAt, m Manifest, from, to int64, ranged bool) error {
	body := io.NewSectionReader(r, from, to-from)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, rawURL, body)
	if err != nil {
		return &UploadError{Body: err.Error()}
	}
	req.ContentLength = to - from
	if ranged && m.Size > 0 {
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to-1, m.Size))
	}
	req.Header.Set("X-Outpost-SHA256", m.SHA256)
	req.Header.Set("Content-Type", contentType(m.Kind))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusPermanentRedirect:
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("clip: upload URL: %s", resp.Status)
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &UploadError{Status: resp.StatusCode, Body: string(b)}
	}
}

func contentType(kind string) string {
	if kind == KindSnapshot {
		return "image/jpeg"
	}
	return "video/mp4"
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
