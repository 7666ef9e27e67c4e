package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/agent/identity"
	"github.com/outpost-cctv/outpost/clip"
	"github.com/outpost-cctv/outpost/evidence"
	"github.com/outpost-cctv/outpost/footage"
	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/internal/version"
)

// attester signs the evidence manifest of every clip and snapshot the unit
// hands over (package evidence).
type attester struct {
	cfg config.Config
	key *identity.Key
	rec *footage.Recorder
	clk clock.Clock
}

// attest is clip.ServiceOptions.Attest.
func (a *attester) attest(ctx context.Context, at clip.Attestation) (json.RawMessage, error) {
	m := at.Manifest
	typ := "video/mp4"
	if m.Kind == clip.KindSnapshot {
		typ = "image/jpeg"
	}
	requester := at.Requester
	if requester == "" {
		requester = "unverified: unknown"
	}
	em := evidence.Manifest{
		Kind: m.Kind, Unit: a.cfg.Unit.ID, Site: a.cfg.Unit.Site, Camera: cameraName(a.cfg.Camera),
		Purpose: a.cfg.Unit.Purpose, DPIARef: a.cfg.Unit.DPIARef, Masks: a.cfg.Privacy.Masks,
		From: m.From, To: m.To, Frames: m.Frames,
		File:     evidence.File{Type: typ, Size: m.Size, SHA256: m.SHA256},
		Exported: a.clk.Now().UTC(), Requester: requester, Recipient: at.Recipient, Reason: at.Reason,
		AgentVersion: version.Version, TransferID: m.ID,
	}
	if err := a.chain(ctx, &em); err != nil {
		return nil, err
	}
	doc, err := evidence.Seal(em, a.key)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(doc), nil
}

// cameraName says which camera, without any password in its URL.
func cameraName(c config.Camera) string {
	src := c.Source
	if u, err := url.Parse(src); err == nil && u.User != nil {
		u.User = nil
		src = u.String()
	}
	return fmt.Sprintf("%s %dx%d", src, c.Width, c.Height)
}

// chain puts into m the hash-chain links of the sealed segments the file
// was cut from, and the chain's newest signed head.
func (a *attester) chain(ctx context.Context, m *evidence.Manifest) error {
	st := a.rec.Store()
	if st == nil {
		return fmt.Errorf("the footage store is not open, so the clip's segments cannot be named")
	}
	p, err := st.ChainFor(ctx, m.From, m.To)
	if err != nil {
		return fmt.Errorf("finding the clip's segments in the footage chain: %w", err)
	}
	for _, l := range p.Links {
		m.Segments = append(m.Segments, evidence.Segment{First: l.FirstSeq, SHA256: l.SHA256.String(), Link: l.Hash.String()})
	}
	m.Unsealed = p.Unsealed || len(p.Unchained) > 0
	if h := p.Head; h != nil && h.Count > 0 {
		m.Head = &evidence.Head{Count: h.Count, Link: h.Head.String(), Signed: h.Time.UTC()}
	}
	return nil
}
