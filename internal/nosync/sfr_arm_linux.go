//go:build linux && arm

package nosync

import "golang.org/x/sys/unix"

// 32-bit ARM names it arm_sync_file_range (arguments reordered).
const syncFileRange = unix.SYS_ARM_SYNC_FILE_RANGE
