package snapshot

import (
	"errors"

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
