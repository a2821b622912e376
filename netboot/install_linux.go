package netboot

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// installRoot is the server's root, open: every path below it is walked
// from this descriptor, one name at a time with O_NOFOLLOW, so no
// component can be a symlink, wherever it would point. The names come from
// checkInstall (fs.ValidPath: no "..", no "."), so this walk resolves what
// openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS would, on every kernel,
// and can create the missing directories on the way.
type installRoot struct {
	fd   int
	path string
}

func openInstallRoot(root string) (*installRoot, error) {
	// The root itself is the caller's to choose, symlink or not.
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	return &installRoot{fd: fd, path: root}, nil
}

func (r *installRoot) close() { unix.Close(r.fd) }

// install puts data at rel with mode, backing up a file with other content
// first.
func (r *installRoot) install(rel string, data []byte, mode os.FileMode) (installResult, error) {
	var res installResult
	dir, base := path.Dir(rel), path.Base(rel)
	dirfd, err := r.openDir(dir)
	if err != nil {
		return res, err
	}
	defer unix.Close(dirfd)
	old, st, err := r.readOld(dirfd, base, rel)
	if err != nil {
		return res, err
	}
	if st != nil && bytes.Equal(old, data) {
		return res, nil
	}
	if st != nil {
		if res.backup, err = r.backup(dirfd, base, rel, old, st); err != nil {
			return res, err
		}
	}
	renamed, err := r.replace(dirfd, base, rel, data, mode)
	if !renamed && res.backup != "" {
		// The file is as it was: a backup of it would only mislead.
		unix.Unlinkat(dirfd, res.backup, 0)
		res.backup = ""
	}
	res.changed = renamed
	return res, err
}

// openDir opens the directory rel, creating what is missing (0755).
func (r *installRoot) openDir(rel string) (int, error) {
	fd, err := unix.Openat(r.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil || rel == "." {
		return fd, err
	}
	done := ""
	for _, name := range strings.Split(rel, "/") {
		done = path.Join(done, name)
		if err := unix.Mkdirat(fd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(fd)
			return -1, &os.PathError{Op: "mkdir", Path: hostPath(r.path, done), Err: err}
		}
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			err = r.refusal(fd, name, done, err)
		}
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

// refusal explains why name (rel below the root) in dirfd could not be
// opened: a symlink gets ErrSymlink and where it points.
func (r *installRoot) refusal(dirfd int, name, rel string, err error) error {
	var st unix.Stat_t
	if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		buf := make([]byte, 4096)
		n, _ := unix.Readlinkat(dirfd, name, buf)
		return fmt.Errorf("%s is a symlink to %s: %w; nothing was written there", hostPath(r.path, rel), buf[:max(n, 0)], ErrSymlink)
	}
	return &os.PathError{Op: "open", Path: hostPath(r.path, rel), Err: err}
}

// readOld reads the file the new one replaces, and its status: nil when
// there is none.
func (r *installRoot) readOld(dirfd int, base, rel string) ([]byte, *unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, nil, nil
	case err != nil:
		return nil, nil, &os.PathError{Op: "stat", Path: hostPath(r.path, rel), Err: err}
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return nil, nil, r.refusal(dirfd, base, rel, unix.ELOOP)
	}
	// O_NONBLOCK: a fifo put there since cannot hang the read.
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, r.refusal(dirfd, base, rel, err)
	}
	f := os.NewFile(uintptr(fd), hostPath(r.path, rel))
	defer f.Close()
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, nil, &os.PathError{Op: "stat", Path: f.Name(), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, nil, fmt.Errorf("%s is not a regular file; nothing was written there", f.Name())
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, err
	}
	return data, &st, nil
}

// backup copies the replaced file, with its mode and owner, to the first
// free backup name: O_EXCL, so an earlier backup or a symlink planted
// under the name is never written through.
func (r *installRoot) backup(dirfd int, base, rel string, data []byte, st *unix.Stat_t) (string, error) {
	for i := range maxBackups {
		name := backupName(base, i)
		f, err := createExcl(dirfd, name, hostPath(r.path, path.Join(path.Dir(rel), name)))
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := fill(f, data, int(st.Uid), int(st.Gid), st.Mode&0o7777); err != nil {
			unix.Unlinkat(dirfd, name, 0)
			return "", fmt.Errorf("backing up: %w", err)
		}
		return name, nil
	}
	return "", fmt.Errorf("%s has %d backups already (%s...): remove the old ones", hostPath(r.path, rel), maxBackups, backupName(base, 0))
}

// replace writes data to a temporary file next to base and renames it over
// base: readers, and a Ctrl-C or a full disk, see the old file or the new
// one. It reports whether the rename happened.
func (r *installRoot) replace(dirfd int, base, rel string, data []byte, mode os.FileMode) (bool, error) {
	var tmp string
	var f *os.File
	for {
		suffix := make([]byte, 6)
		rand.Read(suffix)
		tmp = tempPrefix(base) + hex.EncodeToString(suffix)
		var err error
		f, err = createExcl(dirfd, tmp, hostPath(r.path, path.Join(path.Dir(rel), tmp)))
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) {
			return false, err
		}
	}
	if err := fill(f, data, -1, -1, uint32(mode.Perm())); err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return false, err
	}
	// renameat replaces base itself, never what a symlink put there since
	// would point to.
	if err := unix.Renameat(dirfd, tmp, dirfd, base); err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return false, &os.LinkError{Op: "rename", Old: tmp, New: hostPath(r.path, rel), Err: err}
	}
	if err := unix.Fsync(dirfd); err != nil {
		return true, &os.PathError{Op: "fsync", Path: hostPath(r.path, path.Dir(rel)), Err: err}
	}
	return true, nil
}

// createExcl creates name in dirfd, which must not exist, not even as a
// symlink; readable by root only until fill sets its mode.
func createExcl(dirfd int, name, full string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, err
		}
		return nil, &os.PathError{Op: "create", Path: full, Err: err}
	}
	return os.NewFile(uintptr(fd), full), nil
}

// fill writes data to f, gives it an owner (uid -1: the creator) and mode,
// in that order since chown clears set-id bits, syncs and closes it.
func fill(f *os.File, data []byte, uid, gid int, mode uint32) error {
	err := func() error {
		if _, err := f.Write(data); err != nil {
			return err
		}
		if uid >= 0 {
			if err := unix.Fchown(int(f.Fd()), uid, gid); err != nil {
				return &os.PathError{Op: "chown", Path: f.Name(), Err: err}
			}
		}
		if err := unix.Fchmod(int(f.Fd()), mode); err != nil {
			return &os.PathError{Op: "chmod", Path: f.Name(), Err: err}
		}
		return f.Sync()
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
