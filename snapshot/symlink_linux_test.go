package snapshot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
