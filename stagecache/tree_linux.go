package stagecache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/krgimage/krgimage/internal/fsutil"
)

// LinkTree makes dst, which must not exist, a copy of the tree at src in
// which every non-directory is a hard link to src's: instant, and exact
// (the linked inodes keep their owners, modes, xattrs and times; the
// directories are made anew with src's). Both trees then share their
// files: a write through one shows in the other, so it is only for a tree
// nobody will write, such as a finished image root that the next build
// keeps as it is. src and dst must be on one filesystem.
func LinkTree(ctx context.Context, src, dst string) (err error) {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%s: %w", dst, fs.ErrExist)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dst)
		}
	}()
	type dir struct {
		src, dst string
		st       unix.Stat_t
	}
	var dirs []dir
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if !d.IsDir() {
			return os.Link(p, target)
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: p, Err: err}
		}
		if err := os.Mkdir(target, 0o700); err != nil {
			return err
		}
		dirs = append(dirs, dir{p, target, st})
		return nil
	})
	if err != nil {
		return err
	}
	// Deepest first: a directory's times and default ACL are set once
	// nothing more is created in it.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := copyDirMeta(d.src, d.dst, &d.st); err != nil {
			return err
		}
	}
	return nil
}

// copyDirMeta gives dst src's owner, mode, xattrs and times, in the order
// that keeps setgid: owner before mode.
func copyDirMeta(src, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return &fs.PathError{Op: "lchown", Path: dst, Err: err}
	}
	if err := unix.Fchmodat(unix.AT_FDCWD, dst, st.Mode&0o7777, 0); err != nil {
		return &fs.PathError{Op: "chmod", Path: dst, Err: err}
	}
	xs, err := fsutil.Xattrs(src)
	if err != nil {
		return err
	}
	for _, x := range xs {
		if err := unix.Lsetxattr(dst, x.Name, x.Value, 0); err != nil {
			return &fs.PathError{Op: "setxattr " + x.Name, Path: dst, Err: err}
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimes", Path: dst, Err: err}
	}
	return nil
}

// TreeFingerprint computes the tree's Fingerprint.
func TreeFingerprint(ctx context.Context, root string) (Fingerprint, error) {
	h := sha256.New()
	var fp Fingerprint
	var buf [8 * 8]byte
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == root {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: p, Err: err}
		}
		rel := p[len(root):]
		binary.BigEndian.PutUint64(buf[0:], uint64(len(rel)))
		h.Write(buf[:8])
		h.Write([]byte(rel))
		for i, v := range []uint64{st.Ino, uint64(st.Mode), uint64(st.Uid)<<32 | uint64(st.Gid), uint64(st.Size),
			uint64(st.Mtim.Sec), uint64(st.Mtim.Nsec), uint64(st.Ctim.Sec), uint64(st.Ctim.Nsec)} {
			binary.BigEndian.PutUint64(buf[8*i:], v)
		}
		h.Write(buf[:])
		fp.Entries++
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			fp.Bytes += st.Size
		}
		return nil
	})
	if err != nil {
		return Fingerprint{}, err
	}
	fp.Digest = hex.EncodeToString(h.Sum(nil))
	return fp, nil
}
