package clip

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Part is a file being received: the data in "<out>.part", the manifest in
// "<out>.part.json" and one byte per chunk in "<out>.part.map" (1 when the
// chunk's data has been written). A chunk's data is written before its map
// byte, so after a crash the map never claims data that is not there; at
// worst a chunk is fetched twice.
type Part struct {
	out      string
	m        Manifest
	data     *os.File
	mapf     *os.File
	have     Bitmap
	received int64
}

// OpenPart opens, or starts, the partial download of m into out. An
// existing part for a different file (another id, size or hash) is
// discarded. Resumed reports how many chunks were already there.
func OpenPart(out string, m Manifest) (p *Part, resumed int, err error) {
	if err := m.Validate(); err != nil {
		return nil, 0, err
	}
	if dir := filepath.Dir(out); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, 0, fmt.Errorf("clip: %w", err)
		}
	}
	p = &Part{out: out, m: m, have: NewBitmap(m.Chunks)}
	same := false
	if b, err := os.ReadFile(out + ".part.json"); err == nil {
		var old Manifest
		same = json.Unmarshal(b, &old) == nil && old.ID == m.ID && old.Size == m.Size &&
			old.SHA256 == m.SHA256 && old.ChunkSize == m.ChunkSize
	}
	if !same {
		for _, suffix := range []string{".part", ".part.map", ".part.json"} {
			if err := os.Remove(out + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, 0, fmt.Errorf("clip: discarding an old partial download: %w", err)
			}
		}
		b, _ := json.Marshal(m)
		if err := writeFileSync(out+".part.json", b); err != nil {
			return nil, 0, err
		}
	}
	if p.data, err = os.OpenFile(out+".part", os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return nil, 0, fmt.Errorf("clip: %w", err)
	}
	if p.mapf, err = os.OpenFile(out+".part.map", os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		p.data.Close()
		return nil, 0, fmt.Errorf("clip: %w", err)
	}
	if err := p.data.Truncate(m.Size); err != nil {
		p.Close()
		return nil, 0, fmt.Errorf("clip: reserving %d bytes for %s: %w", m.Size, out, err)
	}
	marks := make([]byte, m.Chunks)
	n, err := p.mapf.ReadAt(marks, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		p.Close()
		return nil, 0, fmt.Errorf("clip: %w", err)
	}
	for i := 0; i < n; i++ {
		if marks[i] == 1 {
			p.have.Set(i)
			p.received += int64(m.chunkLen(i))
		}
	}
	return p, p.have.Count(), nil
}

// Have is the bitmap of chunks already received.
func (p *Part) Have() Bitmap { return p.have }

// Received is the number of bytes received so far.
func (p *Part) Received() int64 { return p.received }

// Complete reports whether every chunk has arrived.
func (p *Part) Complete() bool { return p.have.Count() == p.m.Chunks }

// Write stores chunk i; a chunk already stored is ignored.
func (p *Part) Write(i int, data []byte) error {
	if i < 0 || i >= p.m.Chunks {
		return fmt.Errorf("clip: chunk %d is outside 0-%d", i, p.m.Chunks-1)
	}
	if len(data) != p.m.chunkLen(i) {
		return fmt.Errorf("clip: chunk %d has %d bytes, want %d", i, len(data), p.m.chunkLen(i))
	}
	if p.have.Has(i) {
		return nil
	}
	if _, err := p.data.WriteAt(data, int64(i)*int64(p.m.ChunkSize)); err != nil {
		return fmt.Errorf("clip: writing %s: %w", p.out+".part", err)
	}
	if _, err := p.mapf.WriteAt([]byte{1}, int64(i)); err != nil {
		return fmt.Errorf("clip: writing %s: %w", p.out+".part.map", err)
	}
	p.have.Set(i)
	p.received += int64(len(data))
	return nil
}

// ErrHashMismatch means every chunk arrived but the file is not the one the
// unit described; the partial download is discarded.
var ErrHashMismatch = errors.New("clip: the received file's SHA-256 does not match the unit's manifest")

// Finish checks the whole file's SHA-256, syncs it and renames it to out.
func (p *Part) Finish() error {
	if !p.Complete() {
		return fmt.Errorf("clip: %d of %d chunks missing", p.m.Chunks-p.have.Count(), p.m.Chunks)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(p.data, 0, p.m.Size)); err != nil {
		return fmt.Errorf("clip: hashing %s: %w", p.out+".part", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.m.SHA256 {
		p.Discard()
		return fmt.Errorf("%w (got %s, want %s)", ErrHashMismatch, got, p.m.SHA256)
	}
	if err := p.data.Sync(); err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	p.Close()
	if err := os.Rename(p.out+".part", p.out); err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	syncDir(filepath.Dir(p.out))
	os.Remove(p.out + ".part.map")
	os.Remove(p.out + ".part.json")
	return nil
}

// Sync makes what was received durable (the map, then nothing is lost to
// a power cut beyond what arrived since the last Sync).
func (p *Part) Sync() error {
	if err := p.data.Sync(); err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	return p.mapf.Sync()
}

// Discard removes the partial download.
func (p *Part) Discard() {
	p.Close()
	for _, suffix := range []string{".part", ".part.map", ".part.json"} {
		os.Remove(p.out + suffix)
	}
}

// Close closes the files, keeping them for a later resume.
func (p *Part) Close() {
	if p.data != nil {
		p.data.Close()
		p.data = nil
	}
	if p.mapf != nil {
		p.mapf.Close()
		p.mapf = nil
	}
}

func writeFileSync(name string, b []byte) error {
	tmp := name + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("clip: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("clip: %w", err)
	}
	f.Close()
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	syncDir(filepath.Dir(name))
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
