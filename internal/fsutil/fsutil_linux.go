package fsutil

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Lock is an exclusive flock on a lock file.
type Lock struct{ f *os.File }

// TryLock takes an exclusive lock on path without waiting. When another
// process holds it, the error wraps ErrLocked and names that process.
func TryLock(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil && len(b) > 0 {
			holder = " (pid " + strings.TrimSpace(string(b)) + ")"
		}
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s%s: %w", path, holder, ErrLocked)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f}, nil
}

// WaitLock waits for an exclusive lock on path.
func WaitLock(path string) (*Lock, error) { return waitFlock(path, unix.LOCK_EX) }

// WaitShared waits for a shared lock on path: any number of processes
// hold one at once, and none while someone holds the exclusive lock.
func WaitShared(path string) (*Lock, error) { return waitFlock(path, unix.LOCK_SH) }

func waitFlock(path string, how int) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock. The lock file stays: removing it would let a
// waiter lock a file no one else can see.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Exchange atomically swaps the directory entries a and b, which must be
// on the same filesystem.
func Exchange(a, b string) error {
	if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE); err != nil {
		return &os.LinkError{Op: "exchange", Old: a, New: b, Err: err}
	}
	return nil
}

// SyncFS writes out everything cached for the file system holding path:
// one call for a whole tree that was written without syncs.
func SyncFS(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: path, Err: err}
	}
	return nil
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Xattrs reads every extended attribute of path, not following a symlink,
// sorted by name. A file system without xattrs has none; one removed
// between listing and reading is left out.
func Xattrs(path string) ([]Xattr, error) {
	buf := make([]byte, 1024)
	var sz int
	for {
		var err error
		sz, err = unix.Llistxattr(path, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
		}
		break
	}
	var xs []Xattr
	val := make([]byte, 256)
	for name := range strings.SplitSeq(string(buf[:sz]), "\x00") {
		if name == "" {
			continue
		}
		for {
			n, err := unix.Lgetxattr(path, name, val)
			if errors.Is(err, unix.ERANGE) {
				val = make([]byte, 2*len(val)+65536)
				continue
			}
			if errors.Is(err, unix.ENODATA) {
				break
			}
			if err != nil {
				return nil, &os.PathError{Op: "lgetxattr " + name, Path: path, Err: err}
			}
			xs = append(xs, Xattr{Name: name, Value: slices.Clone(val[:n])})
			break
		}
	}
	slices.SortFunc(xs, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	return xs, nil
}

// chmodDir adds bits to the mode of the directory at path, refusing a
// symlink put in its place: chmod(2) would follow it.
func chmodDir(path string, bits uint32) error {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	// An O_PATH descriptor cannot be fchmod'ed; its /proc link can.
	proc := fmt.Sprintf("/proc/self/fd/%d", fd)
	if err := unix.Chmod(proc, st.Mode&0o7777|bits); err != nil {
		return &os.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}
