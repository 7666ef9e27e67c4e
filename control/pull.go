package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/outpost-cctv/outpost/clip"
	"github.com/outpost-cctv/outpost/internal/atomicfile"
)

// PullRequest asks a unit for a clip or a snapshot.
type PullRequest struct {
	Unit string
	Args clip.StartArgs // ID is derived when empty
	Out  string         // where the file goes
	// Progress is called as chunks arrive.
	Progress func(received, total int64)
	// Started is called once the unit has described the file, with the
	// bytes already held from an earlier attempt.
	Started func(m clip.Manifest, resumedBytes int64)
	// Timeout ends the pull when the unit sends nothing for this long
	// (default 1 min).
	Timeout time.Duration
}

// PullResult reports a finished pull.
type PullResult struct {
	Manifest clip.Manifest
	Stats    clip.ReceiveStats
	Resumed  int // chunks already there from an earlier attempt
	// EvidenceFile is where the unit's signed evidence manifest was
	// written (beside the file), "" when the unit sent none.
	EvidenceFile string
}

// EvidencePath is where the evidence manifest of a pulled file is kept.
func EvidencePath(out string) string { return out + ".evidence.json" }

// writeEvidence writes the signed manifest as the unit sent it, indented.
func writeEvidence(path string, doc json.RawMessage) error {
	var b bytes.Buffer
	if err := json.Indent(&b, doc, "", "  "); err != nil {
		return err
	}
	b.WriteByte('\n')
	return atomicfile.Write(path, b.Bytes(), 0o644)
}

// Pull asks the unit for the file, receives it into r.Out.part with a
// sliding window, verifies its SHA-256 and renames it into place. An
// interrupted pull leaves the part behind; calling Pull again with the same
// request resumes it. Cancelling ctx tells the unit to stop.
func (c *Client) Pull(ctx context.Context, r PullRequest) (PullResult, error) {
	var res PullResult
	a := r.Args
	if a.ID == "" {
		a.ID = clip.TransferID(r.Unit, a)
	}
	if err := a.Validate(); err != nil {
		return res, fmt.Errorf("control: %w", err)
	}
	// What an earlier attempt left.
	if b, err := os.ReadFile(r.Out + ".part.json"); err == nil {
		var old clip.Manifest
		if json.Unmarshal(b, &old) == nil && old.ID == a.ID {
			if p, _, err := clip.OpenPart(r.Out, old); err == nil {
				a.Have, a.HaveSHA256 = p.Have().Encode(), old.SHA256
				p.Close()
			}
		}
	}

	tp := c.topics(r.Unit)
	base := tp.Prefix + "/" + tp.Unit + "/"
	if a.UploadURL != "" {
		return c.pullToURL(ctx, r, a, base)
	}
	sub, unsub, err := c.subscribe(ctx, clip.ChunkTopic(base, a.ID), 512)
	if err != nil {
		return res, err
	}
	defer unsub()

	// Preparing a clip (exporting it) can take a while on a small board.
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	var m clip.Manifest
	err = c.Call(cctx, r.Unit, "transfer.start", a, &m)
	cancel()
	if err != nil {
		return res, err
	}
	if err := m.Validate(); err != nil {
		return res, fmt.Errorf("control: unit %s: %w", r.Unit, err)
	}
	if m.ID != a.ID {
		return res, fmt.Errorf("control: unit %s answered for transfer %s, not %s", r.Unit, m.ID, a.ID)
	}
	res.Manifest = m
	part, resumed, err := clip.OpenPart(r.Out, m)
	if err != nil {
		return res, err
	}
	defer part.Close()
	res.Resumed = resumed
	if r.Started != nil {
		r.Started(m, part.Received())
	}

	ackTopic := clip.AckTopic(base, m.ID)
	sendAck := func(ctx context.Context, ack clip.Ack) error {
		b, _ := json.Marshal(ack)
		return c.c.Publish(ctx, ackTopic, 0, false, b)
	}
	chunks := make(chan []byte)
	fwdCtx, stopFwd := context.WithCancel(ctx)
	fwdDone := make(chan struct{})
	go func() { // unwrap subscription messages into chunk payloads
		defer close(fwdDone)
		for {
			select {
			case msg := <-sub.ch:
				select {
				case chunks <- msg.payload:
				case <-fwdCtx.Done():
					return
				}
			case <-fwdCtx.Done():
				return
			}
		}
	}()
	st, err := clip.Receive(ctx, c.log, part, chunks, sendAck, clip.ReceiveOptions{Progress: r.Progress, Timeout: r.Timeout})
	stopFwd()
	<-fwdDone
	res.Stats = st
	if err == nil && len(m.Evidence) > 0 {
		res.EvidenceFile = EvidencePath(r.Out)
		if werr := writeEvidence(res.EvidenceFile, m.Evidence); werr != nil {
			return res, fmt.Errorf("control: the file arrived, but its evidence manifest could not be written (%v): pull it again to get the manifest", werr)
		}
	}
	if err != nil && errors.Is(err, context.Canceled) {
		// Tell the unit to stop; the part stays for a later resume.
		actx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		sendAck(actx, clip.Ack{Cancel: true})
		cancel()
	}
	return res, err
}

// pullToURL asks the unit to upload the file to an upload URL and follows
// its progress until the store has it all.
func (c *Client) pullToURL(ctx context.Context, r PullRequest, a clip.StartArgs, base string) (PullResult, error) {
	var res PullResult
	sub, unsub, err := c.subscribe(ctx, clip.StatusTopic(base, a.ID), 64)
	if err != nil {
		return res, err
	}
	defer unsub()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = c.Call(cctx, r.Unit, "transfer.start", a, &res.Manifest)
	cancel()
	if err != nil {
		return res, err
	}
	if r.Started != nil {
		r.Started(res.Manifest, 0)
	}
	timeout := r.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-t.C:
			return res, fmt.Errorf("control: unit %s reported no upload progress for %s", r.Unit, timeout)
		case m := <-sub.ch:
			var st clip.UploadStatus
			if json.Unmarshal(m.payload, &st) != nil {
				continue
			}
			if r.Progress != nil {
				r.Progress(st.Stored, st.Size)
			}
			switch st.State {
			case "done":
				return res, nil
			case "failed":
				return res, fmt.Errorf("control: unit %s could not upload: %s", r.Unit, st.Error)
			}
			t.Reset(timeout)
		}
	}
}
