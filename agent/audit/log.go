package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/outpost-cctv/outpost/internal/clock"
)

// Entry is one access to the unit, as recorded. Append fills Seq, Time
// (when zero), Hash and PrevHash; the other fields are what the agent
// says.
type Entry struct {
	// Seq numbers the entries from 1, without gaps, for the unit's life.
	Seq uint64 `json:"seq"`
	// Time is when the request was handled, by the unit's clock (UTC).
	Time time.Time `json:"time"`
	// Action is the command: "clip.start", "snapshot", "config.set",
	// "ota.push", "command.rejected", ...
	Action string `json:"action"`
	// Requester is who asked, and how sure the unit is of it: "alice
	// (signed)", "unverified: alice".
	Requester string `json:"requester,omitempty"`
	// RequestID is the control room's request id.
	RequestID string `json:"request_id,omitempty"`
	// From and To are the footage range asked for, when there is one.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// Result is "ok" or the reply's error code.
	Result string `json:"result,omitempty"`
	// Detail is the error message or a short summary of the arguments.
	Detail string `json:"detail,omitempty"`
	// Recipient and Reason say, for a disclosure, who receives the
	// footage and why (the ICO's disclosure log).
	Recipient string `json:"recipient,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// Hash is this entry's chain hash and PrevHash the previous entry's
	// (hex SHA-256; all zeros before the first entry).
	Hash     string `json:"hash,omitempty"`
	PrevHash string `json:"prev_hash,omitempty"`
}

// Field bounds: longer values are cut (and marked with "…") so that an
// access is always recorded, whatever a requester sends.
const (
	maxAction    = 64
	maxRequester = 256
	maxRequestID = 128
	maxResult    = 128
	maxDetail    = 2048
	maxRecipient = 256
	maxReason    = 1024
)

// Defaults of Options.
const (
	// DefaultMaxAge keeps entries 400 days. Footage is deleted after 28
	// days, but its disclosure must stay accountable much longer: a
	// subject access request may take three months to answer, a
	// complaint to the ICO or a prosecution comes months after the
	// footage was handed over, and the Surveillance Camera Code's annual
	// review looks back a year. 400 days is a year and a margin.
	DefaultMaxAge = 400 * 24 * time.Hour
	// DefaultMaxTotalBytes bounds the log on the SD card: at about 400
	// bytes an entry it holds some 160,000 entries, far more than a year
	// of a unit's accesses.
	DefaultMaxTotalBytes = 64 << 20
	// DefaultFileMaxBytes is the size at which the log rotates to a new
	// file; old entries are removed a whole file at a time.
	DefaultFileMaxBytes = 1 << 20
)

// Options tunes a Log. Zero fields take the defaults.
type Options struct {
	// Clock stamps entries and ages files (default the wall clock).
	Clock clock.Clock
	// Logger receives recovery notes, removals and slow syncs (default:
	// discarded).
	Logger *slog.Logger
	// MaxAge removes a file once its newest entry is older (default
	// DefaultMaxAge; negative: never by age).
	MaxAge time.Duration
	// MaxTotalBytes removes the oldest files while the log is larger
	// (default DefaultMaxTotalBytes; negative: never by size). The file
	// being written is never removed.
	MaxTotalBytes int64
	// FileMaxBytes is the size at which the log rotates (default
	// DefaultFileMaxBytes, at least 4 KiB).
	FileMaxBytes int64
}

// Validate checks the options before any I/O.
func (o Options) Validate() error {
	if o.FileMaxBytes != 0 && o.FileMaxBytes < 4<<10 {
		return fmt.Errorf("audit: file_max_bytes %d is below the minimum 4096", o.FileMaxBytes)
	}
	if o.MaxTotalBytes > 0 && o.FileMaxBytes > 0 && o.MaxTotalBytes < 2*o.FileMaxBytes {
		return fmt.Errorf("audit: max_total_bytes %d must be at least twice file_max_bytes %d, or old entries go at once", o.MaxTotalBytes, o.FileMaxBytes)
	}
	return nil
}

func (o *Options) defaults() {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxTotalBytes == 0 {
		o.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if o.FileMaxBytes == 0 {
		o.FileMaxBytes = DefaultFileMaxBytes
	}
}

// fileInfo is one log file as the Log knows it.
type fileInfo struct {
	name  string
	first uint64
	size  int64
	// newest is the newest entry time in the file, known once the file
	// has been read (or written by this Log).
	newest    time.Time
	newestSet bool
}

// Log is the unit's access audit trail. It is safe for concurrent use.
type Log struct {
	dir  string
	opts Options
	clk  clock.Clock
	log  *slog.Logger

	mu      sync.Mutex
	files   []*fileInfo // oldest first; the last is being written
	f       *os.File    // the last file; nil once closed
	end     int64       // end of the last intact record in f
	head    [32]byte    // hash of the last entry (or the anchor)
	nextSeq uint64
	broken  error // a failed write that could not be undone
	notes   []string
	// verdicts remembers the checks of files no longer written, by name.
	verdicts map[string]*verdict
	repairs  []string // notes of repairs, recorded as entries by Open
}

// Open opens (creating if needed) the audit log in dir and recovers it
// after a power cut: a torn tail of the file being written is cut off and
// kept beside it in FILE.torn.OFFSET, a file whose header is damaged is
// set aside whole; each is noted (Notes), logged, and recorded in the log
// itself as an "audit.recovery" entry. Damage in the middle of a file is
// left in place for Verify to report (and noted, not recorded).
func Open(dir string, opts Options) (*Log, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.defaults()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("audit: create the log directory: %w", err)
	}
	l := &Log{dir: dir, opts: opts, clk: opts.Clock, log: opts.Logger, nextSeq: 1}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: read the log directory: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			// A file creation that did not finish: it never held an entry.
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("audit: remove unfinished file: %w", err)
			}
			continue
		}
		first, ok := parseFileName(name)
		if !ok || !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			return nil, fmt.Errorf("audit: %s: %w", name, err)
		}
		l.files = append(l.files, &fileInfo{name: name, first: first, size: fi.Size()})
	}
	sort.Slice(l.files, func(i, j int) bool { return l.files[i].first < l.files[j].first })
	if err := l.recover(); err != nil {
		return nil, err
	}
	if l.f == nil {
		if err := l.startFile(); err != nil {
			return nil, err
		}
	}
	for _, n := range l.repairs {
		if _, err := l.Append(Entry{Action: "audit.recovery", Requester: "agent", Result: "ok", Detail: n}); err != nil {
			l.Close()
			return nil, err
		}
	}
	l.mu.Lock()
	l.prune()
	l.mu.Unlock()
	return l, nil
}

// note keeps what recovery found; a repair (bytes cut or set aside) is
// also recorded in the log, once.
func (l *Log) note(file, msg string, repair bool) {
	n := file + ": " + msg
	l.notes = append(l.notes, n)
	if repair {
		l.repairs = append(l.repairs, n)
	}
	l.log.Warn("audit log recovered", "file", file, "note", msg)
}

// recover opens the newest file with a readable header for appending,
// cutting its torn tail.
func (l *Log) recover() error {
	for len(l.files) > 0 {
		cur := l.files[len(l.files)-1]
		path := filepath.Join(l.dir, cur.name)
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("audit: read %s: %w", path, err)
		}
		res, err := scan(b)
		if errors.Is(err, errBadHeader) {
			side, serr := l.setAside(path, b, 0)
			if serr != nil {
				return serr
			}
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("audit: set aside %s: %w", path, err)
			}
			l.note(cur.name, fmt.Sprintf("damaged header (%v): the whole file (%d bytes) was set aside in %s; its entries are not in the chain", err, len(b), side), true)
			l.files = l.files[:len(l.files)-1]
			continue
		}
		if err != nil {
			return fmt.Errorf("audit: %s: %w", path, err)
		}
		for _, d := range res.damaged {
			l.note(cur.name, fmt.Sprintf("%d damaged bytes at offset %d (entries there are lost or altered; see the verification)", d.end-d.off, d.off), false)
		}
		if res.tail() > 0 {
			side, err := l.setAside(path, b[res.dataEnd:], res.dataEnd)
			if err != nil {
				return err
			}
			l.note(cur.name, fmt.Sprintf("cut a torn tail of %d bytes at offset %d (kept in %s)", res.tail(), res.dataEnd, side), true)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("audit: open %s: %w", path, err)
		}
		if res.tail() > 0 {
			if err := f.Truncate(res.dataEnd); err == nil {
				err = f.Sync()
			}
			if err != nil {
				f.Close()
				return fmt.Errorf("audit: cut the torn tail of %s: %w", path, err)
			}
		}
		l.f, l.end, cur.size = f, res.dataEnd, res.dataEnd
		l.head, l.nextSeq = res.hdr.prev, res.hdr.first
		for _, r := range res.recs {
			if r.seq >= l.nextSeq {
				l.nextSeq = r.seq + 1
			}
			l.head = r.hash
		}
		cur.newest, cur.newestSet = newestTime(res.recs), true
		return nil
	}
	return nil
}

// setAside keeps damaged bytes of a file (cut from offset off) in
// FILE.torn.OFF, synced, and returns its name.
func (l *Log) setAside(path string, b []byte, off int64) (string, error) {
	side := fmt.Sprintf("%s%s.%d", path, tornSuffix, off)
	for i := 2; ; i++ {
		if _, err := os.Lstat(side); errors.Is(err, os.ErrNotExist) {
			break
		}
		side = fmt.Sprintf("%s%s.%d-%d", path, tornSuffix, off, i)
	}
	f, err := os.OpenFile(side, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err == nil {
		_, err = f.Write(b)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = syncDir(l.dir)
	}
	if err != nil {
		return "", fmt.Errorf("audit: keep damaged bytes of %s aside: %w", path, err)
	}
	return filepath.Base(side), nil
}

func newestTime(recs []rawRecord) time.Time {
	var newest time.Time
	for _, r := range recs {
		var e struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal(r.canon, &e) == nil && e.Time.After(newest) {
			newest = e.Time
		}
	}
	return newest
}

// startFile begins a new file whose first entry will be l.nextSeq,
// chained to l.head: written as NAME.tmp, synced, renamed, and the
// directory synced, so that the file exists under its name only whole.
func (l *Log) startFile() error {
	name := fileName(l.nextSeq)
	path := filepath.Join(l.dir, name)
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("audit: %s already exists although the log ends at sequence %d: move it away and restart", path, l.nextSeq-1)
	}
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("audit: create %s: %w", path, err)
	}
	_, err = f.Write(fileHeader{first: l.nextSeq, prev: l.head}.encode())
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(l.dir)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("audit: create %s: %w", path, err)
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f, l.end = f, headerSize
	l.files = append(l.files, &fileInfo{name: name, first: l.nextSeq, size: headerSize, newestSet: true})
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// clip makes s valid UTF-8 (as it will be stored) and cuts it to at most
// n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Append records e durably: it returns once the entry is on the card
// (fsync'ed). It assigns Seq, stamps Time when zero, and fills Hash and
// PrevHash; fields longer than their bound are cut. An entry needs an
// Action.
func (l *Log) Append(e Entry) (Entry, error) {
	if e.Action == "" {
		return Entry{}, errors.New("audit: an entry needs an action (the command's name)")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return Entry{}, errors.New("audit: the log is closed")
	}
	if l.broken != nil {
		return Entry{}, fmt.Errorf("audit: the log is unusable after an earlier write failure (%v): check the SD card and restart the agent", l.broken)
	}
	e.Seq = l.nextSeq
	if e.Time.IsZero() {
		e.Time = l.clk.Now()
	}
	e.Time = e.Time.UTC()
	if !e.From.IsZero() {
		e.From = e.From.UTC()
	}
	if !e.To.IsZero() {
		e.To = e.To.UTC()
	}
	e.Action = clip(e.Action, maxAction)
	e.Requester = clip(e.Requester, maxRequester)
	e.RequestID = clip(e.RequestID, maxRequestID)
	e.Result = clip(e.Result, maxResult)
	e.Detail = clip(e.Detail, maxDetail)
	e.Recipient = clip(e.Recipient, maxRecipient)
	e.Reason = clip(e.Reason, maxReason)
	e.Hash, e.PrevHash = "", ""
	canon, err := json.Marshal(e)
	if err != nil {
		return Entry{}, fmt.Errorf("audit: encode entry: %w", err)
	}
	prev := l.head
	hash := chainHash(prev, canon)
	rec := encodeRecord(e.Seq, hash, canon)
	if l.end > headerSize && l.end+int64(len(rec)) > l.opts.FileMaxBytes {
		if err := l.startFile(); err != nil {
			return Entry{}, err
		}
	}
	start := l.clk.Now()
	_, err = l.f.WriteAt(rec, l.end)
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		// Cut back to the previous entry, so that a later append does not
		// follow bytes that may or may not be on the card.
		if terr := l.f.Truncate(l.end); terr != nil {
			l.broken = err
		} else if serr := l.f.Sync(); serr != nil {
			l.broken = err
		}
		return Entry{}, fmt.Errorf("audit: write entry %d (%s): %w", e.Seq, e.Action, err)
	}
	if d := l.clk.Now().Sub(start); d > time.Second {
		l.log.Warn("slow audit log sync", "took", d.Round(time.Millisecond), "seq", e.Seq)
	}
	l.end += int64(len(rec))
	l.head = hash
	l.nextSeq++
	cur := l.files[len(l.files)-1]
	cur.size = l.end
	if e.Time.After(cur.newest) {
		cur.newest = e.Time
	}
	l.prune()
	e.Hash, e.PrevHash = hexHash(hash), hexHash(prev)
	return e, nil
}

// prune removes whole old files, never the one being written: those whose
// newest entry is older than MaxAge, then the oldest while the log is
// larger than MaxTotalBytes. The file after keeps the hash it chains
// from, so the rest still verifies. Failures are logged and retried at
// the next append.
func (l *Log) prune() {
	var total int64
	for _, f := range l.files {
		total += f.size
	}
	now := l.clk.Now()
	for len(l.files) > 1 {
		old := l.files[0]
		if !old.newestSet {
			l.loadNewest(old)
		}
		byAge := l.opts.MaxAge > 0 && now.Sub(old.newest) > l.opts.MaxAge
		bySize := l.opts.MaxTotalBytes > 0 && total > l.opts.MaxTotalBytes
		if !byAge && !bySize {
			return
		}
		path := filepath.Join(l.dir, old.name)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.log.Error("cannot remove an old audit file", "file", old.name, "err", err)
			return
		}
		sides, _ := filepath.Glob(path + tornSuffix + ".*")
		for _, s := range sides {
			os.Remove(s)
		}
		if err := syncDir(l.dir); err != nil {
			l.log.Error("cannot sync the audit log directory", "err", err)
		}
		total -= old.size
		l.files = l.files[1:]
		next := l.files[0].first
		if byAge {
			l.log.Info("removed old audit entries", "file", old.name, "seqs", fmt.Sprintf("%d-%d", old.first, next-1), "newest", old.newest, "max_age", l.opts.MaxAge)
		} else {
			l.log.Warn("removed audit entries younger than the maximum age to stay within the size bound; raise max_total_bytes",
				"file", old.name, "seqs", fmt.Sprintf("%d-%d", old.first, next-1), "newest", old.newest, "max_total_bytes", l.opts.MaxTotalBytes)
		}
	}
}

// loadNewest reads a sealed file to learn its newest entry time; a file
// with no readable entry is aged by its modification time.
func (l *Log) loadNewest(fi *fileInfo) {
	path := filepath.Join(l.dir, fi.name)
	b, err := os.ReadFile(path)
	if err == nil {
		if res, serr := scan(b); serr == nil {
			fi.newest = newestTime(res.recs)
		}
	}
	if fi.newest.IsZero() {
		if st, err := os.Stat(path); err == nil {
			fi.newest = st.ModTime()
		} else {
			fi.newest = l.clk.Now() // unknown: keep it for now
		}
	}
	fi.newestSet = true
}

// Head returns the sequence and hash (hex) of the last entry; 0 and the
// anchor when the log holds none.
func (l *Log) Head() (uint64, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nextSeq - 1, hexHash(l.head)
}

// Notes returns what Open found and repaired, for a person.
func (l *Log) Notes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.notes...)
}

// Close closes the log; later appends fail.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

var _ io.Closer = (*Log)(nil)
