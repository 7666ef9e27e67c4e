package footage

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// FS is the part of the file system the store uses. The store writes only
// through it, so tests inject full disks, failed syncs and failed renames
// (footagetest.FaultFS) and benchmarks can build large stores quickly. It
// is wider than our usual interfaces because it is the store's whole view
// of the disk; each method is the plain system call.
type FS interface {
	// OpenFile opens a file as os.OpenFile does.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	Rename(oldname, newname string) error
	Remove(name string) error
	// ReadDir returns the names in a directory.
	ReadDir(dir string) ([]string, error)
	MkdirAll(dir string, perm fs.FileMode) error
	// SyncDir makes the directory's entries (creations, renames,
	// removals) durable.
	SyncDir(dir string) error
	// DiskUsage reports the size of the file system holding dir and the
	// bytes free for an unprivileged writer.
	DiskUsage(dir string) (total, free int64, err error)
	// Lock takes an exclusive advisory lock on the file, without waiting.
	Lock(name string) (io.Closer, error)
}

// File is an open file. Writes are positional so that a truncation after a
// failed write never leaves a hole.
type File interface {
	io.ReaderAt
	io.WriterAt
	// Sync makes written data durable (fdatasync where there is one).
	Sync() error
	Truncate(size int64) error
	Size() (int64, error)
	Close() error
}

// OSFS is the real file system.
type OSFS struct{}

var _ FS = OSFS{}

// OpenFile implements FS.
func (OSFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Rename implements FS.
func (OSFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// ReadDir implements FS.
func (OSFS) ReadDir(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// MkdirAll implements FS.
func (OSFS) MkdirAll(dir string, perm fs.FileMode) error { return os.MkdirAll(dir, perm) }

// SyncDir implements FS.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some file systems cannot sync a directory; their entries are then
	// as durable as they will get.
	if errors.Is(err, syscall.EINVAL) {
		err = nil
	}
	return err
}

// DiskUsage implements FS.
func (OSFS) DiskUsage(dir string) (int64, int64, error) { return diskUsage(dir) }

// Lock implements FS.
func (OSFS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := lockFileNB(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

type osFile struct{ f *os.File }

func (o osFile) ReadAt(p []byte, off int64) (int, error)  { return o.f.ReadAt(p, off) }
func (o osFile) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }
func (o osFile) Sync() error                              { return datasync(o.f) }
func (o osFile) Truncate(size int64) error                { return o.f.Truncate(size) }
func (o osFile) Close() error                             { return o.f.Close() }
func (o osFile) Size() (int64, error) {
	st, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// IsDiskFull reports whether err means the disk (or the writer's quota) is
// full: the store evicts and retries rather than giving up.
func IsDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func join(dir, name string) string { return filepath.Join(dir, name) }
