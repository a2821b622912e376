package cachedir

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// ownerOf is the uid that owns the file fi describes.
func ownerOf(fi fs.FileInfo) (int, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("%s: no owner in its status", fi.Name())
	}
	return int(st.Uid), nil
}

// openRecord opens a ledger record, never through a symbolic link nor
// blocking on a FIFO put in its place.
func openRecord(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}
