package bootstrap

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/bootstrap/bootstraptest"
	"github.com/krgimage/krgimage/internal/testenv"
)

// extractFixture builds a package in the given compression and extracts
// it into a new root with x's settings.
func extractFixture(t *testing.T, d bootstraptest.Deb, merged bool) (string, *fakePriv, error) {
	t.Helper()
	b, err := d.Build()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), d.Name+".deb")
	os.WriteFile(path, b, 0o644)
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	priv := newFakePriv()
	x := &extractor{root: root, priv: priv, merged: merged, skip: skipUnused}
	if *viaDpkgDeb {
		// The host tool must take it; no fallback hides its failure.
		_, err := extractWithDpkgDeb(x, &debFile{Path: path, Name: d.Name})
		return dir, priv, err
	}
	return dir, priv, extractDeb(x, &debFile{Path: path, Name: d.Name})
}

// viaDpkgDeb has extractFixture use the host's dpkg-deb only; TestExtract
// runs both ways.
var viaDpkgDeb = new(bool)

func TestExtract(t *testing.T) {
	files := []bootstraptest.File{
		{Path: "/bin", Type: tar.TypeDir},
		{Path: "/bin/tool", Body: "tool", Mode: 0o755},
		{Path: "/usr/bin", Type: tar.TypeDir, Mode: 0o750},
		{Path: "/usr/bin/su", Body: "su", Mode: 0o4755},
		{Path: "/usr/bin/wall", Body: "wall", Mode: 0o2755, Gid: 5},
		{Path: "/usr/bin/ping", Body: "ping", Mode: 0o755, Xattrs: map[string]string{"security.capability": "\x01\x00\x00\x02"}},
		{Path: "/usr/bin/tool2", Type: tar.TypeLink, Link: "./bin/tool"},
		{Path: "/usr/bin/t", Type: tar.TypeSymlink, Link: "tool2"},
		{Path: "/sbin/init", Type: tar.TypeSymlink, Link: "/lib/systemd/systemd"},
		{Path: "/dev/null", Type: tar.TypeChar, Mode: 0o666, DevMajor: 1, DevMinor: 3},
		{Path: "/run/fifo", Type: tar.TypeFifo, Mode: 0o600},
		{Path: "/tmp", Type: tar.TypeDir, Mode: 0o1777},
		{Path: "/usr/share/doc/pkg/copyright", Body: "left to dpkg"},
		{Path: "/usr/share/man/man1/tool.1.gz", Body: "left to dpkg"},
		{Path: "/usr/share/docs-not-skipped", Body: "kept"},
	}
	hostDpkgDeb := dpkgDeb() != ""
	for _, via := range []string{"Go", "dpkg-deb"} {
		for _, comp := range []string{"gz", "xz", "zst", "bz2", "lzma", "none"} {
			for _, merged := range []bool{false, true} {
				name := via + " " + comp
				if merged {
					name += " merged"
				}
				t.Run(name, func(t *testing.T) {
					if via == "dpkg-deb" && !hostDpkgDeb {
						testenv.Missing(t, "no dpkg-deb (package dpkg) on this host")
					}
					*viaDpkgDeb = via == "dpkg-deb"
					defer func() { *viaDpkgDeb = false }()
					if via == "Go" {
						saved := dpkgDeb
						dpkgDeb = func() string { return "" }
						defer func() { dpkgDeb = saved }()
					}
					dir, priv, err := extractFixture(t, bootstraptest.Deb{Name: "pkg", Version: "1", Compression: comp, Files: files}, merged)
					if err != nil {
						t.Fatal(err)
					}
					bin, sbin := "bin", "sbin"
					if merged {
						bin, sbin = "usr/bin", "usr/sbin"
					}
					for path, mode := range map[string]fs.FileMode{
						bin + "/tool":                0o755,
						"usr/bin/su":                 0o755 | fs.ModeSetuid,
						"usr/bin/wall":               0o755 | fs.ModeSetgid,
						"usr/bin/tool2":              0o755,
						"usr/bin":                    0o750 | fs.ModeDir,
						"tmp":                        0o777 | fs.ModeDir | fs.ModeSticky,
						sbin + "/init":               0o777 | fs.ModeSymlink,
						"usr/bin/t":                  0o777 | fs.ModeSymlink,
						"usr/share/docs-not-skipped": 0o644,
					} {
						fi, err := os.Lstat(filepath.Join(dir, path))
						if err != nil {
							t.Errorf("/%s: %v", path, err)
							continue
						}
						if fi.Mode() != mode {
							t.Errorf("/%s has mode %v, want %v", path, fi.Mode(), mode)
						}
					}
					a, _ := os.Stat(filepath.Join(dir, bin, "tool"))
					b, _ := os.Stat(filepath.Join(dir, "usr/bin/tool2"))
					if !os.SameFile(a, b) {
						t.Error("the hard link is a copy")
					}
					for _, skipped := range []string{"usr/share/doc", "usr/share/man"} {
						if _, err := os.Lstat(filepath.Join(dir, skipped)); !errors.Is(err, os.ErrNotExist) {
							t.Errorf("/%s was extracted", skipped)
						}
					}
					if priv.owners["usr/bin/wall"] != [2]int{0, 5} {
						t.Errorf("owner of wall: %v", priv.owners["usr/bin/wall"])
					}
					if priv.nodes["dev/null"] != fs.ModeDevice|fs.ModeCharDevice|0o666 || priv.nodes["run/fifo"] != fs.ModeNamedPipe|0o600 {
						t.Errorf("device nodes: %v", priv.nodes)
					}
					if got := priv.xattrs[filepath.Join(dir, "usr/bin/ping")+" security.capability"]; got != "\x01\x00\x00\x02" {
						t.Errorf("xattrs: %q", priv.xattrs)
					}
					if merged {
						if _, err := os.Lstat(filepath.Join(dir, "bin")); !errors.Is(err, os.ErrNotExist) {
							t.Error("/bin exists before the aliases are linked")
						}
					}
				})
			}
		}
	}
}

func TestExtractMergedUsr(t *testing.T) {
	// A trixie base-files ships the alias links itself; with them and a
	// library in /lib64, linkUsrAliases leaves nothing unlinked.
	d := bootstraptest.Deb{Name: "base-files", Version: "13", Files: []bootstraptest.File{
		{Path: "/bin", Type: tar.TypeSymlink, Link: "usr/bin"},
		{Path: "/lib64", Type: tar.TypeDir},
		{Path: "/lib64/ld.so", Body: "ld"},
		{Path: "/usr/bin/sh", Body: "sh"},
	}}
	dir, _, err := extractFixture(t, d, true)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := os.OpenRoot(dir)
	defer root.Close()
	os.WriteFile(filepath.Join(dir, "usr/sbin"), nil, 0o644) // not a directory: no alias
	if err := linkUsrAliases(root); err != nil {
		t.Fatal(err)
	}
	for link, want := range map[string]string{"bin": "usr/bin", "lib64": "usr/lib64"} {
		if got, err := os.Readlink(filepath.Join(dir, link)); err != nil || got != want {
			t.Errorf("/%s -> %q, %v", link, got, err)
		}
	}
	for _, none := range []string{"sbin", "lib", "lib32"} {
		if _, err := os.Lstat(filepath.Join(dir, none)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("/%s was made", none)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "lib64/ld.so")); err != nil || string(b) != "ld" {
		t.Errorf("/lib64/ld.so through the alias: %q, %v", b, err)
	}
	// A real directory where an alias belongs is an error.
	os.Remove(filepath.Join(dir, "bin"))
	os.Mkdir(filepath.Join(dir, "bin"), 0o755)
	if err := linkUsrAliases(root); err == nil {
		t.Error("linkUsrAliases over a real /bin = nil error")
	}
}

func TestExtractUnsafe(t *testing.T) {
	tests := []struct {
		name    string
		entries []tar.Header
		want    error
	}{
		{"absolute", []tar.Header{{Name: "/etc/passwd", Typeflag: tar.TypeReg}}, ErrUnsafePath},
		{"dot dot", []tar.Header{{Name: "./usr/../../etc/passwd", Typeflag: tar.TypeReg}}, ErrUnsafePath},
		{"hard link out", []tar.Header{{Name: "./x", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}}, ErrUnsafePath},
		{"through a symlink", []tar.Header{{Name: "./evil", Typeflag: tar.TypeSymlink, Linkname: "/"}, {Name: "./evil/krgimage-escaped", Typeflag: tar.TypeReg}}, nil},
		{"odd type", []tar.Header{{Name: "./x", Typeflag: 'Z'}}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			for _, h := range tt.entries {
				h.Mode = 0o644
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
			}
			tw.Close()
			dir := t.TempDir()
			root, _ := os.OpenRoot(dir)
			defer root.Close()
			x := &extractor{root: root, priv: newFakePriv()}
			err := x.extract(tar.NewReader(&b), "evil")
			if err == nil {
				t.Fatal("extract() = nil error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("extract() = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "evil") {
				t.Errorf("error %q does not name the package", err)
			}
			if _, err := os.Stat("/krgimage-escaped"); err == nil {
				t.Fatal("a file was written outside the root")
			}
		})
	}
}
