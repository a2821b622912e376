package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildLibDir makes at dir a tree shaped like /usr/lib/x86_64-linux-gnu:
// symlinks inside it, above it (libclang-cpp.so.14 ->
// ../llvm-14/lib/libclang-cpp.so.14, which GNU tar archives and restores),
// absolute, dangling, with ".." after a name, and a hardlink to one.
func buildLibDir(t testing.TB, dir string) {
	t.Helper()
	p := func(rel string) string { return filepath.Join(dir, rel) }
	must(t, os.MkdirAll(p("perl5/5.36"), 0o755))
	must(t, os.WriteFile(p("libfoo.so.1.2.3"), []byte("\x7fELF libfoo"), 0o644))
	links := [][2]string{
		{"libfoo.so.1", "libfoo.so.1.2.3"},
		{"libfoo.so", "libfoo.so.1"},
		{"libclang-cpp.so.14", "../llvm-14/lib/libclang-cpp.so.14"},
		{"libLLVM-14.so", "/usr/lib/llvm-14/lib/libLLVM-14.so.1"},
		{"perl5/5.36/Config.pm", "../../../../share/perl/5.36/Config.pm"},
		{"far", strings.Repeat("../", 40) + "etc/shadow"},
		{"named", "perl5/../../llvm-14/lib"},
		{"dangling", "../nowhere/at/all"},
		{"dotdot", ".."},
		{"slash", "/"},
	}
	for _, l := range links {
		must(t, os.Symlink(l[1], p(l[0])))
	}
	// os.Link links the symlink itself (linkat without AT_SYMLINK_FOLLOW).
	must(t, os.Link(p("libclang-cpp.so.14"), p("perl5/hardlinked-symlink")))
	for i, l := range links {
		must(t, lutimes(p(l[0]), time.Unix(1700000000+int64(i), 123456789)))
	}
	for _, d := range []string{"perl5/5.36", "perl5", "."} {
		must(t, lutimes(p(d), time.Unix(1690000000, 987654321)))
	}
}

// TestSymlinksAreData: a tree whose symlinks point anywhere snapshots and
// restores exactly, with every compression and both ways of resolving
// paths, and GNU tar and bsdtar agree both ways; nothing those symlinks
// point at outside the restored root is touched.
func TestSymlinksAreData(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "usr", "lib", "x86_64-linux-gnu")
	must(t, os.MkdirAll(src, 0o755))
	buildLibDir(t, src)
	want := treeState(t, src)
	if want["perl5/hardlinked-symlink"].link != "../llvm-14/lib/libclang-cpp.so.14" {
		t.Fatalf("the fixture's hardlinked symlink: %v", want["perl5/hardlinked-symlink"])
	}
	// restored makes a directory for root with the files the symlinks
	// would reach if followed from the host next to it, and checks them
	// once check has run.
	restored := func(t *testing.T, extract func(root string), ignore func(p string, w, g fileState) bool) {
		base := filepath.Join(t.TempDir(), "lib")
		must(t, os.MkdirAll(filepath.Join(base, "llvm-14", "lib"), 0o755))
		must(t, os.WriteFile(filepath.Join(base, "llvm-14", "lib", "libclang-cpp.so.14"), []byte("host"), 0o644))
		before := plantCanaries(t, base)
		root := filepath.Join(base, "root")
		extract(root)
		checkCanaries(t, base, before, true)
		for _, d := range diffStates(want, treeState(t, root), ignore) {
			t.Error(d)
		}
	}
	for _, c := range []Compression{Zstd, Gzip, XZ, None} {
		archive := filepath.Join(dir, "lib.tar."+string(c))
		if _, err := WriteFile(t.Context(), src, archive, Options{Compression: c}); err != nil {
			t.Fatalf("WriteFile(%s) = %v", c, err)
		}
		if rep, err := Verify(t.Context(), archive, VerifyOptions{Against: src}); err != nil {
			t.Fatalf("Verify(against the source) = %v %v", err, rep.Differences)
		}
		for _, noOpenat2 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/noOpenat2=%v", c, noOpenat2), func(t *testing.T) {
				restored(t, func(root string) {
					if _, err := Restore(t.Context(), archive, root, RestoreOptions{NoSync: true, noOpenat2: noOpenat2}); err != nil {
						t.Fatal(err)
					}
				}, nil)
			})
		}
	}
	ours := filepath.Join(dir, "lib.tar."+string(Zstd))
	gnu := filepath.Join(dir, "gnu.tar")
	tarTool(t, "tar", "--format=posix", "--numeric-owner", "-cpf", gnu, "-C", src, ".")
	t.Run("gnu-tar-extracts-ours", func(t *testing.T) {
		restored(t, func(root string) {
			must(t, os.Mkdir(root, 0o700))
			tarTool(t, "tar", "--numeric-owner", "-xpf", ours, "-C", root)
		}, nil)
	})
	t.Run("bsdtar-extracts-ours", func(t *testing.T) {
		restored(t, func(root string) {
			must(t, os.Mkdir(root, 0o700))
			tarTool(t, "bsdtar", "--numeric-owner", "-xpf", ours, "-C", root)
		}, func(p string, w, g fileState) bool {
			// bsdtar sets the mtime of "./" before it fills it: see
			// TestInterop.
			g.mtime = w.mtime
			return p == "." && w.String() == g.String()
		})
	})
	t.Run("we-restore-gnu-tar", func(t *testing.T) {
		restored(t, func(root string) {
			if _, err := Restore(t.Context(), gnu, root, RestoreOptions{NoSync: true}); err != nil {
				t.Fatal(err)
			}
		}, nil)
		rep, err := Diff(t.Context(), gnu, ours, DiffOptions{Mtime: true})
		must(t, err)
		for _, d := range rep.Differences {
			t.Errorf("GNU tar's archive and ours differ: %s", d)
		}
	})
}

// TestScanStaysInTree: a live tree whose directory is swapped for a
// symlink to the host while the walk is inside it (verify --against, diff
// of a running root) is still listed from the directory the walk opened,
// never from where the symlink leads; a file reached through the swap is
// not the one the walk saw, so it is not hashed.
func TestScanStaysInTree(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	host := filepath.Join(base, "host")
	for _, d := range []string{filepath.Join(root, "a", "b"), filepath.Join(host, "b")} {
		must(t, os.MkdirAll(d, 0o755))
	}
	must(t, os.WriteFile(filepath.Join(root, "a", "b", "inside"), []byte("inside"), 0o644))
	must(t, os.WriteFile(filepath.Join(host, "b", "inside"), []byte("host's"), 0o644))
	must(t, os.WriteFile(filepath.Join(host, "b", "secret"), []byte("host's secret"), 0o600))
	swap := func(n *node) {
		if n.Path == "a/b" {
			must(t, os.Rename(filepath.Join(root, "a"), filepath.Join(base, "moved")))
			must(t, os.Symlink(host, filepath.Join(root, "a")))
		}
	}
	nodes, err := scan(t.Context(), root, scanOptions{threads: 1, live: true, emit: swap})
	must(t, err)
	var paths []string
	for _, n := range nodes {
		paths = append(paths, n.Path)
		if n.Path == "a/b/inside" && (!n.Changing || n.Digest == sha256hex("host's")) {
			t.Errorf("a/b/inside: changing %v, digest %s: the host's file was hashed", n.Changing, n.Digest)
		}
	}
	if got := strings.Join(paths, " "); got != ". a a/b a/b/inside" {
		t.Errorf("scanned %q, want the tree as it was when each directory was opened", got)
	}
}

// TestDiffStatusInRoot: diff reads a tree's dpkg status as the image
// sees it, its symlinks resolved in the tree's root, never from the host.
func TestDiffStatusInRoot(t *testing.T) {
	status := func(pkg string) []byte {
		return []byte("Package: " + pkg + "\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n")
	}
	base := t.TempDir()
	host := filepath.Join(base, "host", "dpkg")
	must(t, os.MkdirAll(host, 0o755))
	must(t, os.WriteFile(filepath.Join(host, "status"), status("host-package"), 0o644))
	for _, target := range []string{host, "../../.." + host, "../../../../../../.." + host} {
		t.Run(target, func(t *testing.T) {
			a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
			for _, r := range []string{a, b} {
				must(t, os.MkdirAll(filepath.Join(r, "var", "lib"), 0o755))
			}
			// In a, the link's target inside the root holds the image's
			// own status; in b there is nothing there.
			must(t, os.MkdirAll(filepath.Join(a, host), 0o755))
			must(t, os.WriteFile(filepath.Join(a, host, "status"), status("image-package"), 0o644))
			for _, r := range []string{a, b} {
				must(t, os.Symlink(target, filepath.Join(r, "var", "lib", "dpkg")))
			}
			rep, err := Diff(t.Context(), a, b, DiffOptions{})
			must(t, err)
			if len(rep.Packages) != 1 || rep.Packages[0] != (PackageChange{Name: "image-package", Old: "1"}) {
				t.Errorf("packages: %v, want image-package removed only", rep.Packages)
			}
		})
	}
}
