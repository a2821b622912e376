package pipeline

import (
	"context"
	"io/fs"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// clampTimes sets the access and modification times of every entry newer
// than epoch to epoch, links included, and returns how many it changed.
func clampTimes(ctx context.Context, root string, epoch time.Time) (int, error) {
	ts := unix.NsecToTimespec(epoch.UnixNano())
	limit := epoch.UnixNano()
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: p, Err: err}
		}
		if st.Mtim.Nano() <= limit {
			return nil
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &fs.PathError{Op: "utimes", Path: p, Err: err}
		}
		n++
		return nil
	})
	return n, err
}
