package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/agent/identity"
	"github.com/outpost-cctv/outpost/clip"
	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/hal/camera/mjpeg"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink"
)

// snapshotWidth is the width of the reduced snapshots sent by default: a
// 1280x720 frame of ~100 KB becomes ~20 KB, cheap on a metered link and
// enough to see what the camera sees.
const snapshotWidth = 640

// newTransfers is the component that sends clips and snapshots to the
// control room, answering transfer.start.
func newTransfers(log *slog.Logger, cfg config.Config, session *uplink.Session, rec *footage.Recorder, latest *Latest, clk clock.Clock, key *identity.Key) *clip.Service {
	base := cfg.Uplink.TopicPrefix + "/" + cfg.Unit.ID + "/"
	src := footageSource{rec: rec, latest: latest, preRoll: cfg.Recording.PreRoll.D(), postRoll: cfg.Recording.PostRoll.D()}
	o := clip.ServiceOptions{Dir: filepath.Join(cfg.DataDir, "transfers"), Base: base, Clock: clk, HoldUntilConfirmed: true}
	if key != nil {
		o.Attest = (&attester{cfg: cfg, key: key, rec: rec, clk: clk}).attest
	}
	svc := clip.NewService(log, session, session, src, o)
	session.Handle("transfer.start", func(ctx context.Context, req uplink.Request) (any, error) {
		var a clip.StartArgs
		if err := req.DecodeArgs(&a); err != nil {
			return nil, err
		}
		m, err := svc.StartFor(ctx, a, req.Requester)
		var ce *clip.Error
		if errors.As(err, &ce) {
			return nil, uplink.CommandError{Code: ce.Code, Message: ce.Message}
		}
		return m, err
	})
	return svc
}

// footageSource gives the transfer service clips, snapshots and holds from
// the footage store, and the live picture from the capture path.
type footageSource struct {
	rec               *footage.Recorder
	latest            *Latest
	preRoll, postRoll time.Duration
}

// EventRange finds a recorded event by sequence number; its clip runs
// from the pre-roll before it to the post-roll after it.
func (s footageSource) EventRange(ctx context.Context, seq uint64) (time.Time, time.Time, error) {
	st, err := s.store()
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	var at time.Time
	errFound := errors.New("found")
	err = st.Events(ctx, time.Unix(0, 0), time.Now().Add(24*time.Hour*365), func(e footage.Event) error {
		if e.Seq == seq {
			at = e.Time
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return time.Time{}, time.Time{}, err
	}
	if at.IsZero() {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: no event %d", footage.ErrNoFootage, seq)
	}
	return at.Add(-s.preRoll), at.Add(s.postRoll), nil
}

// store is the open footage store, or an error a person can act on.
func (s footageSource) store() (*footage.Store, error) {
	st := s.rec.Store()
	if st == nil {
		return nil, errors.New("the footage store is not open (see the unit's health: recorder)")
	}
	return st, nil
}

func (s footageSource) ExportClip(ctx context.Context, w io.Writer, from, to time.Time) (int, error) {
	st, err := s.store()
	if err != nil {
		return 0, err
	}
	info, err := st.Export(ctx, w, from, to)
	return info.Frames, err
}

func (s footageSource) Snapshot(ctx context.Context, at time.Time, full bool) ([]byte, time.Time, error) {
	var data []byte
	var taken time.Time
	if at.IsZero() {
		f, ok := s.latest.Frame()
		if !ok {
			return nil, time.Time{}, fmt.Errorf("%w: the camera has delivered no frame yet", footage.ErrNoFootage)
		}
		data, taken = f.Data, f.Time
	} else {
		st, err := s.store()
		if err != nil {
			return nil, time.Time{}, err
		}
		f, err := st.Nearest(ctx, at, 10*time.Second)
		if err != nil {
			return nil, time.Time{}, err
		}
		data, taken = f.Data, f.Time
	}
	// Frames are stored as the camera sent them; many UVC cameras leave
	// out the Huffman tables, which viewers need.
	if whole, err := mjpeg.WithHuffmanTables(data); err == nil {
		data = whole
	}
	if full {
		return data, taken, nil
	}
	small, err := reduceJPEG(data, snapshotWidth, 70)
	if err != nil {
		// Send the frame as it is rather than nothing.
		return data, taken, nil
	}
	return small, taken, nil
}

func (s footageSource) Hold(from, to time.Time, reason string) (string, error) {
	st, err := s.store()
	if err != nil {
		return "", err
	}
	h, err := st.AddHold(from, to, reason, "control room")
	return h.ID, err
}

func (s footageSource) Release(id string) error {
	st, err := s.store()
	if err != nil {
		return err
	}
	return st.ReleaseHold(id)
}

func (s footageSource) IsNoFootage(err error) bool { return errors.Is(err, footage.ErrNoFootage) }

// reduceJPEG scales a JPEG down to at most width pixels wide (box filter on
// the luma and chroma planes) and re-encodes it.
func reduceJPEG(data []byte, width, quality int) ([]byte, error) {
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("snapshot: decoding the frame: %w", err)
	}
	b := img.Bounds()
	if b.Dx() <= width {
		return data, nil
	}
	f := (b.Dx() + width - 1) / width
	w, h := b.Dx()/f, b.Dy()/f
	dst := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	src, ok := img.(*image.YCbCr)
	if !ok {
		return nil, fmt.Errorf("snapshot: frame is not YCbCr")
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var sy, scb, scr int
			for dy := 0; dy < f; dy++ {
				for dx := 0; dx < f; dx++ {
					px, py := b.Min.X+x*f+dx, b.Min.Y+y*f+dy
					sy += int(src.Y[src.YOffset(px, py)])
					co := src.COffset(px, py)
					scb += int(src.Cb[co])
					scr += int(src.Cr[co])
				}
			}
			n := f * f
			dst.Y[dst.YOffset(x, y)] = uint8(sy / n)
			co := dst.COffset(x, y)
			dst.Cb[co] = uint8(scb / n)
			dst.Cr[co] = uint8(scr / n)
		}
	}
	var out bytes.Buffer
	if err := jpeg.Encode(&out, dst, &jpeg.Options{Quality: quality}); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
