//go:build !linux

package ota

import "errors"

func freeBytes(string) (uint64, error) {
	return 0, errors.New("free space is read only on Linux")
}
