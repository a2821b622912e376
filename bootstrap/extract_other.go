//go:build !linux

package bootstrap

import (
	"errors"
	"io/fs"
	"os"
)

// SystemPrivileged makes the real calls; off Linux only Lchown exists.
type SystemPrivileged struct{}

// Lchown sets a file's owner without following a final symlink.
func (SystemPrivileged) Lchown(root *os.Root, name string, uid, gid int) error {
	return root.Lchown(name, uid, gid)
}

// Mknod is not supported off Linux.
func (SystemPrivileged) Mknod(*os.Root, string, fs.FileMode, uint32, uint32) error {
	return errors.ErrUnsupported
}

// Setxattr is not supported off Linux.
func (SystemPrivileged) Setxattr(*os.File, string, []byte) error { return errors.ErrUnsupported }
