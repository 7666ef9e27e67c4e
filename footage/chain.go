package footage

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"time"
)

// The chain journal (chain.log) makes the sealed footage tamper-evident:
// every sealed segment's SHA-256 is linked into a hash chain, deletions by
// retention are entries of the same chain, and the head of the chain is
// signed with the unit's evidence key every HeadEvery and at close. See
// doc.go for the format.

const (
	chainFile       = "chain.log"
	chainHeaderSize = 16

	cBase   = 'B' // where the chain starts (first record of the file)
	cLink   = 'L' // a sealed segment
	cDelete = 'X' // a segment deleted by retention
	cHead   = 'H' // a signed head

	// linkRecovered marks a link made when the store was reopened after
	// an unclean stop, rather than when its segment was sealed.
	linkRecovered = 1

	// keepHeads is how many signed heads compaction keeps.
	keepHeads = 8

	headDomain = "outpost footage chain head v1\n"
)

var chainMagic = [8]byte{'O', 'P', 'F', 'T', 'C', 'H', 'N', '1'}

// Signer signs the chain's heads: the unit's evidence key
// (agent/identity.Key satisfies it).
type Signer interface {
	// Sign returns the Ed25519 signature of msg.
	Sign(msg []byte) []byte
	PublicKey() ed25519.PublicKey
}

// Hash is a SHA-256 digest.
type Hash [32]byte

// String is the digest in lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short is the first 12 hex digits, for people.
func (h Hash) Short() string { return h.String()[:12] }

// MarshalText writes the digest in hex (for JSON).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// ChainLink is a sealed segment's link in the chain.
type ChainLink struct {
	// Index is the link's position in the chain, counting every entry
	// (links and deletions) from 1, including those compacted away.
	Index    uint64 `json:"index"`
	Segment  string `json:"segment"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Run      uint32 `json:"run"`
	Size     int64  `json:"size"`
	// SHA256 is the digest of the whole sealed segment file.
	SHA256 Hash `json:"sha256"`
	// Prev is the hash of the entry before it; Hash is
	// SHA-256(Prev || 'L' || the canonical encoding of the fields above).
	Prev Hash `json:"prev"`
	Hash Hash `json:"hash"`
	// Recovered is set when the link was made when the store was
	// reopened after an unclean stop, not when the segment was sealed.
	Recovered bool `json:"recovered,omitempty"`
}

// SignedHead is a signed statement of the chain's head: "this unit's
// chain held Count entries ending in Head, and footage up to LastSeq, at
// Time".
type SignedHead struct {
	UnitID    string            `json:"unit_id,omitempty"`
	Count     uint64            `json:"count"`
	Head      Hash              `json:"head"`
	LastSeq   uint64            `json:"last_seq"`
	Time      time.Time         `json:"time"`
	PublicKey ed25519.PublicKey `json:"public_key"`
	Signature []byte            `json:"signature"`
}

// Message is the byte string the signature covers.
func (h *SignedHead) Message() []byte {
	b := []byte(headDomain)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.UnitID)))
	b = append(b, h.UnitID...)
	b = binary.LittleEndian.AppendUint64(b, h.Count)
	b = append(b, h.Head[:]...)
	b = binary.LittleEndian.AppendUint64(b, h.LastSeq)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.Time.UnixNano()))
	return b
}

// Verify reports whether the head is signed by pub.
func (h *SignedHead) Verify(pub ed25519.PublicKey) bool {
	return len(pub) == ed25519.PublicKeySize && len(h.Signature) == ed25519.SignatureSize &&
		ed25519.Verify(pub, h.Message(), h.Signature)
}

// chainEntry is a link or a deletion.
type chainEntry struct {
	kind   byte
	index  uint64
	flags  byte
	first  uint64 // segment's first sequence
	last   uint64
	run    uint32
	size   int64
	digest Hash // the segment's SHA-256 (link), or the deleted link's hash (deletion)
	at     int64
	reason string
	prev   Hash
	hash   Hash
}

// fields is the canonical encoding the entry's hash covers.
func (e *chainEntry) fields() []byte {
	b := make([]byte, 0, 96)
	b = append(b, e.kind, e.flags)
	b = binary.LittleEndian.AppendUint64(b, e.first)
	b = binary.LittleEndian.AppendUint64(b, e.last)
	b = binary.LittleEndian.AppendUint32(b, e.run)
	b = binary.LittleEndian.AppendUint64(b, uint64(e.size))
	b = append(b, e.digest[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(e.at))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(e.reason)))
	b = append(b, e.reason...)
	return b
}

func (e *chainEntry) computeHash() Hash {
	h := sha256.New()
	h.Write(e.prev[:])
	h.Write(e.fields())
	var out Hash
	h.Sum(out[:0])
	return out
}

// encode is the journal payload: prev, hash, then the fields.
func (e *chainEntry) encode() []byte {
	b := append(e.prev[:], e.hash[:]...)
	return append(b, e.fields()...)
}

func decodeChainEntry(kind byte, p []byte) (chainEntry, bool) {
	const fixed = 64 + 2 + 8 + 8 + 4 + 8 + 32 + 8 + 2
	if len(p) < fixed || p[64] != kind {
		return chainEntry{}, false
	}
	var e chainEntry
	copy(e.prev[:], p[0:32])
	copy(e.hash[:], p[32:64])
	q := p[64:]
	e.kind, e.flags = q[0], q[1]
	e.first = binary.LittleEndian.Uint64(q[2:])
	e.last = binary.LittleEndian.Uint64(q[10:])
	e.run = binary.LittleEndian.Uint32(q[18:])
	e.size = int64(binary.LittleEndian.Uint64(q[22:]))
	copy(e.digest[:], q[30:62])
	e.at = int64(binary.LittleEndian.Uint64(q[62:]))
	n := int(binary.LittleEndian.Uint16(q[70:]))
	if len(q) != 72+n {
		return chainEntry{}, false
	}
	e.reason = string(q[72:])
	return e, true
}

func (e *chainEntry) link() ChainLink {
	return ChainLink{Index: e.index, Segment: segName(e.first), FirstSeq: e.first, LastSeq: e.last, Run: e.run,
		Size: e.size, SHA256: e.digest, Prev: e.prev, Hash: e.hash, Recovered: e.flags&linkRecovered != 0}
}

// chainBase is where the journal's chain starts.
type chainBase struct {
	count    uint64 // entries compacted away before the first one kept
	prev     Hash   // hash of the last entry compacted away (zero: none)
	startSeq uint64 // segments whose first sequence is below were never chained
	created  int64  // when the chain was started
	existing uint64 // segments already in the store when it was started
	lastDel  int64  // time of the last deletion compacted away
	deleted  uint64 // deletions compacted away
}

func (b *chainBase) encode() []byte {
	p := binary.LittleEndian.AppendUint64(nil, b.count)
	p = append(p, b.prev[:]...)
	p = binary.LittleEndian.AppendUint64(p, b.startSeq)
	p = binary.LittleEndian.AppendUint64(p, uint64(b.created))
	p = binary.LittleEndian.AppendUint64(p, b.existing)
	p = binary.LittleEndian.AppendUint64(p, uint64(b.lastDel))
	return binary.LittleEndian.AppendUint64(p, b.deleted)
}

func decodeChainBase(p []byte) (chainBase, bool) {
	if len(p) != 8+32+8*5 {
		return chainBase{}, false
	}
	var b chainBase
	b.count = binary.LittleEndian.Uint64(p)
	copy(b.prev[:], p[8:40])
	b.startSeq = binary.LittleEndian.Uint64(p[40:])
	b.created = int64(binary.LittleEndian.Uint64(p[48:]))
	b.existing = binary.LittleEndian.Uint64(p[56:])
	b.lastDel = int64(binary.LittleEndian.Uint64(p[64:]))
	b.deleted = binary.LittleEndian.Uint64(p[72:])
	return b, true
}

func encodeHead(h *SignedHead) []byte {
	p := binary.LittleEndian.AppendUint16(nil, uint16(len(h.UnitID)))
	p = append(p, h.UnitID...)
	p = binary.LittleEndian.AppendUint64(p, h.Count)
	p = append(p, h.Head[:]...)
	p = binary.LittleEndian.AppendUint64(p, h.LastSeq)
	p = binary.LittleEndian.AppendUint64(p, uint64(h.Time.UnixNano()))
	var pub [ed25519.PublicKeySize]byte
	var sig [ed25519.SignatureSize]byte
	copy(pub[:], h.PublicKey)
	copy(sig[:], h.Signature)
	p = append(p, pub[:]...)
	return append(p, sig[:]...)
}

func decodeHead(p []byte) (SignedHead, bool) {
	if len(p) < 2 {
		return SignedHead{}, false
	}
	n := int(binary.LittleEndian.Uint16(p))
	if len(p) != 2+n+8+32+8+8+ed25519.PublicKeySize+ed25519.SignatureSize {
		return SignedHead{}, false
	}
	var h SignedHead
	h.UnitID = string(p[2 : 2+n])
	q := p[2+n:]
	h.Count = binary.LittleEndian.Uint64(q)
	copy(h.Head[:], q[8:40])
	h.LastSeq = binary.LittleEndian.Uint64(q[40:])
	h.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(q[48:]))).UTC()
	h.PublicKey = bytes.Clone(q[56 : 56+ed25519.PublicKeySize])
	h.Signature = bytes.Clone(q[56+ed25519.PublicKeySize:])
	return h, true
}

func chainHeader() []byte {
	b := make([]byte, chainHeaderSize)
	copy(b, chainMagic[:])
	binary.LittleEndian.PutUint32(b[8:], schemaVersion)
	binary.LittleEndian.PutUint32(b[12:], crc32.Checksum(b[:12], castagnoli))
	return b
}

// chainState is the journal as read.
type chainState struct {
	exists  bool
	valid   bool // header and base record intact
	base    chainBase
	entries []chainEntry
	heads   []SignedHead
	end     int64 // end of the last valid record
	size    int64
	records int
}

// parseChain replays a chain journal. Parsing stops at the first record
// that is torn or fails its CRC; what follows is the damaged tail.
func parseChain(b []byte) chainState {
	st := chainState{exists: true, size: int64(len(b))}
	if len(b) < chainHeaderSize || [8]byte(b[:8]) != chainMagic ||
		binary.LittleEndian.Uint32(b[12:]) != crc32.Checksum(b[:12], castagnoli) ||
		binary.LittleEndian.Uint32(b[8:]) != schemaVersion {
		return st
	}
	off := chainHeaderSize
	for {
		kind, payload, next, ok := journalRecord(b, off, 1<<16)
		if !ok {
			break
		}
		switch {
		case kind == cBase && st.records == 0:
			st.base, ok = decodeChainBase(payload)
			st.valid = ok
		case !st.valid:
			ok = false
		case kind == cLink || kind == cDelete:
			var e chainEntry
			if e, ok = decodeChainEntry(kind, payload); ok {
				e.index = st.base.count + uint64(len(st.entries)) + 1
				st.entries = append(st.entries, e)
			}
		case kind == cHead:
			var h SignedHead
			if h, ok = decodeHead(payload); ok {
				st.heads = append(st.heads, h)
			}
		default:
			ok = false
		}
		if !ok {
			break
		}
		st.records++
		off = next
	}
	st.end = int64(off)
	return st
}

func readChain(fsys FS, dir string) (chainState, error) {
	f, err := fsys.OpenFile(join(dir, chainFile), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return chainState{}, nil
	}
	if err != nil {
		return chainState{}, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return chainState{}, err
	}
	if size > 1<<30 {
		return chainState{}, fmt.Errorf("%s is %d bytes, more than any store writes: move it aside to inspect it", chainFile, size)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return chainState{}, err
	}
	return parseChain(b), nil
}

// chain is the open journal and the chain in memory.
type chain struct {
	mu      sync.Mutex
	fsys    FS
	dir     string
	f       File // nil when read-only
	off     int64
	base    chainBase
	entries []chainEntry
	heads   []SignedHead
	// linked maps a segment's first sequence to its link's position in
	// entries; deleted, to its deletion's.
	linked  map[uint64]int
	deleted map[uint64]int
	records int
	// notes are things the chain's recovery did, for Verify.
	notes []string
}

func newChain(fsys FS, dir string, st chainState) *chain {
	c := &chain{fsys: fsys, dir: dir, base: st.base, heads: st.heads, records: st.records}
	c.setEntries(st.entries)
	return c
}

func (c *chain) setEntries(es []chainEntry) {
	c.entries = es
	c.linked = map[uint64]int{}
	c.deleted = map[uint64]int{}
	for i, e := range es {
		switch e.kind {
		case cLink:
			if _, dup := c.linked[e.first]; !dup {
				c.linked[e.first] = i
			}
		case cDelete:
			c.deleted[e.first] = i
		}
	}
}

// headHash is the hash of the last entry. Caller holds mu.
func (c *chain) headHash() Hash {
	if n := len(c.entries); n > 0 {
		return c.entries[n-1].hash
	}
	return c.base.prev
}

func (c *chain) count() uint64 { return c.base.count + uint64(len(c.entries)) }

// appendRecord writes one record and syncs. Caller holds mu.
func (c *chain) appendRecord(kind byte, payload []byte) error {
	if c.f == nil {
		return ErrReadOnly
	}
	b := encodeManifestRecord(kind, payload)
	if err := writeFull(c.f, b, c.off); err != nil {
		c.f.Truncate(c.off)
		return fmt.Errorf("footage: append to %s: %w", chainFile, err)
	}
	if err := c.f.Sync(); err != nil {
		// The record may or may not be on the card; cut it so the file
		// and memory agree.
		c.f.Truncate(c.off)
		return fmt.Errorf("footage: sync %s: %w", chainFile, err)
	}
	c.off += int64(len(b))
	c.records++
	return nil
}

// add appends an entry to the chain: its prev and hash are filled in.
func (c *chain) add(e chainEntry) (chainEntry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.prev = c.headHash()
	e.hash = e.computeHash()
	e.index = c.count() + 1
	if err := c.appendRecord(e.kind, e.encode()); err != nil {
		return e, err
	}
	c.entries = append(c.entries, e)
	switch e.kind {
	case cLink:
		if _, dup := c.linked[e.first]; !dup {
			c.linked[e.first] = len(c.entries) - 1
		}
	case cDelete:
		c.deleted[e.first] = len(c.entries) - 1
	}
	return e, nil
}

func (c *chain) isLinked(first uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.linked[first]
	return ok
}

func (c *chain) linkOf(first uint64) (chainEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.linked[first]
	if !ok {
		return chainEntry{}, false
	}
	return c.entries[i], true
}

func (c *chain) isDeleted(first uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.deleted[first]
	return ok
}

// sign appends a signed head of the chain as it is now.
func (c *chain) sign(sg Signer, unit string, lastSeq uint64, now time.Time) (SignedHead, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := SignedHead{UnitID: unit, Count: c.count(), Head: c.headHash(), LastSeq: lastSeq, Time: now.UTC().Round(0), PublicKey: sg.PublicKey()}
	h.Signature = sg.Sign(h.Message())
	if len(h.PublicKey) != ed25519.PublicKeySize || len(h.Signature) != ed25519.SignatureSize {
		return h, fmt.Errorf("footage: the signer gave a %d-byte key and a %d-byte signature, not Ed25519's %d and %d: check the evidence key",
			len(h.PublicKey), len(h.Signature), ed25519.PublicKeySize, ed25519.SignatureSize)
	}
	if err := c.appendRecord(cHead, encodeHead(&h)); err != nil {
		return h, err
	}
	c.heads = append(c.heads, h)
	return h, nil
}

// lastHead is the newest signed head, or nil.
func (c *chain) lastHead() *SignedHead {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.heads) == 0 {
		return nil
	}
	h := c.heads[len(c.heads)-1]
	return &h
}

// snapshot copies the chain for Verify and ChainFor.
func (c *chain) snapshot() (chainBase, []chainEntry, []SignedHead, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base, append([]chainEntry(nil), c.entries...), append([]SignedHead(nil), c.heads...), append([]string(nil), c.notes...)
}

// needsCompaction: over 1024 entries at the start of the chain are links
// of deleted segments and their deletions (about 8 hours of 60 s
// segments): memory and the file stay bounded by the footage kept.
func (c *chain) needsCompaction() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries) > 1024 && c.compactablePrefix() > 1024
}

// compactablePrefix is the length of the longest prefix of entries in
// which every link's segment has been deleted, by a deletion also in the
// prefix. Caller holds mu.
func (c *chain) compactablePrefix() int {
	open := 0 // links in the prefix not yet deleted within it
	pending := map[uint64]bool{}
	best := 0
	for i, e := range c.entries {
		switch e.kind {
		case cLink:
			if _, del := c.deleted[e.first]; !del {
				return best
			}
			if !pending[e.first] {
				pending[e.first] = true
				open++
			}
		case cDelete:
			if pending[e.first] {
				delete(pending, e.first)
				open--
			}
		}
		if open == 0 {
			best = i + 1
		}
	}
	return best
}

// compact rewrites the journal without the prefix of entries about
// deleted segments: the base keeps the hash of the last one dropped, so
// the chain still starts from a known point, and the time of the last
// deletion. Caller holds no lock.
func (c *chain) compact() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return ErrReadOnly
	}
	n := c.compactablePrefix()
	nb := c.base
	for _, e := range c.entries[:n] {
		if e.kind == cDelete {
			nb.deleted++
			nb.lastDel = max(nb.lastDel, e.at)
		}
	}
	if n > 0 {
		nb.prev = c.entries[n-1].hash
	}
	nb.count += uint64(n)
	rest := c.entries[n:]
	heads := c.heads
	if len(heads) > keepHeads {
		heads = heads[len(heads)-keepHeads:]
	}
	b := chainHeader()
	b = append(b, encodeManifestRecord(cBase, nb.encode())...)
	for i := range rest {
		b = append(b, encodeManifestRecord(rest[i].kind, rest[i].encode())...)
	}
	for i := range heads {
		b = append(b, encodeManifestRecord(cHead, encodeHead(&heads[i]))...)
	}
	f, err := createFile(c.fsys, c.dir, chainFile, b, true)
	if f == nil {
		return fmt.Errorf("footage: rewrite %s: %w", chainFile, err)
	}
	c.f.Close()
	c.f, c.off = f, int64(len(b))
	c.base, c.heads = nb, append([]SignedHead(nil), heads...)
	c.setEntries(append([]chainEntry(nil), rest...))
	c.records = 1 + len(rest) + len(heads)
	return err
}

func (c *chain) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}

// hashFile returns the SHA-256 and size of a file.
func hashFile(fsys FS, path string) (Hash, int64, error) {
	var out Hash
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return out, 0, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return out, 0, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return out, 0, err
	}
	h.Sum(out[:0])
	return out, size, nil
}

// openChain reads the chain journal and prepares it for appending: a torn
// tail is kept aside and cut; a journal whose header is damaged is set
// aside whole and a new chain started (Verify reports it). segs are the
// segments found, for the base of a new chain.
func (s *Store) openChain() error {
	st, err := readChain(s.fsys, s.dir)
	if err != nil {
		return fmt.Errorf("footage: read %s: %w", join(s.dir, chainFile), err)
	}
	path := join(s.dir, chainFile)
	var notes []string
	if st.exists && !st.valid {
		side := fmt.Sprintf("%s.damaged.%d", chainFile, s.clk.Now().UnixNano())
		notes = append(notes, fmt.Sprintf("%s had a damaged header and was set aside as %s; a new chain was started", chainFile, side))
		if !s.ro {
			if err := s.fsys.Rename(path, join(s.dir, side)); err != nil {
				return fmt.Errorf("footage: set aside damaged %s: %w", path, err)
			}
		}
		st = chainState{}
	}
	c := newChain(s.fsys, s.dir, st)
	s.chain = c
	if n := len(st.heads); n > 0 {
		s.lastHeadAt = st.heads[n-1].Time
	}
	if st.exists && st.end < st.size {
		side := fmt.Sprintf("%s%s.%d", chainFile, tornSuffix, st.end)
		if s.ro {
			notes = append(notes, fmt.Sprintf("%s has %d bytes at its end that are not a whole record (cut when the store is next opened for writing)", chainFile, st.size-st.end))
		} else {
			f, err := s.fsys.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				return fmt.Errorf("footage: open %s: %w", path, err)
			}
			if err := s.copyAside(f, st.end, st.size, side); err != nil {
				f.Close()
				return fmt.Errorf("footage: keep the torn tail of %s: %w", path, err)
			}
			if err := f.Truncate(st.end); err != nil {
				f.Close()
				return fmt.Errorf("footage: cut the torn tail of %s: %w", path, err)
			}
			f.Close()
			notes = append(notes, fmt.Sprintf("%s: cut a torn tail of %d bytes at offset %d (kept in %s)", chainFile, st.size-st.end, st.end, side))
		}
	}
	c.notes = notes
	if s.ro {
		if !st.exists {
			c.base = chainBase{startSeq: ^uint64(0)}
		}
		return nil
	}
	if !st.valid {
		// A new chain: segments already in the store predate it.
		c.base = chainBase{startSeq: s.nextSeq, created: s.clk.Now().UnixNano(), existing: uint64(len(s.segs))}
		if len(s.segs) == 0 {
			c.base.startSeq = 0
		}
		b := append(chainHeader(), encodeManifestRecord(cBase, c.base.encode())...)
		f, err := createFile(s.fsys, s.dir, chainFile, b, true)
		if f == nil {
			// Recording matters more than its chain: go on without one;
			// the segments sealed meanwhile are linked at the next open.
			s.log.Error("cannot create the chain journal: sealed footage is not being chained until the store is reopened", "path", path, "err", err)
			return nil
		}
		c.f, c.off, c.records = f, int64(len(b)), 1
	} else {
		f, err := s.fsys.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("footage: open %s: %w", path, err)
		}
		c.f, c.off = f, st.end
	}
	for _, n := range notes {
		s.log.Warn("footage chain recovery", "action", n)
	}

	// Finish deletions recorded before a crash stopped them, then link
	// the sealed segments whose link was lost (sealed just before a
	// crash, or in the recovery above), in sequence order: the same
	// store always recovers to the same chain.
	keep := s.segs[:0]
	for _, seg := range s.segs {
		if c.isDeleted(seg.sum.firstSeq) && seg.sealed {
			if err := s.fsys.Remove(join(s.dir, seg.name)); err != nil && !os.IsNotExist(err) {
				s.log.Warn("cannot finish deleting a segment retention deleted", "segment", seg.name, "err", err)
				keep = append(keep, seg)
				continue
			}
			c.notes = append(c.notes, fmt.Sprintf("%s: finished its deletion by retention, interrupted by a stop", seg.name))
			s.man.addDelete(seg.sum.firstSeq, seg.sum.lastSeq, seg.sum.run)
			continue
		}
		keep = append(keep, seg)
	}
	s.segs = keep
	for _, seg := range s.segs {
		if !seg.sealed || seg.sum.firstSeq < c.base.startSeq || c.isLinked(seg.sum.firstSeq) {
			continue
		}
		s.mu.Lock()
		sum := seg.sum
		s.mu.Unlock()
		if err := s.linkSegment(seg.name, &sum, nil, true); err != nil {
			// Linked at the next open; verify reports it meanwhile.
			s.log.Error("cannot link a sealed segment into the chain", "segment", seg.name, "err", err)
			break
		}
	}
	if c.needsCompaction() {
		if err := c.compact(); err != nil {
			s.log.Warn("compacting the chain journal failed", "err", err)
		}
	}
	return nil
}

// linkSegment appends the link of a sealed segment with that name and
// summary. digest is its SHA-256 if already known (computed while it was
// written); otherwise the file is read.
func (s *Store) linkSegment(name string, sum *summary, digest *Hash, recovered bool) error {
	if s.chain == nil || s.chain.f == nil {
		return nil
	}
	var d Hash
	size := sum.size
	if digest != nil {
		d = *digest
	} else {
		var err error
		if d, size, err = hashFile(s.fsys, join(s.dir, name)); err != nil {
			return fmt.Errorf("footage: hash segment %s for the chain: %w", name, err)
		}
	}
	e := chainEntry{kind: cLink, first: sum.firstSeq, last: sum.lastSeq, run: sum.run, size: size, digest: d}
	if recovered {
		e.flags = linkRecovered
	}
	if _, err := s.chain.add(e); err != nil {
		return err
	}
	return nil
}

// recordDeletion appends the deletion of a segment to the chain, before
// its file is removed.
func (s *Store) recordDeletion(seg *segment, reason string) error {
	if s.chain == nil || s.chain.f == nil {
		return nil
	}
	l, ok := s.chain.linkOf(seg.sum.firstSeq)
	if !ok {
		// Never chained (it predates the chain): nothing to record.
		if seg.sum.firstSeq < s.chain.base.startSeq {
			return nil
		}
	}
	e := chainEntry{kind: cDelete, first: seg.sum.firstSeq, last: seg.sum.lastSeq, run: seg.sum.run, size: seg.sum.size,
		digest: l.hash, at: s.clk.Now().UnixNano(), reason: reason}
	_, err := s.chain.add(e)
	return err
}

// SignHead signs the chain's head now with the configured Signer and
// records it. It fails when the store has no signer or is read-only.
func (s *Store) SignHead() (*SignedHead, error) {
	if s.ro {
		return nil, ErrReadOnly
	}
	if s.opts.Signer == nil {
		return nil, errors.New("footage: no signer configured: heads of the chain cannot be signed (give Options.Signer the unit's evidence key)")
	}
	s.mu.Lock()
	last := s.synced
	s.mu.Unlock()
	h, err := s.chain.sign(s.opts.Signer, s.opts.UnitID, last, s.clk.Now())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.lastHeadAt = s.clk.Now()
	s.mu.Unlock()
	return &h, nil
}

// maybeSignHead signs a head when HeadEvery has passed since the last and
// the chain has grown since.
func (s *Store) maybeSignHead(force bool) {
	if s.ro || s.opts.Signer == nil || s.chain == nil {
		return
	}
	now := s.clk.Now()
	s.mu.Lock()
	due := force || now.Sub(s.lastHeadAt) >= s.opts.HeadEvery
	s.mu.Unlock()
	if !due {
		return
	}
	if h := s.chain.lastHead(); h != nil {
		s.chain.mu.Lock()
		same := h.Count == s.chain.count()
		s.chain.mu.Unlock()
		if same {
			return
		}
	}
	if _, err := s.SignHead(); err != nil {
		s.log.Warn("signing the footage chain's head failed", "err", err)
	}
}

// ChainProof is what ChainFor found for a range: the links of the sealed
// segments covering it and the newest signed head.
type ChainProof struct {
	Links []ChainLink `json:"links"`
	// Head is the newest signed head, nil if none was ever signed (no
	// signer is configured). It covers every link whose Index is at most
	// Head.Count.
	Head *SignedHead `json:"head,omitempty"`
	// Unsealed is set when part of the range is in the segment still
	// being written (or one not yet sealed): that footage has no link yet.
	Unsealed bool `json:"unsealed,omitempty"`
	// Unchained lists segments covering the range that are not in the
	// chain: recorded before the chain was started.
	Unchained []string `json:"unchained,omitempty"`
}

// ChainFor returns the chain links of the sealed segments holding footage
// between from and to (corrected times), and the newest signed head. On a
// writable store with a signer, a head is signed first if the newest one
// does not cover every link returned.
func (s *Store) ChainFor(ctx context.Context, from, to time.Time) (ChainProof, error) {
	var p ChainProof
	if err := ctx.Err(); err != nil {
		return p, err
	}
	s.mu.Lock()
	var covering []segView
	sel := overlap(from.UnixNano(), to.UnixNano())
	for _, v := range s.viewsLocked() {
		if sel(&v) {
			covering = append(covering, v)
		}
	}
	s.mu.Unlock()
	for _, v := range covering {
		s.mu.Lock()
		sealed := v.seg.sealed
		s.mu.Unlock()
		if !sealed {
			p.Unsealed = true
			continue
		}
		if e, ok := s.chain.linkOf(v.sum.firstSeq); ok {
			p.Links = append(p.Links, e.link())
		} else {
			p.Unchained = append(p.Unchained, v.seg.name)
		}
	}
	var maxIdx uint64
	for _, l := range p.Links {
		maxIdx = max(maxIdx, l.Index)
	}
	p.Head = s.chain.lastHead()
	if !s.ro && s.opts.Signer != nil && len(p.Links) > 0 && (p.Head == nil || p.Head.Count < maxIdx) {
		h, err := s.SignHead()
		if err != nil {
			return p, err
		}
		p.Head = h
	}
	return p, nil
}
