package netboot

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/recipes"
)

const testKernel = "6.1.0-50-amd64"

func generate(t *testing.T, recipe string, edit func(*recipes.Recipe)) *Tree {
	t.Helper()
	r := load(t, recipe)
	if edit != nil {
		edit(r)
	}
	image, host := fakeRoots(t, testKernel)
	tree, err := Generate(Options{Recipe: r, ImageRoot: image, Kernel: testKernel, HostRoot: host})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// listTree is every path below root, relative, sorted.
func listTree(root string) []string {
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if rel, _ := filepath.Rel(root, p); err == nil && rel != "." {
			out = append(out, rel)
		}
		return err
	})
	return out
}

func tempFiles(paths []string) []string {
	var out []string
	for _, p := range paths {
		if strings.Contains(filepath.Base(p), ".krgimage-tmp-") {
			out = append(out, p)
		}
	}
	return out
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Each shipped recipe's tree installs into an empty server (both DHCP
// flavours' paths are declared), and the server then has exactly it.
func TestInstallShipped(t *testing.T) {
	for name, recipe := range goldenRecipes {
		t.Run(name, func(t *testing.T) {
			tree := generate(t, recipe, nil)
			server := t.TempDir()
			rep, err := tree.Install(t.Context(), server)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Installed) != len(tree.Files) || len(rep.Backups()) != 0 {
				t.Errorf("installed %d of %d files, backups %v", len(rep.Installed), len(tree.Files), rep.Backups())
			}
			if n, err := tree.Diff(server, &bytes.Buffer{}); n != 0 || err != nil {
				t.Errorf("after install %d files differ (%v)", n, err)
			}
			for _, p := range tree.Paths() {
				fi, err := os.Lstat(filepath.Join(server, p))
				if err != nil || fi.Mode() != tree.Files[p].Mode {
					t.Errorf("%s: %v %v, want mode %v", p, fi.Mode(), err, tree.Files[p].Mode)
				}
			}
		})
	}
}

// A symlink anywhere on the way to a file, or the file itself, is refused
// with its name, and nothing is written where it points.
func TestInstallRefusesSymlinks(t *testing.T) {
	for _, tt := range []struct {
		name, link string
		dir        bool
	}{
		{"parent directory", "etc/dhcp", true},
		{"top directory", "etc", true},
		{"TFTP root", "srv/tftp", true},
		{"directory inside the TFTP tree", "srv/tftp/pxelinux.cfg", true},
		{"target file", "etc/dhcp/dhcpd.conf", false},
		{"TFTP file", "srv/tftp/pxelinux.cfg/default", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tree := generate(t, "../recipes/bookworm-nfsroot.yaml", nil)
			server, elsewhere := t.TempDir(), t.TempDir()
			target := filepath.Join(elsewhere, "shadow")
			if tt.dir {
				target = elsewhere
			} else {
				writeFile(t, target, "root:secret\n", 0o600)
			}
			link := filepath.Join(server, tt.link)
			os.MkdirAll(filepath.Dir(link), 0o755)
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			_, err := tree.Install(t.Context(), server)
			if !errors.Is(err, ErrSymlink) {
				t.Fatalf("error %v, want ErrSymlink", err)
			}
			if !strings.Contains(err.Error(), link+" is a symlink to "+target) {
				t.Errorf("the error does not name the link: %v", err)
			}
			got := listTree(elsewhere)
			if want := []string{"shadow"}; tt.dir && len(got) != 0 || !tt.dir && !slices.Equal(got, want) {
				t.Errorf("written where the link points: %v", got)
			}
			if !tt.dir && readFile(t, target) != "root:secret\n" {
				t.Errorf("the link's target changed: %q", readFile(t, target))
			}
			if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the link was replaced: %v %v", fi, err)
			}
			if tmp := tempFiles(listTree(server)); len(tmp) > 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}
}

// A replaced file's backup has its content, mode and owner; a later
// install never writes over an earlier backup, nor through a symlink
// planted under a backup's name; an unchanged file gets none.
func TestInstallBackups(t *testing.T) {
	testenv.RequireRoot(t, "chown to another user")
	tree := generate(t, "../recipes/bookworm-nfsroot.yaml", nil)
	server := t.TempDir()
	conf := filepath.Join(server, "etc/dhcp/dhcpd.conf")
	writeFile(t, conf, "# the admin's config\n", 0o640|os.ModeSetgid)
	if err := os.Chown(conf, 65534, 65533); err != nil {
		t.Fatal(err)
	}
	rep, err := tree.Install(t.Context(), server)
	if err != nil {
		t.Fatal(err)
	}
	bak := conf + BackupSuffix
	if got := rep.Backups(); !slices.Equal(got, []string{bak}) {
		t.Fatalf("backups %v, want %s", got, bak)
	}
	checkFile(t, bak, "# the admin's config\n", 0o640|os.ModeSetgid, 65534, 65533)
	checkFile(t, conf, string(tree.Files["etc/dhcp/dhcpd.conf"].Data), 0o644, 0, 0)

	// Unchanged: no backup, nothing rewritten.
	rep, err = tree.Install(t.Context(), server)
	if err != nil || len(rep.Installed) != 0 || len(rep.Unchanged) != len(tree.Files) {
		t.Fatalf("second install: %+v, %v", rep, err)
	}

	// Changed again: the next free name, the first backup kept; a
	// symlink squatting on a name is passed over, not written through.
	elsewhere := filepath.Join(t.TempDir(), "victim")
	writeFile(t, elsewhere, "untouched\n", 0o644)
	writeFile(t, conf+BackupSuffix+".1", "an older backup\n", 0o600)
	if err := os.Symlink(elsewhere, conf+BackupSuffix+".2"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, conf, "# edited again\n", 0o600)
	rep, err = tree.Install(t.Context(), server)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Backups(); !slices.Equal(got, []string{conf + BackupSuffix + ".3"}) {
		t.Fatalf("backups %v", got)
	}
	checkFile(t, conf+BackupSuffix+".3", "# edited again\n", 0o600, 0, 0)
	checkFile(t, bak, "# the admin's config\n", 0o640|os.ModeSetgid, 65534, 65533)
	checkFile(t, conf+BackupSuffix+".1", "an older backup\n", 0o600, 0, 0)
	checkFile(t, elsewhere, "untouched\n", 0o644, 0, 0)
	if len(rep.Installed) != 1 || rep.Installed[0].Path != conf {
		t.Errorf("installed %+v, want only %s", rep.Installed, conf)
	}
}

func checkFile(t *testing.T, p, content string, mode os.FileMode, uid, gid uint32) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode() != mode || st.Uid != uid || st.Gid != gid {
		t.Errorf("%s: mode %v owner %d:%d, want %v %d:%d", p, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
	}
	if got := readFile(t, p); got != content {
		t.Errorf("%s = %q, want %q", p, got, content)
	}
}

// A tftp.root that is a system directory is refused at run time too, as
// is any path the tree does not declare: an unvalidated recipe, or a tree
// changed by its caller, cannot aim the install at the host's files.
func TestInstallRefusesUnsafeTrees(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*recipes.Recipe)
		add  string
		want error
	}{
		{"tftp.root /", func(r *recipes.Recipe) { r.Netboot.TFTP.Root = "/" }, "", recipes.ErrUnsafeTFTPRoot},
		{"tftp.root /etc", func(r *recipes.Recipe) { r.Netboot.TFTP.Root = "/etc" }, "", recipes.ErrUnsafeTFTPRoot},
		{"tftp.root /boot/", func(r *recipes.Recipe) { r.Netboot.TFTP.Root = "/boot/" }, "", recipes.ErrUnsafeTFTPRoot},
		{"empty tftp.root", func(r *recipes.Recipe) { r.Netboot.TFTP.Root = "" }, "", recipes.ErrUnsafeTFTPRoot},
		{"relative tftp.root", func(r *recipes.Recipe) { r.Netboot.TFTP.Root = "../../boot" }, "", recipes.ErrUnsafeTFTPRoot},
		{"undeclared file", nil, "etc/shadow", ErrUndeclared},
		{"dot-dot in a path", nil, "srv/tftp/../../boot/vmlinuz", ErrUndeclared},
		{"absolute path", nil, "/srv/tftp/x", ErrUndeclared},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tree := generate(t, "../recipes/bookworm-nfsroot.yaml", tt.edit)
			if tt.add != "" {
				tree.Files[tt.add] = File{Data: []byte("x"), Mode: 0o644}
			}
			server := t.TempDir()
			rep, err := tree.Install(t.Context(), server)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if got := listTree(server); len(got) != 0 || len(rep.Installed) != 0 {
				t.Errorf("written: %v", got)
			}
		})
	}
}

// Ctrl-C between files stops the install there.
func TestInstallCancelled(t *testing.T) {
	tree := generate(t, "../recipes/bookworm-nfsroot.yaml", nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	server := t.TempDir()
	if _, err := tree.Install(ctx, server); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
	if got := listTree(server); len(got) != 0 {
		t.Errorf("written: %v", got)
	}
}

// A write that fails halfway (the disk full) leaves the file as it was
// and no temporary file: the server is a small tmpfs, mounted in a mount
// namespace of this test's own so that it cannot outlive the test.
func TestInstallFullDisk(t *testing.T) {
	testenv.RequireRoot(t, "mounts a tmpfs")
	tree := generate(t, "../recipes/bookworm-nfsroot.yaml", nil)
	initrd := "srv/tftp/boot/initrd.img-" + testKernel
	tree.Files[initrd] = File{Data: bytes.Repeat([]byte("initrd"), 1<<18), Mode: 0o644}
	server := t.TempDir()
	type result struct {
		rep           *InstallReport
		err, setupErr error
		before, after []string
		conf          string
	}
	done := make(chan result)
	go func() {
		// Never unlocked: the thread, and its namespace, end with the
		// goroutine.
		runtime.LockOSThread()
		var res result
		defer func() { done <- res }()
		if res.setupErr = privateTmpfs(server, "size=64k"); res.setupErr != nil {
			return
		}
		conf := filepath.Join(server, "srv/tftp", "boot")
		os.MkdirAll(conf, 0o755)
		if res.setupErr = os.WriteFile(filepath.Join(conf, filepath.Base(initrd)), []byte("old initrd"), 0o644); res.setupErr != nil {
			return
		}
		res.before = listTree(server)
		res.rep, res.err = tree.Install(context.Background(), server)
		res.after = listTree(server)
		b, _ := os.ReadFile(filepath.Join(server, initrd))
		res.conf = string(b)
	}()
	res := <-done
	if res.setupErr != nil {
		t.Fatal(res.setupErr)
	}
	if !errors.Is(res.err, unix.ENOSPC) {
		t.Fatalf("error %v, want ENOSPC", res.err)
	}
	if tmp := tempFiles(res.after); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	if res.conf != "old initrd" {
		t.Errorf("%s = %.20q..., want the old content", initrd, res.conf)
	}
	// The files before it are installed; the initrd's backup, of a file
	// that was not replaced, is gone again.
	if len(res.rep.Installed) == 0 || len(res.rep.Backups()) != 0 {
		t.Errorf("installed %+v", res.rep.Installed)
	}
	for _, p := range res.after {
		if strings.Contains(p, BackupSuffix) {
			t.Errorf("backup left of a file not replaced: %s", p)
		}
	}
}

// privateTmpfs mounts a tmpfs on dir in a new mount namespace of the
// calling thread, which must be locked to its goroutine.
func privateTmpfs(dir, opts string) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return err
	}
	return unix.Mount("tmpfs", dir, "tmpfs", 0, opts)
}
