package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// snap is a file as a reader sees it: read up to size.
type snap struct {
	fi   *fileInfo
	size int64
}

// snapshot lists the files to read without holding the lock while
// reading: sealed files do not change, and the file being written is read
// up to its last entry.
func (l *Log) snapshot() ([]snap, [32]byte, uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil, [32]byte{}, 0, errors.New("audit: the log is closed")
	}
	s := make([]snap, len(l.files))
	for i, f := range l.files {
		s[i] = snap{fi: f, size: f.size}
	}
	return s, l.head, l.nextSeq - 1, nil
}

// read returns a file's bytes up to size, or nil when it was removed
// meanwhile.
func (l *Log) read(s snap) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(l.dir, s.fi.name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read %s: %w", s.fi.name, err)
	}
	return b[:min(int64(len(b)), s.size)], nil
}

// Since returns up to limit entries whose time is t or later, oldest
// (lowest sequence) first. limit <= 0 means no limit. Records whose CRC
// fails are left out; an entry that does not chain is returned as stored,
// and Verify says which it is.
func (l *Log) Since(t time.Time, limit int) ([]Entry, error) {
	es, _, err := l.list(t, 0, limit)
	return es, err
}

// list returns up to limit entries with a time not before since and a
// sequence above after, and whether more follow.
func (l *Log) list(since time.Time, after uint64, limit int) ([]Entry, bool, error) {
	snaps, _, _, err := l.snapshot()
	if err != nil {
		return nil, false, err
	}
	var out []Entry
	for i, s := range snaps {
		// Skip files wholly before the range, known from an earlier read.
		l.mu.Lock()
		newest, known := s.fi.newest, s.fi.newestSet
		l.mu.Unlock()
		if known && newest.Before(since) {
			continue
		}
		if i+1 < len(snaps) && snaps[i+1].fi.first-1 <= after {
			continue
		}
		b, err := l.read(s)
		if err != nil {
			return out, false, err
		}
		res, err := scan(b)
		if err != nil {
			continue // Verify reports it
		}
		var fileNewest time.Time
		prev := res.hdr.prev
		for _, r := range res.recs {
			var e Entry
			if json.Unmarshal(r.canon, &e) != nil || e.Seq != r.seq {
				prev = r.hash
				continue
			}
			if e.Time.After(fileNewest) {
				fileNewest = e.Time
			}
			if r.seq > after && !e.Time.Before(since) {
				if limit > 0 && len(out) == limit {
					return out, true, nil
				}
				e.Hash, e.PrevHash = hexHash(r.hash), hexHash(prev)
				out = append(out, e)
			}
			prev = r.hash
		}
		if i+1 < len(snaps) {
			l.mu.Lock()
			if !s.fi.newestSet {
				s.fi.newest, s.fi.newestSet = fileNewest, true
			}
			l.mu.Unlock()
		}
	}
	return out, false, nil
}

// Problem is one place where the log is not what was written.
type Problem struct {
	// Seq is the entry concerned; 0 when it cannot be told.
	Seq    uint64 `json:"seq,omitempty"`
	File   string `json:"file"`
	Offset int64  `json:"offset"`
	What   string `json:"what"`
}

func (p Problem) String() string {
	if p.Seq != 0 {
		return fmt.Sprintf("entry %d (%s at offset %d): %s", p.Seq, p.File, p.Offset, p.What)
	}
	return fmt.Sprintf("%s at offset %d: %s", p.File, p.Offset, p.What)
}

// VerifyReport is the result of checking the whole chain.
type VerifyReport struct {
	// OK is true when every entry from FirstSeq to LastSeq is present,
	// intact and chained.
	OK       bool   `json:"ok"`
	Files    int    `json:"files"`
	Entries  int    `json:"entries"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	// Anchor is the hash the first remaining entry chains from: all zeros
	// when the log starts there, else the hash of the last entry removed
	// by age or size.
	Anchor string `json:"anchor"`
	// Head is the last entry's hash. A control room that keeps it can
	// tell later whether the log was rewritten since.
	Head     string    `json:"head"`
	Problems []Problem `json:"problems,omitempty"`
}

// Verify reads every file and checks the chain: each file's header, each
// record's CRC, sequences without gaps, each entry's hash against its
// content and the hash before it, each file chaining from the one before.
// Each problem names the entry (when it can), the file and the offset. It
// returns an error only when a file cannot be read.
//
// Files no longer written are checked once and remembered by size and
// modification time, so a repeated Verify reads little more than the
// file being written.
func (l *Log) Verify() (VerifyReport, error) {
	snaps, head, lastSeq, err := l.snapshot()
	if err != nil {
		return VerifyReport{}, err
	}
	var rep VerifyReport
	var prev *verdict
	for i, s := range snaps {
		v, err := l.verifyFile(s, i == len(snaps)-1)
		if err != nil {
			return rep, err
		}
		if v == nil {
			continue // removed by age or size while reading
		}
		rep.Files++
		if v.headerErr != "" {
			rep.Problems = append(rep.Problems, Problem{File: v.name, What: v.headerErr})
			continue
		}
		if prev == nil {
			rep.Anchor, rep.FirstSeq = hexHash(v.hdr.prev), v.hdr.first
		} else {
			add := func(seq uint64, format string, args ...any) {
				rep.Problems = append(rep.Problems, Problem{Seq: seq, File: v.name, What: fmt.Sprintf(format, args...)})
			}
			switch {
			case v.hdr.first > prev.lastSeq+1:
				add(prev.lastSeq+1, "entries %d to %d are missing: the file before ends at %d", prev.lastSeq+1, v.hdr.first-1, prev.lastSeq)
			case v.hdr.first <= prev.lastSeq:
				add(v.hdr.first, "the file starts at entry %d, which the file before already holds", v.hdr.first)
			case v.hdr.prev != prev.lastHash:
				add(v.hdr.first, "the file does not chain from the last entry of the file before (%d): one of them was altered", prev.lastSeq)
			}
		}
		rep.Problems = append(rep.Problems, v.problems...)
		rep.Entries += v.entries
		prev = v
	}
	if prev != nil {
		rep.LastSeq, rep.Head = prev.lastSeq, hexHash(prev.lastHash)
		if prev.lastHash != head || prev.lastSeq != lastSeq {
			rep.Problems = append(rep.Problems, Problem{Seq: prev.lastSeq, File: prev.name, What: fmt.Sprintf(
				"the log on the card ends at entry %d (%.12s), the unit wrote up to %d (%.12s): the files were changed while the agent ran",
				prev.lastSeq, hexHash(prev.lastHash), lastSeq, hexHash(head))})
		}
	}
	rep.OK = len(rep.Problems) == 0
	return rep, nil
}

// verdict is what checking one file found, on its own: its links to the
// file before are checked by Verify.
type verdict struct {
	name      string
	headerErr string
	hdr       fileHeader
	problems  []Problem
	entries   int
	lastSeq   uint64   // the last entry's, or first-1
	lastHash  [32]byte // the last entry's, or the header's prev
	// The file's size and modification time when it was checked.
	size  int64
	mtime time.Time
}

// verifyFile checks a file, or returns the remembered verdict of a file
// no longer written that has not changed since. It returns nil when the
// file is gone.
func (l *Log) verifyFile(s snap, current bool) (*verdict, error) {
	path := filepath.Join(l.dir, s.fi.name)
	var mtime time.Time
	if !current {
		st, err := os.Stat(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		mtime = st.ModTime()
		l.mu.Lock()
		v := l.verdicts[s.fi.name]
		l.mu.Unlock()
		if v != nil && v.size == st.Size() && v.mtime.Equal(mtime) {
			return v, nil
		}
	}
	b, err := l.read(s)
	if err != nil || b == nil {
		return nil, err
	}
	v := checkFile(s.fi.name, s.fi.first, b)
	if !current {
		v.size, v.mtime = int64(len(b)), mtime
		l.mu.Lock()
		if l.verdicts == nil {
			l.verdicts = map[string]*verdict{}
		}
		l.verdicts[s.fi.name] = v
		l.mu.Unlock()
	}
	return v, nil
}

// checkFile checks one file's bytes.
func checkFile(name string, first uint64, b []byte) *verdict {
	v := &verdict{name: name}
	add := func(seq uint64, off int64, format string, args ...any) {
		v.problems = append(v.problems, Problem{Seq: seq, File: name, Offset: off, What: fmt.Sprintf(format, args...)})
	}
	res, err := scan(b)
	if err != nil {
		v.headerErr = fmt.Sprintf("%v: the entries of this file cannot be read", err)
		return v
	}
	v.hdr = res.hdr
	if res.hdr.first != first {
		add(0, 0, "the header says the file starts at entry %d, its name says %d: the file was renamed", res.hdr.first, first)
	}
	prevHash, prevSeq := res.hdr.prev, res.hdr.first-1
	di := 0
	damaged := func(d damage) {
		add(prevSeq+1, d.off, "%d damaged bytes (CRC mismatch) where entry %d should start: entries there were lost or altered", d.end-d.off, prevSeq+1)
	}
	for _, r := range res.recs {
		for ; di < len(res.damaged) && res.damaged[di].end <= r.off; di++ {
			damaged(res.damaged[di])
		}
		switch {
		case r.seq == prevSeq+2:
			add(prevSeq+1, r.off, "entry %d is missing: entry %d follows entry %d", prevSeq+1, r.seq, prevSeq)
		case r.seq > prevSeq+1:
			add(prevSeq+1, r.off, "entries %d to %d are missing: entry %d follows entry %d", prevSeq+1, r.seq-1, r.seq, prevSeq)
		case r.seq <= prevSeq:
			add(r.seq, r.off, "entry %d appears after entry %d: entries were reordered or duplicated", r.seq, prevSeq)
		case chainHash(prevHash, r.canon) != r.hash:
			add(r.seq, r.off, "the hash does not match: this entry, or the one before it, was altered after it was written")
		}
		// The canonical encoding starts with the sequence; checking it
		// spares decoding every entry.
		if want := fmt.Appendf(nil, `{"seq":%d,`, r.seq); !bytes.HasPrefix(r.canon, want) {
			add(r.seq, r.off, "the content does not start with its sequence number: it was not written by the agent")
		}
		v.entries++
		prevHash, prevSeq = r.hash, r.seq
	}
	for ; di < len(res.damaged); di++ {
		damaged(res.damaged[di])
	}
	if res.tail() > 0 {
		add(prevSeq+1, res.dataEnd, "%d bytes that are not an intact entry at the end of the file", res.tail())
	}
	v.lastSeq, v.lastHash = prevSeq, prevHash
	return v
}
