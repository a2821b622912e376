package fsutil

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krgimage/krgimage/internal/testenv"
)

// RemoveAll must never descend into a mounted filesystem.
func TestRemoveAllRefusesMounts(t *testing.T) {
	testenv.RequireRoot(t, "mounting")
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

// A user other than root must be able to remove a tree it owns whose
// directories deny writing. Root ignores permissions, so as root the test
// runs itself again as nobody.
func TestRemoveAllReadOnlyDirs(t *testing.T) {
	if p := os.Getenv("KRGIMAGE_TEST_REMOVE"); p != "" {
		if err := RemoveAll(p); err != nil {
			t.Fatal(err)
		}
		return
	}
	base, err := os.MkdirTemp("", "removeall-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	tree := filepath.Join(base, "tree")
	for _, d := range []string{"tree/ro/sub", "tree/none/deeper"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"tree/ro/file", "tree/ro/sub/file", "tree/none/deeper/file"} {
		if err := os.WriteFile(filepath.Join(base, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc", filepath.Join(tree, "ro", "link")); err != nil {
		t.Fatal(err)
	}
	for d, mode := range map[string]os.FileMode{"ro/sub": 0o555, "ro": 0o555, "none/deeper": 0o000, "none": 0o000} {
		if err := os.Chmod(filepath.Join(tree, d), mode); err != nil {
			t.Fatal(err)
		}
	}
	etc, err := os.Stat("/etc")
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if err := RemoveAll(tree); err != nil {
			t.Fatal(err)
		}
	} else {
		const nobody = 65534
		if err := os.Chmod(base, 0o755); err != nil {
			t.Fatal(err)
		}
		err := filepath.WalkDir(base, func(p string, _ os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, nobody, nobody)
		})
		if err != nil {
			t.Fatal(err)
		}
		self, err := os.ReadFile("/proc/self/exe")
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(base, "fsutil.test")
		if err := os.WriteFile(bin, self, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-test.run=^TestRemoveAllReadOnlyDirs$", "-test.count=1")
		cmd.Env = append(os.Environ(), "KRGIMAGE_TEST_REMOVE="+tree)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("RemoveAll as nobody: %v\n%s", err, out)
		}
	}
	if _, err := os.Lstat(tree); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tree left behind: %v", err)
	}
	if after, err := os.Stat("/etc"); err != nil || after.Mode() != etc.Mode() {
		t.Errorf("/etc changed through a symlink: %v %v", after.Mode(), err)
	}
}
