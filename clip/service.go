package clip

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
)

// Source is what the unit's transfer service needs of the footage store.
type Source interface {
	// ExportClip writes an MP4 of the footage in [from, to) to w and
	// returns its frame count. A range with no footage is an error for
	// which IsNoFootage is true.
	ExportClip(ctx context.Context, w io.Writer, from, to time.Time) (frames int, err error)
	// Snapshot returns a JPEG of the frame nearest at (the latest frame
	// when at is zero), reduced for the data budget unless full.
	Snapshot(ctx context.Context, at time.Time, full bool) (jpeg []byte, taken time.Time, err error)
	// Hold keeps [from, to) from deletion until Release; it returns the
	// hold's id.
	Hold(from, to time.Time, reason string) (id string, err error)
	Release(id string) error
	// EventRange is the range of footage kept around a recorded event:
	// from its pre-roll to its post-roll.
	EventRange(ctx context.Context, seq uint64) (from, to time.Time, err error)
	// IsNoFootage reports whether err means the range holds no footage.
	IsNoFootage(err error) bool
}

// Subscriber receives the control room's acknowledgements.
type Subscriber interface {
	Subscribe(ctx context.Context, filter string, h func(topic string, payload []byte)) error
}

// Error is a transfer.start failure with a reply code from uplink/wire
// ("bad_request", "not_found", "busy", "internal").
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return "clip: " + e.Message }

// ServiceOptions configures a Service.
type ServiceOptions struct {
	// Dir keeps prepared files until they are confirmed or expire.
	Dir string
	// Base is the unit's topic base, "<prefix>/<unit>/".
	Base  string
	Clock clock.Clock
	// Keep is how long a prepared, unconfirmed file (and the evidence hold
	// on its range) is kept for a resume (default 24 h).
	Keep time.Duration
	// HoldUntilConfirmed puts the clip's range on an evidence hold until
	// the control room confirms receipt (default true via NewService).
	HoldUntilConfirmed bool
	// MaxActive bounds transfers sending at once (default 2): the uplink
	// is shared with telemetry and events.
	MaxActive int
	Send      SendOptions
	// HTTP uploads to upload URLs; AllowHTTP accepts plain http:// URLs
	// (for tests on loopback; units in the field use https only).
	HTTP      *http.Client
	AllowHTTP bool
	Upload    UploadOptions
	// Attest, when set, makes the signed evidence manifest of a prepared
	// file; a failure is logged and the file sent without one.
	Attest func(ctx context.Context, a Attestation) (json.RawMessage, error)
}

// Attestation is what Attest signs for: a prepared file and who asked.
type Attestation struct {
	Manifest  Manifest
	Requester string
	Recipient string
	Reason    string
}

// Service is the unit's side of file transfers, run as a supervised
// component ("transfers"). The transfer.start command calls Start.
type Service struct {
	log *slog.Logger
	pub Publisher
	sub Subscriber
	src Source
	o   ServiceOptions

	jobs chan *job

	mu     sync.Mutex
	active map[string]*job
}

type job struct {
	m      Manifest
	upload string
	path   string
	have   Bitmap
	acks   chan Ack
	cancel context.CancelFunc
	done   chan struct{}
}

// sidecar is kept beside a prepared file: its manifest and hold.
type sidecar struct {
	Manifest Manifest  `json:"manifest"`
	HoldID   string    `json:"hold_id,omitempty"`
	Created  time.Time `json:"created"`
}

// NewService returns the transfer service.
func NewService(log *slog.Logger, pub Publisher, sub Subscriber, src Source, o ServiceOptions) *Service {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Keep == 0 {
		o.Keep = 24 * time.Hour
	}
	if o.MaxActive == 0 {
		o.MaxActive = 2
	}
	o.Send.Clock = o.Clock
	return &Service{log: log.With("component", "transfers"), pub: pub, sub: sub, src: src, o: o,
		jobs: make(chan *job), active: map[string]*job{}}
}

// Name implements agent.Component.
func (s *Service) Name() string { return "transfers" }

// Run subscribes to acknowledgements and sends the transfers Start hands
// it, until ctx ends; it then stops every transfer and waits for them.
func (s *Service) Run(ctx context.Context) error {
	if err := os.MkdirAll(s.o.Dir, 0o750); err != nil {
		return fmt.Errorf("clip: transfer directory: %w", err)
	}
	s.expire()
	if err := s.sub.Subscribe(ctx, s.o.Base+"xfer/+/ack", s.onAck); err != nil {
		return fmt.Errorf("clip: subscribing to acknowledgements: %w", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := s.o.Clock.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for _, j := range s.active {
				j.cancel()
			}
			s.mu.Unlock()
			return nil
		case <-tick.C():
			s.expire()
		case j := <-s.jobs:
			jctx, cancel := context.WithCancel(ctx)
			j.cancel = cancel
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cancel()
				if j.upload != "" {
					s.uploadJob(jctx, j)
				} else {
					s.send(jctx, j)
				}
			}()
		}
	}
}

func (s *Service) onAck(topic string, payload []byte) {
	rest, ok := strings.CutPrefix(topic, s.o.Base+"xfer/")
	id, ok2 := strings.CutSuffix(rest, "/ack")
	if !ok || !ok2 {
		return
	}
	var a Ack
	if err := json.Unmarshal(payload, &a); err != nil {
		s.log.Warn("ignoring an unreadable acknowledgement", "transfer", id, "err", err)
		return
	}
	s.mu.Lock()
	j := s.active[id]
	s.mu.Unlock()
	if j == nil {
		if a.Done || a.Cancel {
			// Confirmation of a transfer no longer sending (the unit
			// restarted, or the last ack was repeated).
			s.finish(id, a.Done)
		}
		return
	}
	select {
	case j.acks <- a:
	default:
		// The sender is behind; acks are cumulative, a later one covers this.
	}
}

func (s *Service) send(ctx context.Context, j *job) {
	defer func() {
		s.mu.Lock()
		if s.active[j.m.ID] == j {
			delete(s.active, j.m.ID)
		}
		s.mu.Unlock()
		close(j.done)
	}()
	f, err := os.Open(j.path)
	if err != nil {
		s.log.Error("prepared file vanished", "transfer", j.m.ID, "err", err)
		return
	}
	defer f.Close()
	start := s.o.Clock.Now()
	res, err := Send(ctx, s.log, s.pub, ChunkTopic(s.o.Base, j.m.ID), j.m, f, j.have, j.acks, s.o.Send)
	log := s.log.With("transfer", j.m.ID, "sent", res.Sent, "resent", res.Resent, "bytes", res.Bytes, "took", s.o.Clock.Now().Sub(start).Round(time.Millisecond))
	switch {
	case res.Confirmed:
		log.Info("transfer confirmed by the control room")
		f.Close()
		s.finish(j.m.ID, true)
	case res.Cancelled:
		log.Info("transfer cancelled by the control room; kept for a resume")
	case err != nil && !errors.Is(err, context.Canceled):
		log.Warn("transfer paused; the control room can resume it", "err", err)
	default:
		log.Info("transfer stopped")
	}
}

// UploadStatus is published on xfer/<id>/status while the unit uploads a
// file to an upload URL.
type UploadStatus struct {
	ID     string `json:"id"`
	State  string `json:"state"` // "uploading", "done" or "failed"
	Stored int64  `json:"stored"`
	Size   int64  `json:"size"`
	Error  string `json:"error,omitempty"`
}

// StatusTopic is where upload progress is published.
func StatusTopic(unitBase, id string) string { return unitBase + "xfer/" + id + "/status" }

func (s *Service) uploadJob(ctx context.Context, j *job) {
	defer func() {
		s.mu.Lock()
		if s.active[j.m.ID] == j {
			delete(s.active, j.m.ID)
		}
		s.mu.Unlock()
		close(j.done)
	}()
	topic := StatusTopic(s.o.Base, j.m.ID)
	publish := func(st UploadStatus) {
		b, _ := json.Marshal(st)
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := s.pub.Publish(pctx, topic, 1, false, b); err != nil {
			s.log.Debug("upload status not published", "transfer", j.m.ID, "err", err)
		}
	}
	f, err := os.Open(j.path)
	if err != nil {
		publish(UploadStatus{ID: j.m.ID, State: "failed", Size: j.m.Size, Error: err.Error()})
		return
	}
	defer f.Close()
	client := s.o.HTTP
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Minute}
	}
	o := s.o.Upload
	o.Clock = s.o.Clock
	var last time.Time
	o.Progress = func(stored int64) {
		if now := s.o.Clock.Now(); now.Sub(last) >= time.Second {
			last = now
			publish(UploadStatus{ID: j.m.ID, State: "uploading", Stored: stored, Size: j.m.Size})
		}
	}
	if err := Upload(ctx, s.log, client, j.upload, f, j.m, o); err != nil {
		s.log.Warn("upload failed", "transfer", j.m.ID, "err", err)
		publish(UploadStatus{ID: j.m.ID, State: "failed", Size: j.m.Size, Error: err.Error()})
		return
	}
	s.log.Info("uploaded to the evidence store", "transfer", j.m.ID, "bytes", j.m.Size)
	publish(UploadStatus{ID: j.m.ID, State: "done", Stored: j.m.Size, Size: j.m.Size})
	f.Close()
	s.finish(j.m.ID, true)
}

// finish removes a confirmed transfer's file and, when confirmed, releases
// its hold.
func (s *Service) finish(id string, confirmed bool) {
	if !idRe.MatchString(id) {
		return
	}
	sc, err := s.readSidecar(id)
	if err != nil {
		return
	}
	if sc.HoldID != "" && confirmed && s.o.HoldUntilConfirmed {
		if err := s.src.Release(sc.HoldID); err != nil {
			s.log.Warn("could not release the transfer's evidence hold", "transfer", id, "hold", sc.HoldID, "err", err)
		}
	}
	if confirmed {
		os.Remove(s.filePath(id))
		os.Remove(s.sidecarPath(id))
	}
}

// expire deletes prepared files older than Keep, releasing their holds.
func (s *Service) expire() {
	entries, err := os.ReadDir(s.o.Dir)
	if err != nil {
		return
	}
	now := s.o.Clock.Now()
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			if strings.HasSuffix(e.Name(), ".tmp") {
				os.Remove(filepath.Join(s.o.Dir, e.Name()))
			}
			continue
		}
		sc, err := s.readSidecar(id)
		if err != nil || now.Sub(sc.Created) < s.o.Keep {
			continue
		}
		s.mu.Lock()
		_, busy := s.active[id]
		s.mu.Unlock()
		if busy {
			continue
		}
		if sc.HoldID != "" {
			s.src.Release(sc.HoldID)
		}
		os.Remove(s.filePath(id))
		os.Remove(s.sidecarPath(id))
		s.log.Info("expired an unconfirmed transfer", "transfer", id, "created", sc.Created)
	}
}

func (s *Service) filePath(id string) string {
	ext := ".mp4"
	if strings.HasPrefix(id, KindSnapshot) {
		ext = ".jpg"
	}
	return filepath.Join(s.o.Dir, id+ext)
}
func (s *Service) sidecarPath(id string) string { return filepath.Join(s.o.Dir, id+".json") }

func (s *Service) readSidecar(id string) (sidecar, error) {
	var sc sidecar
	b, err := os.ReadFile(s.sidecarPath(id))
	if err != nil {
		return sc, err
	}
	if err := json.Unmarshal(b, &sc); err != nil {
		return sc, err
	}
	return sc, nil
}

// Start prepares the requested file (or finds the one an earlier request
// prepared), puts its range on hold, and hands it to Run to send. It
// returns the manifest the control room receives against.
func (s *Service) Start(ctx context.Context, a StartArgs) (Manifest, error) {
	return s.StartFor(ctx, a, "")
}

// StartFor is Start for a request made by requester (as the unit's command
// gate identified them), who goes into the evidence manifest.
func (s *Service) StartFor(ctx context.Context, a StartArgs, requester string) (Manifest, error) {
	if err := a.Validate(); err != nil {
		return Manifest{}, &Error{Code: "bad_request", Message: err.Error()}
	}
	if a.UploadURL != "" {
		if err := CheckUploadURL(a.UploadURL, s.o.AllowHTTP); err != nil {
			return Manifest{}, &Error{Code: "bad_request", Message: err.Error()}
		}
	}
	s.mu.Lock()
	if old := s.active[a.ID]; old != nil {
		// The same pull again: the control room restarted. Stop the old
		// sender and start from what the control room now has.
		old.cancel()
		s.mu.Unlock()
		select {
		case <-old.done:
		case <-ctx.Done():
			return Manifest{}, ctx.Err()
		}
		s.mu.Lock()
	}
	if len(s.active) >= s.o.MaxActive {
		s.mu.Unlock()
		return Manifest{}, &Error{Code: "busy", Message: fmt.Sprintf("%d transfers are already sending; try again when one ends", len(s.active))}
	}
	s.mu.Unlock()

	m, err := s.prepare(ctx, a, requester)
	if err != nil {
		return Manifest{}, err
	}
	have := NewBitmap(m.Chunks)
	if a.Have != "" && a.HaveSHA256 == m.SHA256 {
		if h, err := DecodeBitmap(a.Have, m.Chunks); err == nil {
			have = h
		}
	}
	j := &job{m: m, upload: a.UploadURL, path: s.filePath(m.ID), have: have, acks: make(chan Ack, 64), done: make(chan struct{})}
	s.mu.Lock()
	s.active[m.ID] = j
	s.mu.Unlock()
	select {
	case s.jobs <- j:
		return m, nil
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.active, m.ID)
		s.mu.Unlock()
		return Manifest{}, ctx.Err()
	}
}

func (s *Service) prepare(ctx context.Context, a StartArgs, requester string) (Manifest, error) {
	chunk, window := a.ChunkSize, a.Window
	if chunk == 0 {
		chunk = DefaultChunkSize
	}
	if window == 0 {
		window = DefaultWindow
	}
	if sc, err := s.readSidecar(a.ID); err == nil {
		fi, err := os.Stat(s.filePath(a.ID))
		if err != nil || fi.Size() != sc.Manifest.Size {
			// The file is gone or damaged: it is exported again below,
			// with a new hold; release the old one so it cannot outlive
			// the transfer.
			if sc.HoldID != "" {
				s.src.Release(sc.HoldID)
			}
		}
		if err == nil && fi.Size() == sc.Manifest.Size {
			m := sc.Manifest
			m.Window = window
			if m.ChunkSize == chunk {
				return m, nil
			}
			m.ChunkSize, m.Chunks = chunk, chunkCount(m.Size, chunk)
			return m, nil
		}
	}

	if a.Kind == KindClip && a.Event != 0 {
		from, to, err := s.src.EventRange(ctx, a.Event)
		if err != nil {
			if s.src.IsNoFootage(err) {
				return Manifest{}, &Error{Code: "not_found", Message: fmt.Sprintf("no event %d in the footage kept (see events.list)", a.Event)}
			}
			return Manifest{}, &Error{Code: "internal", Message: fmt.Sprintf("finding event %d: %v", a.Event, err)}
		}
		a.From, a.To = from, to
	}
	m := Manifest{ID: a.ID, Kind: a.Kind, ChunkSize: chunk, Window: window, From: a.From.UTC(), To: a.To.UTC()}
	tmp := s.filePath(a.ID) + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return Manifest{}, &Error{Code: "internal", Message: fmt.Sprintf("preparing the file: %v", err)}
	}
	defer os.Remove(tmp)
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	var holdID string
	switch a.Kind {
	case KindClip:
		frames, err := s.src.ExportClip(ctx, cw, a.From, a.To)
		if err != nil {
			f.Close()
			if s.src.IsNoFootage(err) {
				return Manifest{}, &Error{Code: "not_found", Message: fmt.Sprintf("no footage between %s and %s", a.From.Format(time.RFC3339), a.To.Format(time.RFC3339))}
			}
			return Manifest{}, &Error{Code: "internal", Message: fmt.Sprintf("exporting the clip: %v", err)}
		}
		m.Frames = frames
		if s.o.HoldUntilConfirmed {
			if holdID, err = s.src.Hold(a.From, a.To, "clip transfer "+a.ID+" until the control room confirms receipt"); err != nil {
				s.log.Warn("could not hold the clip's range", "transfer", a.ID, "err", err)
			}
		}
	case KindSnapshot:
		jpg, taken, err := s.src.Snapshot(ctx, a.At, a.Full)
		if err != nil {
			f.Close()
			if s.src.IsNoFootage(err) {
				return Manifest{}, &Error{Code: "not_found", Message: "no frame to take a snapshot from"}
			}
			return Manifest{}, &Error{Code: "internal", Message: fmt.Sprintf("taking the snapshot: %v", err)}
		}
		cw.Write(jpg)
		m.Frames, m.From, m.To = 1, taken.UTC(), taken.UTC()
	}
	if cw.err == nil {
		cw.err = f.Sync()
	}
	if err := f.Close(); err != nil && cw.err == nil {
		cw.err = err
	}
	if cw.err != nil {
		return Manifest{}, &Error{Code: "internal", Message: fmt.Sprintf("writing the file: %v", cw.err)}
	}
	m.Size, m.SHA256, m.Chunks = cw.n, hex.EncodeToString(h.Sum(nil)), chunkCount(cw.n, chunk)
	if s.o.Attest != nil {
		ev, err := s.o.Attest(ctx, Attestation{Manifest: m, Requester: requester, Recipient: a.Recipient, Reason: a.Reason})
		if err != nil {
			s.log.Warn("the file goes without an evidence manifest", "transfer", a.ID, "err", err)
		}
		m.Evidence = ev
	}
	if err := os.Rename(tmp, s.filePath(a.ID)); err != nil {
		return Manifest{}, &Error{Code: "internal", Message: err.Error()}
	}
	b, _ := json.Marshal(sidecar{Manifest: m, HoldID: holdID, Created: s.o.Clock.Now()})
	if err := writeFileSync(s.sidecarPath(a.ID), b); err != nil {
		return Manifest{}, &Error{Code: "internal", Message: err.Error()}
	}
	return m, nil
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
