//go:build linux && !(arm || ppc64 || ppc64le)

package nosync

import "golang.org/x/sys/unix"

const syncFileRange = unix.SYS_SYNC_FILE_RANGE
