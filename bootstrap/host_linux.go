package bootstrap

import (
	"syscall"

	"golang.org/x/sys/unix"
)

func machine() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Machine[:])
}

// privateMounts gives a command its own mount namespace. Go's runtime also
// marks / MS_PRIVATE|MS_REC in the child, so the /proc and /sys that
// debootstrap mounts in the target never appear on the host and vanish
// with the namespace, even if krgimage is killed.
func privateMounts() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
}
