//go:build !linux

package fsutil

import (
	"errors"
	"os"
)

// Lock is an exclusive lock on a lock file.
type Lock struct{}

// TryLock is only implemented on Linux.
func TryLock(string) (*Lock, error) { return nil, errors.ErrUnsupported }

// WaitLock is only implemented on Linux.
func WaitLock(string) (*Lock, error) { return nil, errors.ErrUnsupported }

// WaitShared is only implemented on Linux.
func WaitShared(string) (*Lock, error) { return nil, errors.ErrUnsupported }

// Unlock releases the lock.
func (l *Lock) Unlock() error { return nil }

// Exchange is only implemented on Linux.
func Exchange(a, b string) error { return errors.ErrUnsupported }

// SyncFS is only implemented on Linux.
func SyncFS(string) error { return errors.ErrUnsupported }

func chmodDir(path string, bits uint32) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return errors.New(path + ": not a directory")
	}
	return os.Chmod(path, fi.Mode().Perm()|os.FileMode(bits))
}
