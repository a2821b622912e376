package bootstrap

import (
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// SystemPrivileged makes the real calls; it needs root.
type SystemPrivileged struct{}

// Lchown sets a file's owner without following a final symlink.
func (SystemPrivileged) Lchown(root *os.Root, name string, uid, gid int) error {
	return root.Lchown(name, uid, gid)
}

// Mknod creates the node relative to its parent, opened through root, so
// that no link in the target can redirect it onto the host.
func (SystemPrivileged) Mknod(root *os.Root, name string, mode fs.FileMode, major, minor uint32) error {
	dir, err := root.Open(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer dir.Close()
	t := uint32(unix.S_IFCHR)
	switch {
	case mode&fs.ModeNamedPipe != 0:
		t = unix.S_IFIFO
	case mode&fs.ModeCharDevice == 0:
		t = unix.S_IFBLK
	}
	err = unix.Mknodat(int(dir.Fd()), filepath.Base(name), t|uint32(mode.Perm()), int(unix.Mkdev(major, minor)))
	if err != nil {
		return &fs.PathError{Op: "mknod", Path: name, Err: err}
	}
	return nil
}

// Setxattr sets an attribute on an open file.
func (SystemPrivileged) Setxattr(f *os.File, attr string, value []byte) error {
	return unix.Fsetxattr(int(f.Fd()), attr, value, 0)
}
