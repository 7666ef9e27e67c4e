package control

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/outpost-cctv/outpost/clip"
	"github.com/outpost-cctv/outpost/ota"
)

// PushRequest asks for a release bundle to be installed on a unit.
type PushRequest struct {
	Unit   string
	Bundle string // path of the bundle file
	// ChunkSize and Window of the transfer (defaults 65536 and 8).
	ChunkSize, Window int
	// Progress is called as the unit acknowledges chunks: bytes the unit
	// has, and the bundle's size.
	Progress func(have, total int64)
	// Started is called once the unit receives, with the chunks it had
	// already (a resumed push) and the count.
	Started func(version string, size int64, resumed, chunks int)
	// State is called with each update status of the push after the
	// bundle has arrived (installed, trial, the outcome).
	State func(ota.Status)
	// Wait bounds the wait for the outcome once the bundle has arrived
	// (default 30 min: a trial window and a restart or two).
	Wait time.Duration
	// Full, when Bundle is a delta, is a full bundle of the same release:
	// it is pushed instead when the unit does not run the binary the
	// delta was made from, as its update status says before the push or
	// its refusal of the delta says after.
	Full string
	// FellBack is called when Full is pushed instead of Bundle, with why.
	FellBack func(why string)
}

// PushResult is how a push ended.
type PushResult struct {
	ID      string
	Version string // from the bundle's manifest, unverified
	Resumed int    // chunks the unit had already
	// Status is the unit's update status with the outcome (Outcome():
	// committed, rolled_back or rejected).
	Status ota.Status
	// Bundle is the bundle pushed: PushRequest.Full after a fall-back.
	Bundle string
	// FellBack says why the full bundle was pushed instead of the delta;
	// "" when it was not.
	FellBack string
}

// BundleVersion reads the version of a bundle's manifest without checking
// its signature (the unit does): for messages only.
func BundleVersion(r io.ReaderAt) string {
	m, _ := BundleManifest(r)
	return m.Version
}

// BundleManifest reads a bundle's manifest without checking its signature
// (the unit does): for messages and for choosing what to send only.
func BundleManifest(r io.ReaderAt) (ota.Manifest, error) {
	var h [88]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return ota.Manifest{}, fmt.Errorf("control: not a release bundle (%w)", err)
	}
	n := binary.BigEndian.Uint32(h[12:16])
	if n == 0 || n > 1<<16 {
		return ota.Manifest{}, fmt.Errorf("control: not a release bundle: manifest length %d", n)
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, 88); err != nil {
		return ota.Manifest{}, fmt.Errorf("control: release bundle truncated in its manifest (%w)", err)
	}
	var m ota.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return ota.Manifest{}, fmt.Errorf("control: release bundle manifest unreadable: %w", err)
	}
	return m, nil
}

func bundleManifestFile(path string) (ota.Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return ota.Manifest{}, fmt.Errorf("control: %w", err)
	}
	defer f.Close()
	m, err := BundleManifest(f)
	if err != nil {
		return m, fmt.Errorf("%w: %s", err, path)
	}
	return m, nil
}

// deltaMismatch says why the delta m cannot be installed by a unit whose
// update status is st, or "" when it can, or when st does not tell.
func deltaMismatch(m ota.Manifest, st ota.Status) string {
	if !m.IsDelta() || st.Running.SHA256 == "" || st.Running.SHA256 == m.DeltaBaseSHA256 {
		return ""
	}
	return fmt.Sprintf("the delta %s was made from the binary with sha256 %.12s…, the unit runs %s with sha256 %.12s…",
		m.Version, m.DeltaBaseSHA256, st.Running.Version, st.Running.SHA256)
}

// PushRelease sends a release bundle to a unit (ota.push, then the
// chunks on ota/<id>/chunk, resuming from what the unit has) and waits for
// the outcome: committed, rolled back or rejected. A unit that defers the
// update (battery, data budget) answers the push with an error saying so.
// With r.Full, a delta the unit cannot apply gives way to the full bundle
// (see PushRequest.Full).
func (c *Client) PushRelease(ctx context.Context, r PushRequest) (PushResult, error) {
	status := func(ctx context.Context) (ota.Status, error) {
		st, _, err := c.OTAStatus(ctx, r.Unit)
		return st, err
	}
	return pushWithFallback(ctx, r, status, func(ctx context.Context, bundle string) (PushResult, error) {
		return c.pushBundle(ctx, r, bundle)
	})
}

// pushWithFallback pushes r.Bundle with push, or r.Full instead when
// r.Bundle is a delta the unit cannot apply: known from its status before
// sending anything, or from its refusal of the delta.
func pushWithFallback(ctx context.Context, r PushRequest, status func(context.Context) (ota.Status, error), push func(context.Context, string) (PushResult, error)) (PushResult, error) {
	if r.Full == "" {
		return push(ctx, r.Bundle)
	}
	m, err := bundleManifestFile(r.Bundle)
	if err != nil {
		return PushResult{}, err
	}
	if !m.IsDelta() {
		return PushResult{}, fmt.Errorf("control: %s is a full bundle already: give a delta bundle with a full one, or the full one alone", r.Bundle)
	}
	full, err := bundleManifestFile(r.Full)
	if err != nil {
		return PushResult{}, err
	}
	if full.IsDelta() || full.Version != m.Version || full.SHA256 != m.SHA256 {
		return PushResult{}, fmt.Errorf("control: %s (%s) is not the full bundle of the delta %s (%s): build both from the same binary", r.Full, full.Version, r.Bundle, m.Version)
	}
	fallBack := func(why string) (PushResult, error) {
		if r.FellBack != nil {
			r.FellBack(why)
		}
		res, err := push(ctx, r.Full)
		res.FellBack = why
		return res, err
	}
	st, err := status(ctx)
	if err != nil {
		return PushResult{}, err
	}
	if why := deltaMismatch(m, st); why != "" {
		return fallBack(why)
	}
	res, err := push(ctx, r.Bundle)
	if err != nil || res.Status.Outcome() != "rejected" {
		return res, err
	}
	if why := deltaMismatch(m, res.Status); why != "" {
		return fallBack(why + " (the unit refused the delta: " + res.Status.Reason + ")")
	}
	return res, nil
}

// OTAStatus reads a unit's retained update status.
func (c *Client) OTAStatus(ctx context.Context, unit string) (ota.Status, bool, error) {
	b, ok, err := c.retained(ctx, c.topics(unit).Join("ota"))
	if err != nil || !ok {
		return ota.Status{}, ok, err
	}
	var st ota.Status
	if err := json.Unmarshal(b, &st); err != nil {
		return st, false, fmt.Errorf("control: unit %s: unreadable update status: %w", unit, err)
	}
	return st, true, nil
}

// FleetOTA reads the retained update status of every unit that has one.
func (c *Client) FleetOTA(ctx context.Context) (map[string]ota.Status, error) {
	out := map[string]ota.Status{}
	sub, unsub, err := c.subscribe(ctx, c.prefix+"/+/ota", 4096)
	if err != nil {
		return nil, err
	}
	defer unsub()
	t := time.NewTimer(1500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-t.C:
			return out, nil
		case m := <-sub.ch:
			parts := strings.Split(m.topic, "/")
			var st ota.Status
			if len(parts) >= 3 && json.Unmarshal(m.payload, &st) == nil {
				out[parts[len(parts)-2]] = st
			}
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
			t.Reset(400 * time.Millisecond)
		}
	}
}

// pushBundle pushes one bundle and waits for the outcome. An outcome of
// this push published while it is still being sent (the unit restarted
// and failed the transfer cut short) ends the sending at once.
func (c *Client) pushBundle(ctx context.Context, r PushRequest, bundle string) (PushResult, error) {
	res := PushResult{Bundle: bundle}
	f, err := os.Open(bundle)
	if err != nil {
		return res, fmt.Errorf("control: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return res, fmt.Errorf("control: reading %s: %w", bundle, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if r.ChunkSize == 0 {
		r.ChunkSize = clip.DefaultChunkSize
	}
	if r.Window == 0 {
		r.Window = clip.DefaultWindow
	}
	if r.Wait == 0 {
		r.Wait = 30 * time.Minute
	}
	args := ota.PushArgs{ID: ota.PushID(sum), Version: BundleVersion(f), Size: size, SHA256: sum, ChunkSize: r.ChunkSize, Window: r.Window}
	res.ID, res.Version = args.ID, args.Version
	if err := args.Validate(); err != nil {
		return res, fmt.Errorf("control: %s: %w", bundle, err)
	}
	tp := c.topics(r.Unit)

	// The update status: what it was before (retained), then each change.
	stSub, unsubSt, err := c.subscribe(ctx, tp.Join("ota"), 64)
	if err != nil {
		return res, err
	}
	defer unsubSt()
	var before ota.Status
	t := time.NewTimer(1500 * time.Millisecond)
	select {
	case m := <-stSub.ch:
		json.Unmarshal(m.payload, &before)
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return res, ctx.Err()
	}
	t.Stop()

	ackSub, unsubAck, err := c.subscribe(ctx, tp.Join("ota", args.ID, "ack"), 512)
	if err != nil {
		return res, err
	}
	defer unsubAck()
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	var pr ota.PushResult
	err = c.Call(cctx, r.Unit, "ota.push", args, &pr)
	cancel()
	if err != nil {
		return res, err
	}
	m := clip.Manifest{ID: args.ID, Kind: "bundle", Size: size, SHA256: sum, ChunkSize: args.ChunkSize, Window: args.Window}
	m.Chunks = int((size + int64(m.ChunkSize) - 1) / int64(m.ChunkSize))
	have, err := clip.DecodeBitmap(pr.Have, m.Chunks)
	if err != nil {
		have = clip.NewBitmap(m.Chunks)
	}
	res.Resumed = have.Count()
	if r.Started != nil {
		r.Started(args.Version, size, res.Resumed, m.Chunks)
	}

	// This push's statuses: saved after the one before, for this bundle.
	mine := func(payload []byte) (ota.Status, bool) {
		var st ota.Status
		if json.Unmarshal(payload, &st) != nil || st.Push != args.ID || st.Updated.Equal(before.Updated) {
			return st, false
		}
		return st, true
	}
	// One watcher follows this push's statuses from here to the outcome.
	// An outcome while the chunks are still being sent ends the sending:
	// the unit restarted and failed the transfer it lost, and says so.
	sendCtx, stopSend := context.WithCancel(ctx)
	defer stopSend()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	outcome := make(chan ota.Status, 1)
	go func() {
		for {
			select {
			case msg := <-stSub.ch:
				st, ok := mine(msg.payload)
				if !ok {
					continue
				}
				if r.State != nil {
					r.State(st)
				}
				if st.Outcome() != "" {
					outcome <- st
					stopSend()
					return
				}
			case <-watchCtx.Done():
				return
			}
		}
	}()

	acks := make(chan clip.Ack, 64)
	fwdCtx, stopFwd := context.WithCancel(sendCtx)
	fwdDone := make(chan struct{})
	go func() {
		defer close(fwdDone)
		for {
			select {
			case msg := <-ackSub.ch:
				var a clip.Ack
				if json.Unmarshal(msg.payload, &a) != nil {
					continue
				}
				if r.Progress != nil {
					r.Progress(min(int64(a.Next+len(a.Sack))*int64(m.ChunkSize), size), size)
				}
				select {
				case acks <- a:
				case <-fwdCtx.Done():
					return
				}
			case <-fwdCtx.Done():
				return
			}
		}
	}()
	sr, err := clip.Send(sendCtx, c.log, c.c, tp.Join("ota", args.ID, "chunk"), m, f, have, acks, clip.SendOptions{Idle: 2 * time.Minute})
	stopFwd()
	<-fwdDone
	select {
	case st := <-outcome: // reported while sending
		res.Status = st
		return res, nil
	default:
	}
	if err != nil {
		return res, fmt.Errorf("control: sending %s to %s: %w (push again to resume)", bundle, r.Unit, err)
	}
	if sr.Cancelled {
		return res, fmt.Errorf("control: unit %s cancelled the transfer of %s", r.Unit, args.ID)
	}

	// The outcome: a status of this push, saved after the one before.
	wait := time.NewTimer(r.Wait)
	defer wait.Stop()
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-wait.C:
		return res, fmt.Errorf("control: unit %s sent no outcome for %s within %s: see 'outpostctl ota status %s'", r.Unit, args.ID, r.Wait, r.Unit)
	case st := <-outcome:
		res.Status = st
		return res, nil
	}
}

// ErrRolloutHalted is returned when the canaries' failures stop a rollout.
var ErrRolloutHalted = errors.New("control: rollout halted: the canaries failed")
