package boottest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/krgimage/krgimage/internal/testenv"
)

// The scratch shadow must be on the image's filesystem: the boot test's
// directory, else the image's parent, else nowhere.
func TestScratchDirFollowsTheImagesFilesystem(t *testing.T) {
	testenv.RequireRoot(t, "mounts a tmpfs")
	tmpfs := func(dir string) {
		t.Helper()
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	}
	root, work := fakeImage(t)
	tmpfs(work)
	d, err := scratchDir(root, work)
	if err != nil || filepath.Dir(d) != filepath.Dir(root) {
		t.Errorf("work on another filesystem: scratch %q, %v; want it beside the root", d, err)
	}
	os.RemoveAll(d)
	// What a killed boot test left goes; a live one's stays.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(filepath.Dir(root), fmt.Sprintf(".login-%d-x", dead.Process.Pid))
	live := filepath.Join(filepath.Dir(root), fmt.Sprintf(".login-%d-y", os.Getpid()))
	for _, p := range []string{left, live} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	d, err = scratchDir(root, work)
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(d)
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("a dead boot test's scratch directory is still there (%v)", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live boot test's scratch directory went: %v", err)
	}
	tmpfs(root)
	if d, err := scratchDir(root, work); err == nil || !strings.Contains(err.Error(), "mount point") {
		t.Errorf("a root that is a mount point: scratch %q, %v", d, err)
	}
}
