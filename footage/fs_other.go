//go:build !linux

package footage

import (
	"errors"
	"os"
)

// Units run Linux; elsewhere (a developer's laptop) the store works with
// fsync and without disk-space figures.

func datasync(f *os.File) error { return f.Sync() }

func diskUsage(dir string) (int64, int64, error) {
	return 0, 0, errors.New("footage: disk usage is only measured on Linux")
}

func lockFileNB(f *os.File) error { return nil }
