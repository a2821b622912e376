package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// RemoveAll must never descend into a mounted filesystem.
func TestRemoveAllRefusesMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "root", "proc")
	os.MkdirAll(mnt, 0o755)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	canary := filepath.Join(mnt, "canary")
	os.WriteFile(canary, []byte("x"), 0o644)
	if err := RemoveAll(filepath.Join(dir, "root")); !errors.Is(err, ErrMounted) {
		t.Fatalf("RemoveAll() = %v, want ErrMounted", err)
	}
	if _, err := os.Stat(canary); err != nil {
		t.Error("RemoveAll deleted files inside a mount")
	}
	unix.Unmount(mnt, 0)
	if err := RemoveAll(filepath.Join(dir, "root")); err != nil {
		t.Errorf("RemoveAll() after unmount = %v", err)
	}
}
