// Package footagetest holds fakes for testing the footage store and what
// uses it: a file system that fails on demand (a full disk on write, sync
// or rename; a small disk), frame makers, and an in-memory signer.
package footagetest

import (
	"crypto/ed25519"
	"io"
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/outpost-cctv/outpost/footage"
)

// Op names a file-system operation a FaultFS can fail.
type Op string

// Operations a FaultFS can fail.
const (
	OpCreate   Op = "create" // OpenFile with O_CREATE
	OpOpen     Op = "open"   // OpenFile without O_CREATE
	OpWrite    Op = "write"
	OpSync     Op = "sync"
	OpTruncate Op = "truncate"
	OpRename   Op = "rename"
	OpRemove   Op = "remove"
	OpSyncDir  Op = "syncdir"
)

// ErrNoSpace is the error of a full disk.
var ErrNoSpace error = syscall.ENOSPC

// FaultFS wraps a file system (OSFS by default) and fails operations for
// which Fail returns an error. A failed write writes nothing unless
// ShortWrite is set, in which case half the bytes are written first, as a
// disk that fills mid-write does.
type FaultFS struct {
	Base footage.FS

	mu sync.Mutex
	// Fail decides, for each operation on a file (base name), whether it
	// fails. Nil fails nothing.
	Fail func(op Op, name string) error
	// ShortWrite makes failed writes partial.
	ShortWrite bool
	// Total and Free, when Total is set, replace the disk usage figures
	// reported; tests set them as the case needs.
	Total, Free int64
	// Calls counts the operations seen, by kind.
	Calls map[Op]int
	open  map[*faultFile]bool
}

var _ footage.FS = (*FaultFS)(nil)

// SetFail replaces the failure function.
func (f *FaultFS) SetFail(fn func(op Op, name string) error) {
	f.mu.Lock()
	f.Fail = fn
	f.mu.Unlock()
}

// SetUsage sets the disk usage figures reported.
func (f *FaultFS) SetUsage(total, free int64) {
	f.mu.Lock()
	f.Total, f.Free = total, free
	f.mu.Unlock()
}

// Count is how many times op was attempted.
func (f *FaultFS) Count(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Calls[op]
}

func (f *FaultFS) check(op Op, name string) error {
	f.mu.Lock()
	if f.Calls == nil {
		f.Calls = map[Op]int{}
	}
	f.Calls[op]++
	fail := f.Fail
	f.mu.Unlock()
	if fail == nil {
		return nil
	}
	if err := fail(op, filepath.Base(name)); err != nil {
		return &fs.PathError{Op: string(op), Path: name, Err: err}
	}
	return nil
}

func (f *FaultFS) base() footage.FS {
	if f.Base == nil {
		return footage.OSFS{}
	}
	return f.Base
}

// OpenFile implements footage.FS.
func (f *FaultFS) OpenFile(name string, flag int, perm fs.FileMode) (footage.File, error) {
	op := OpOpen
	if flag&syscall.O_CREAT != 0 {
		op = OpCreate
	}
	if err := f.check(op, name); err != nil {
		return nil, err
	}
	file, err := f.base().OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	ff := &faultFile{File: file, fs: f, name: name}
	f.mu.Lock()
	if f.open == nil {
		f.open = map[*faultFile]bool{}
	}
	f.open[ff] = true
	f.mu.Unlock()
	return ff, nil
}

// Rename implements footage.FS.
func (f *FaultFS) Rename(oldname, newname string) error {
	if err := f.check(OpRename, newname); err != nil {
		return err
	}
	if err := f.base().Rename(oldname, newname); err != nil {
		return err
	}
	// Open files follow their name, as the file system's do.
	f.mu.Lock()
	for ff := range f.open {
		if ff.name == oldname {
			ff.name = newname
		}
	}
	f.mu.Unlock()
	return nil
}

// Remove implements footage.FS.
func (f *FaultFS) Remove(name string) error {
	if err := f.check(OpRemove, name); err != nil {
		return err
	}
	return f.base().Remove(name)
}

// ReadDir implements footage.FS.
func (f *FaultFS) ReadDir(dir string) ([]string, error) { return f.base().ReadDir(dir) }

// MkdirAll implements footage.FS.
func (f *FaultFS) MkdirAll(dir string, perm fs.FileMode) error { return f.base().MkdirAll(dir, perm) }

// SyncDir implements footage.FS.
func (f *FaultFS) SyncDir(dir string) error {
	if err := f.check(OpSyncDir, dir); err != nil {
		return err
	}
	return f.base().SyncDir(dir)
}

// DiskUsage implements footage.FS.
func (f *FaultFS) DiskUsage(dir string) (int64, int64, error) {
	f.mu.Lock()
	total, free := f.Total, f.Free
	f.mu.Unlock()
	if total > 0 {
		return total, free, nil
	}
	return f.base().DiskUsage(dir)
}

// Lock implements footage.FS.
func (f *FaultFS) Lock(name string) (io.Closer, error) { return f.base().Lock(name) }

type faultFile struct {
	footage.File
	fs   *FaultFS
	name string // guarded by fs.mu
}

func (ff *faultFile) path() string {
	ff.fs.mu.Lock()
	defer ff.fs.mu.Unlock()
	return ff.name
}

func (ff *faultFile) Close() error {
	ff.fs.mu.Lock()
	delete(ff.fs.open, ff)
	ff.fs.mu.Unlock()
	return ff.File.Close()
}

func (ff *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := ff.fs.check(OpWrite, ff.path()); err != nil {
		ff.fs.mu.Lock()
		short := ff.fs.ShortWrite
		ff.fs.mu.Unlock()
		if short && len(p) > 1 {
			n, _ := ff.File.WriteAt(p[:len(p)/2], off)
			return n, err
		}
		return 0, err
	}
	return ff.File.WriteAt(p, off)
}

func (ff *faultFile) Sync() error {
	if err := ff.fs.check(OpSync, ff.path()); err != nil {
		return err
	}
	return ff.File.Sync()
}

func (ff *faultFile) Truncate(size int64) error {
	if err := ff.fs.check(OpTruncate, ff.path()); err != nil {
		return err
	}
	return ff.File.Truncate(size)
}

// NoSyncFS is the real file system with syncs turned into no-ops: for
// building large stores in benchmarks, never for testing durability.
type NoSyncFS struct{ footage.OSFS }

// OpenFile implements footage.FS.
func (n NoSyncFS) OpenFile(name string, flag int, perm fs.FileMode) (footage.File, error) {
	f, err := n.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

// SyncDir implements footage.FS.
func (NoSyncFS) SyncDir(string) error { return nil }

type noSyncFile struct{ footage.File }

func (noSyncFile) Sync() error { return nil }

// Signer is an in-memory Ed25519 key standing in for the unit's evidence
// key (agent/identity.Key) in tests.
type Signer struct{ priv ed25519.PrivateKey }

var _ footage.Signer = (*Signer)(nil)

// NewSigner makes a key from a one-byte seed: the same seed gives the same
// key.
func NewSigner(seed byte) *Signer {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return &Signer{ed25519.NewKeyFromSeed(s)}
}

// Sign implements footage.Signer.
func (s *Signer) Sign(msg []byte) []byte { return ed25519.Sign(s.priv, msg) }

// PublicKey implements footage.Signer.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }
