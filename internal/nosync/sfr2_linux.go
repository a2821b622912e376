//go:build linux && (ppc64 || ppc64le)

package nosync

import "golang.org/x/sys/unix"

// POWER only has sync_file_range2 (arguments reordered).
const syncFileRange = unix.SYS_SYNC_FILE_RANGE2
