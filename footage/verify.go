package footage

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Problem is damage found by Verify.
type Problem struct {
	Segment string `json:"segment"`
	Offset  int64  `json:"offset"`
	What    string `json:"what"`
	// Chain is set for problems found by the walk of the chain (an
	// altered or missing segment, a broken chain, a bad signature) rather
	// than by the records' CRCs.
	Chain bool `json:"chain,omitempty"`
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Segments int   `json:"segments"`
	Records  int   `json:"records"`
	Frames   int   `json:"frames"`
	Bytes    int64 `json:"bytes"`
	// Problems is every damaged record or footer. Empty means every
	// record's CRC checked.
	Problems []Problem `json:"problems"`
	// Notes are things worth knowing that are not damage: repairs made
	// when the store was opened, side files kept, a segment still being
	// written.
	Notes []string `json:"notes"`
	// Chain is what the walk of the chain of sealed segments found.
	Chain ChainReport `json:"chain"`
	// Encrypted counts the segments holding encrypted footage;
	// Unauthenticated those of them whose records could not be
	// authenticated for want of their key (their CRCs and the chain
	// were still checked).
	Encrypted       int `json:"encrypted,omitempty"`
	Unauthenticated int `json:"unauthenticated,omitempty"`
}

// ChainReport is the state of the chain of sealed segments, as Verify
// found it. Damage is in VerifyReport.Problems.
type ChainReport struct {
	// Present is false when the store has no chain journal.
	Present bool `json:"present"`
	// Started is when the chain was started; Unchained counts the
	// segments recorded before it, which it does not cover.
	Started   time.Time `json:"started"`
	Unchained int       `json:"unchained,omitempty"`
	// Links is the number of segments whose SHA-256 was checked against
	// their link; Deleted the links of segments deleted by retention.
	Links   int `json:"links"`
	Deleted int `json:"deleted"`
	// First and Last are the positions of the first and last entries
	// still in the journal; Head is the hash of the last.
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	Head  Hash   `json:"head"`
	// FirstSegment and LastSegment are the oldest and newest segments
	// checked against the chain.
	FirstSegment string `json:"first_segment,omitempty"`
	LastSegment  string `json:"last_segment,omitempty"`
	// Heads is the number of signed heads checked; Unsigned is set when
	// there are none. Keys lists the public keys that signed them
	// (base64). KeyGiven is set when they were checked against a key given
	// by the caller or the store's Signer, rather than the key each head
	// names.
	Heads    int         `json:"heads"`
	Unsigned bool        `json:"unsigned"`
	Keys     []string    `json:"keys,omitempty"`
	KeyGiven bool        `json:"key_given"`
	Latest   *SignedHead `json:"latest,omitempty"`
	// Unsigned links: links after the newest signed head.
	AfterHead int `json:"after_head,omitempty"`
}

// OK reports whether nothing was damaged.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// Verify reads every record of every segment and checks its CRC, and
// checks each sealed segment's footer against its records. Damage already
// found and skipped when the store was recovered is reported again: the
// footage there is lost. It then walks the chain (see VerifyWith), with
// signed heads checked against the store's Signer's key if it has one. It
// does not change the store.
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	return s.VerifyWith(ctx, nil)
}

// VerifyWith is Verify with the heads of the chain checked against pub,
// the unit's evidence public key (nil: the Signer's key if the store has
// one, else the key each head names, which proves only that the heads
// were not altered since they were signed). Besides the records, it
// recomputes every sealed segment's SHA-256 and walks the chain: an
// altered segment, a segment missing with no deletion recorded, an
// altered, removed or reordered entry, a head whose signature does not
// verify or that does not match the chain are Problems.
func (s *Store) VerifyWith(ctx context.Context, pub ed25519.PublicKey) (VerifyReport, error) {
	rep, err := s.verifyRecords(ctx)
	if err != nil {
		return rep, err
	}
	if pub == nil && s.opts.Signer != nil {
		pub = s.opts.Signer.PublicKey()
	}
	return rep, s.verifyChain(ctx, pub, &rep)
}

func (s *Store) verifyRecords(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	for _, r := range s.Recovered() {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s: recovered on open: %s", r.Segment, r.Action))
	}
	vs, err := s.pinViews(func(*segView) bool { return true })
	if err != nil {
		return rep, err
	}
	defer s.release(vs)
	rep.Segments = len(vs)
	for i := range vs {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := s.verifySegment(&vs[i], i == len(vs)-1, &rep); err != nil {
			return rep, err
		}
	}
	if rep.Unauthenticated > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d of %d encrypted segments were checked without their key: their CRCs and the chain show they are intact, but their records' authentication was not checked (give the key file to check it)", rep.Unauthenticated, rep.Encrypted))
	}
	return rep, nil
}

func (s *Store) verifySegment(v *segView, newest bool, rep *VerifyReport) error {
	name := v.seg.name
	problem := func(off int64, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{Segment: name, Offset: off, What: fmt.Sprintf(format, args...)})
	}
	for _, n := range v.seg.side {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s: side file %s holds bytes cut off in a recovery", name, n))
	}
	f, err := s.fsys.OpenFile(join(s.dir, name), os.O_RDONLY, 0)
	if err != nil {
		problem(0, "cannot be opened: %v", err)
		return nil
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("footage: segment %s: %w", name, err)
	}
	rep.Bytes += size

	s.mu.Lock()
	sealed := v.seg.sealed
	isActive := v.seg.writing
	dataEnd := v.seg.sum.dataEnd
	s.mu.Unlock()

	limit := size
	if !sealed && (isActive || s.ro) {
		// Being written: check what the writer has finished.
		if isActive {
			limit = min(size, dataEnd)
		}
	}
	res, err := scanSegment(&limitReader{f, limit}, limit)
	if err != nil {
		problem(0, "unreadable: %v", err)
		return nil
	}
	rep.Records += len(res.index)
	for _, e := range res.index {
		if e.kind == kindFrame {
			rep.Frames++
		}
	}
	for _, d := range res.damaged {
		problem(d.off, "%d damaged bytes: a record there fails its CRC and is skipped (its footage is lost)", d.length)
	}
	if res.header.encrypted() {
		if err := s.verifySealed(f, &res, rep, problem); err != nil {
			return fmt.Errorf("footage: segment %s: %w", name, err)
		}
	}
	switch {
	case sealed:
		_, fidx, ok, err := readFooter(f, size, true)
		if err != nil {
			return fmt.Errorf("footage: segment %s: %w", name, err)
		}
		if !ok {
			problem(max(res.dataEnd, 0), "footer damaged: the records are intact but the segment must be read record by record")
			break
		}
		if res.tail > 0 {
			problem(res.dataEnd, "%d damaged bytes before the footer", res.tail)
		}
		// Every record the footer lists must be there, or lie in damage
		// already reported; no record may be missing from it.
		found := make(map[int64]uint64, len(res.index))
		for _, e := range res.index {
			found[e.off] = e.seq
		}
		inDamage := func(off int64) bool {
			for _, d := range res.damaged {
				if off >= d.off && off < d.off+d.length {
					return true
				}
			}
			return false
		}
		for _, e := range fidx {
			if seq, ok := found[e.off]; ok && seq == e.seq {
				delete(found, e.off)
			} else if !inDamage(e.off) {
				problem(e.off, "the footer lists record %d here, the segment does not hold it", e.seq)
			}
		}
		for off, seq := range found {
			problem(off, "record %d is not in the footer", seq)
		}
	case res.tail > 0 && s.ro && newest:
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s: %d bytes at its end are not (yet) a whole record: it is being written, or the agent stopped abruptly and the store is recovered when next opened for writing", name, res.tail))
	case res.tail > 0:
		problem(res.dataEnd, "torn tail of %d bytes", res.tail)
	}
	return nil
}

// limitReader reads a file as if it ended at n.
type limitReader struct {
	r interface {
		ReadAt([]byte, int64) (int, error)
	}
	n int64
}

func (l *limitReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > l.n {
		return 0, io.EOF
	}
	return l.r.ReadAt(p, off)
}

func keyString(pub ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(pub) }

// verifyChain walks the chain journal against the segments present.
func (s *Store) verifyChain(ctx context.Context, pub ed25519.PublicKey, rep *VerifyReport) error {
	if s.chain == nil {
		return nil
	}
	cr := &rep.Chain
	problem := func(seg string, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{Segment: seg, What: fmt.Sprintf(format, args...), Chain: true})
	}
	vs, err := s.pinViews(func(*segView) bool { return true })
	if err != nil {
		return err
	}
	defer s.release(vs)
	// Which segments are sealed, then the chain: a segment is linked
	// before it is published as sealed, so every segment seen sealed here
	// is in the snapshot.
	sealedNow := make([]bool, len(vs))
	writingNow := make([]bool, len(vs))
	s.mu.Lock()
	for i := range vs {
		sealedNow[i], writingNow[i] = vs[i].seg.sealed, vs[i].seg.writing
	}
	s.mu.Unlock()
	base, entries, heads, notes := s.chain.snapshot()
	rep.Notes = append(rep.Notes, notes...)
	// Segments started after the pin above and already linked are not
	// part of this check.
	pinned := map[uint64]bool{}
	for i := range vs {
		pinned[vs[i].sum.firstSeq] = true
	}
	later := map[uint64]bool{}
	s.mu.Lock()
	for _, seg := range s.segs {
		if !pinned[seg.sum.firstSeq] {
			later[seg.sum.firstSeq] = true
		}
	}
	s.mu.Unlock()
	cr.Present = base.startSeq != ^uint64(0)
	if !cr.Present {
		if len(vs) > 0 {
			problem(chainFile, "missing: the %d segments are not chained and cannot be shown unaltered (a store from before chain-keeping is chained from its next open for writing; otherwise the journal was removed)", len(vs))
		}
		return nil
	}
	if names, err := s.fsys.ReadDir(s.dir); err == nil {
		for _, n := range names {
			if strings.HasPrefix(n, chainFile+".damaged.") {
				problem(n, "a chain journal whose header was damaged, set aside when the store was opened: the segments it covered are not covered by the chain started then (inspect it; keep it with the evidence)")
			}
		}
	}
	cr.Started = time.Unix(0, base.created).UTC()
	cr.First, cr.Last = base.count+1, base.count+uint64(len(entries))
	cr.Head = base.prev
	if base.deleted > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("chain: %d segments deleted by retention before entry %d (compacted), the last at %s; the chain starts from the hash %s",
			base.deleted, base.count+1, fmtTime(base.lastDel), base.prev.Short()))
	}

	// The entries, each against the one before.
	prev := base.prev
	links := map[uint64]chainEntry{}
	deleted := map[uint64]chainEntry{}
	for _, e := range entries {
		if e.prev != prev {
			problem(segName(e.first), "chain broken at entry %d: it follows %s, the entry before it is %s (an entry was removed, inserted or reordered)", e.index, e.prev.Short(), prev.Short())
		}
		if e.computeHash() != e.hash {
			problem(segName(e.first), "chain entry %d was altered: its hash does not match its contents", e.index)
		}
		prev = e.hash
		switch e.kind {
		case cLink:
			if _, dup := links[e.first]; dup {
				problem(segName(e.first), "linked twice (entry %d)", e.index)
			}
			links[e.first] = e
		case cDelete:
			deleted[e.first] = e
		}
	}
	cr.Head = prev

	present := map[uint64]*segView{}
	for i := range vs {
		present[vs[i].sum.firstSeq] = &vs[i]
	}
	var maxLinked uint64
	for first := range links {
		maxLinked = max(maxLinked, first)
	}
	resealed := map[string]bool{}
	for _, r := range s.Recovered() {
		if strings.HasPrefix(r.Action, "sealed after") || strings.HasPrefix(r.Action, "resealed") {
			resealed[r.Segment] = true
		}
	}
	var delNotes []string
	for _, e := range entries {
		if e.kind != cLink {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := segName(e.first)
		d, isDel := deleted[e.first]
		if isDel && d.digest != e.hash {
			problem(name, "its deletion (entry %d) names link %s, not its link %s", d.index, d.digest.Short(), e.hash.Short())
		}
		v, ok := present[e.first]
		if !ok && later[e.first] {
			continue
		}
		if !ok {
			if isDel {
				cr.Deleted++
				delNotes = append(delNotes, fmt.Sprintf("%s: deleted by retention (%s) at %s", name, d.reason, fmtTime(d.at)))
				continue
			}
			problem(name, "missing: the chain links it (entry %d, sequences %d-%d) and no deletion was recorded: it was removed outside retention", e.index, e.first, e.last)
			continue
		}
		if isDel {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: its deletion by retention was recorded at %s but the file is still there (it is removed at the next open for writing)", name, fmtTime(d.at)))
		}
		digest, size, err := hashFile(s.fsys, join(s.dir, v.seg.name))
		if err != nil {
			problem(name, "cannot be read to check its SHA-256: %v", err)
			continue
		}
		cr.Links++
		why := ""
		if resealed[name] {
			why = " (its footer was rewritten by recovery after damage: its records' CRCs check, but the chain can no longer show them unaltered)"
		}
		if cr.FirstSegment == "" {
			cr.FirstSegment = name
		}
		cr.LastSegment = name
		switch {
		case size != e.size:
			problem(name, "altered since it was sealed: %d bytes, its chain link (entry %d) says %d%s", size, e.index, e.size, why)
		case digest != e.digest:
			problem(name, "altered since it was sealed: its SHA-256 is %s, its chain link (entry %d) says %s%s", digest.Short(), e.index, e.digest.Short(), why)
		}
		if e.flags&linkRecovered != 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: linked into the chain when the store was reopened after an unclean stop (entry %d), not when it was sealed", name, e.index))
		}
	}
	if len(delNotes) <= 10 {
		rep.Notes = append(rep.Notes, delNotes...)
	} else {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d segments deleted by retention; the oldest: %s; the newest: %s", len(delNotes), delNotes[0], delNotes[len(delNotes)-1]))
	}

	// Segments the chain does not know.
	for i := range vs {
		v := &vs[i]
		first := v.sum.firstSeq
		if _, ok := links[first]; ok {
			continue
		}
		sealed, writing := sealedNow[i], writingNow[i]
		switch {
		case first < base.startSeq:
			cr.Unchained++
		case !sealed && (writing || s.ro):
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: not sealed yet (being written, or left by a stop): it is linked into the chain when sealed", v.seg.name))
		case !sealed:
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: its sealing failed; it is linked into the chain when sealed", v.seg.name))
		case s.ro && first > maxLinked:
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: sealed but not yet linked (the agent stopped before it could link it): it is linked at the next open for writing", v.seg.name))
		default:
			problem(v.seg.name, "sealed but not in the chain: its link could not be written (see the agent's log; it is linked at the next open), or the segment was added, or its link removed, outside the store")
		}
	}
	if cr.Unchained > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d segments recorded before the chain was started at %s are not covered by it", cr.Unchained, fmtTime(base.created)))
	}

	// Signed heads.
	cr.Unsigned = len(heads) == 0
	cr.KeyGiven = pub != nil
	keys := map[string]bool{}
	for i := range heads {
		h := &heads[i]
		cr.Heads++
		k := pub
		if k == nil {
			k = h.PublicKey
		}
		ks := keyString(h.PublicKey)
		if !h.Verify(k) {
			problem(chainFile, "the head signed at %s (entry %d) does not verify with key %s: it was forged or altered", h.Time.Format(time.RFC3339), h.Count, abbrevKey(keyString(k)))
			continue
		}
		if !keys[ks] {
			keys[ks] = true
			cr.Keys = append(cr.Keys, ks)
		}
		switch {
		case h.Count > base.count+uint64(len(entries)):
			problem(chainFile, "the head signed at %s covers %d entries, the chain holds %d: entries were cut from its end (and their segments, if missing, removed)", h.Time.Format(time.RFC3339), h.Count, base.count+uint64(len(entries)))
		case h.Count == base.count:
			if h.Head != base.prev {
				problem(chainFile, "the head signed at %s is %s, the chain's entry %d is %s", h.Time.Format(time.RFC3339), h.Head.Short(), h.Count, base.prev.Short())
			}
		case h.Count > base.count:
			if e := entries[h.Count-base.count-1]; h.Head != e.hash {
				problem(segName(e.first), "the head signed at %s says entry %d is %s, the chain holds %s: the chain was rewritten", h.Time.Format(time.RFC3339), h.Count, h.Head.Short(), e.hash.Short())
			}
		}
		hc := *h
		if cr.Latest == nil || hc.Count >= cr.Latest.Count {
			cr.Latest = &hc
		}
	}
	if cr.Latest != nil {
		for _, e := range entries {
			if e.index > cr.Latest.Count && e.kind == cLink {
				cr.AfterHead++
			}
		}
	}
	return nil
}

func abbrevKey(k string) string {
	if len(k) > 12 {
		return k[:12] + "..."
	}
	return k
}

func fmtTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339) }
