package snapshot

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// A tree's paths are resolved in its root, as openat2(2)'s RESOLVE_IN_ROOT
// does: ".." at the root is the root, and an absolute symlink starts over
// from it, as it will once the image is booted. Nothing resolved that way
// can lead out of the tree, whatever its symlinks say.

// restoreResolve is how Restore opens the directories it writes into: in
// the root, without magic links, and through no symlink at all, which is
// restore's policy (see newMember) enforced by the kernel a second time.
// The names have no "..", so with RESOLVE_NO_SYMLINKS the walk of kernels
// before 5.6, one openat(O_NOFOLLOW) per component from the descriptor of
// the one before, resolves exactly the same names: that is the fallback.
const restoreResolve = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_SYMLINKS

// treeResolve is how a file of a tree is read for what the image sees
// there (its dpkg status): symlinks followed, but in the root.
const treeResolve = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// maxResolveRetries bounds the retries of an openat2 that a concurrent
// rename made fail with EAGAIN.
const maxResolveRetries = 64

// openat2 opens p below dirfd, retrying EAGAIN: RESOLVE_IN_ROOT returns it
// when a rename elsewhere may have raced the lookup of "..".
func openat2(dirfd int, p string, flags int, resolve uint64) (int, error) {
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolve}
	for range maxResolveRetries {
		fd, err := unix.Openat2(dirfd, p, how)
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}

// haveOpenat2 reports whether openat2(2) works on dirfd: kernels before
// 5.6 have no such call (ENOSYS), and seccomp filters older than it, such
// as Docker's before 20.10, refuse it (EPERM).
func haveOpenat2(dirfd int) bool {
	fd, err := openat2(dirfd, ".", unix.O_PATH|unix.O_DIRECTORY, restoreResolve)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// openTreeFile opens the file rel of the tree at root, resolved in the
// root: a live root's absolute symlinks name its own files, never the
// host's. Without openat2, os.Root refuses what would leave the root.
func openTreeFile(root, rel string) (*os.File, error) {
	dfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(dfd)
	if !haveOpenat2(dfd) {
		return openTreeFileRoot(root, rel)
	}
	fd, err := openat2(dfd, rel, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, treeResolve)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root + "/" + rel, Err: err}
	}
	f := os.NewFile(uintptr(fd), root+"/"+rel)
	// O_NONBLOCK so that a fifo in its place cannot hang the read.
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s: not a regular file", f.Name())
		}
		return nil, err
	}
	return f, nil
}
