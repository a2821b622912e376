package stagecache

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krgimage/krgimage/snapshot"
)

// richTree makes a tree with what an image root has: nested directories
// with setgid and odd modes, owners (as root), xattrs, a symlink, a fifo,
// a hardlinked pair and a setuid file.
func richTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "var/mail"), 0o755))
	must(os.WriteFile(filepath.Join(root, "var/mail/box"), []byte("mail"), 0o660))
	must(os.WriteFile(filepath.Join(root, "su"), []byte("su"), 0o755))
	must(os.Link(filepath.Join(root, "su"), filepath.Join(root, "su-link")))
	must(os.Symlink("/proc/mounts", filepath.Join(root, "mtab")))
	must(unix.Mkfifo(filepath.Join(root, "fifo"), 0o600))
	must(unix.Setxattr(filepath.Join(root, "var"), "user.krgimage", []byte("dir"), 0))
	must(unix.Setxattr(filepath.Join(root, "su"), "user.krgimage", []byte("file"), 0))
	if os.Geteuid() == 0 {
		must(os.Lchown(filepath.Join(root, "var/mail"), 0, 8))
		must(os.Lchown(filepath.Join(root, "var/mail/box"), 1000, 8))
	}
	must(os.Chmod(filepath.Join(root, "var/mail"), 0o2775|os.ModeSetgid))
	must(unix.Chmod(filepath.Join(root, "var/mail"), 0o2775))
	must(unix.Chmod(filepath.Join(root, "su"), 0o4755))
	old := time.Unix(1_600_000_000, 123456789)
	for _, p := range []string{"var/mail", "var", "."} {
		must(os.Chtimes(filepath.Join(root, p), old, old))
	}
	return root
}

func TestLinkTree(t *testing.T) {
	src := richTree(t)
	dst := filepath.Join(t.TempDir(), "dst")
	if err := LinkTree(t.Context(), src, dst); err != nil {
		t.Fatal(err)
	}
	rep, err := snapshot.Diff(t.Context(), src, dst, snapshot.DiffOptions{Mtime: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rep.Differences {
		t.Errorf("the linked tree differs: %s", d)
	}
	var a, b unix.Stat_t
	unix.Lstat(filepath.Join(src, "var/mail/box"), &a)
	unix.Lstat(filepath.Join(dst, "var/mail/box"), &b)
	if a.Ino != b.Ino {
		t.Error("files were copied, not linked")
	}
	if err := LinkTree(t.Context(), src, dst); err == nil {
		t.Error("LinkTree wrote over an existing tree")
	}
}

func TestFingerprint(t *testing.T) {
	root := richTree(t)
	fp := func() Fingerprint {
		t.Helper()
		f, err := TreeFingerprint(t.Context(), root)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	first := fp()
	if first.Entries != 7 || first.Bytes != 2*2+4 {
		t.Errorf("fingerprint = %+v, want 7 entries, 8 bytes", first)
	}
	os.ReadFile(filepath.Join(root, "var/mail/box"))
	if fp() != first {
		t.Error("reading a file changed the fingerprint")
	}
	// Moving the tree changes only the root's own change time.
	moved := root + "-moved"
	if err := os.Rename(root, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, root); err != nil {
		t.Fatal(err)
	}
	if fp().Digest != first.Digest {
		t.Error("moving the tree changed its fingerprint")
	}
	box := filepath.Join(root, "var/mail/box")
	for _, tt := range []struct {
		name   string
		change func() error
	}{
		// Same size, mtime put back: only the change time tells.
		{"rewrite in place", func() error {
			var st syscall.Stat_t
			syscall.Stat(box, &st)
			if err := os.WriteFile(box, []byte("MAIL"), 0o660); err != nil {
				return err
			}
			mt := time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
			return os.Chtimes(box, mt, mt)
		}},
		{"chmod", func() error { return os.Chmod(box, 0o600) }},
		{"new file", func() error { return os.WriteFile(filepath.Join(root, "new"), nil, 0o644) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := fp()
			time.Sleep(10 * time.Millisecond)
			if err := tt.change(); err != nil {
				t.Fatal(err)
			}
			if fp().Digest == before.Digest {
				t.Errorf("%s left the fingerprint as it was", tt.name)
			}
		})
	}
}
