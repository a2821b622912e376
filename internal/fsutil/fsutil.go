package fsutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/krgimage/krgimage/internal/mounts"
)

// ErrMounted is returned by RemoveAll when something is mounted below the
// tree: deleting through a bind mount of /dev or /proc would destroy the
// host.
var ErrMounted = errors.New("filesystems are still mounted")

// ErrLocked is returned by Lock when another process holds the lock.
var ErrLocked = errors.New("locked by another process")

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, synced and renamed into place, so readers see the old content
// or the new one, never a mix.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return WriteAtomic(path, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// WriteAtomic is WriteFileAtomic for content produced by fill. On any error
// the temporary file is removed and path is left as it was.
func WriteAtomic(path string, perm os.FileMode, fill func(*os.File) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		// The temporary name means nothing to the caller: blame the
		// directory.
		if pe, ok := errors.AsType[*os.PathError](err); ok {
			err = pe.Err
		}
		return fmt.Errorf("cannot create files in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir makes a rename in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// RemoveAll deletes path like os.RemoveAll, but first checks that nothing
// is mounted at or below it.
func RemoveAll(path string) error {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	under, err := mounts.Under(path)
	if err != nil {
		return fmt.Errorf("reading mount table: %w", err)
	}
	if len(under) > 0 {
		return fmt.Errorf("not removing %s: %w: %s", path, ErrMounted, strings.Join(under, ", "))
	}
	err = os.RemoveAll(path)
	if errors.Is(err, os.ErrPermission) {
		// A tree restored by a user other than root can hold directories
		// without write permission (a package's 0555 directory), which
		// their owner cannot empty.
		if werr := ownDirsWritable(path); werr == nil {
			err = os.RemoveAll(path)
		}
	}
	return err
}

// ownDirsWritable gives the owner write and search permission on every
// directory of the tree at path, without following symlinks.
func ownDirsWritable(path string) error {
	return filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil // best effort: RemoveAll reports what is left
		}
		// Before WalkDir reads the directory, which needs the permission.
		// One that cannot be changed (another owner's) is left to
		// RemoveAll's report; the others may still be.
		chmodDir(p, 0o700)
		return nil
	})
}

// ContextReader reads r until ctx is done, then fails: a long copy stops
// when the work is interrupted.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// RealPath is the absolute path p names, symlinks resolved.
func RealPath(p string) (string, error) {
	a, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(a)
}

// IsEmptyDir reports whether dir exists and has no entries. A missing dir
// counts as empty.
func IsEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}
