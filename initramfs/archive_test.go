package initramfs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/golden"

	"github.com/krgimage/krgimage/internal/testenv"
)

var buildTime = time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)

func sample(t *testing.T) *Archive {
	t.Helper()
	a := NewArchive()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.File("bin/busybox", []byte("#!busybox\n"), 0o755, time.Time{}))
	must(a.Symlink("bin/sh", "busybox"))
	must(a.File("etc/krgimage/modules", []byte("kernel/e1000.ko\n"), 0o644, buildTime.Add(time.Hour)))
	must(a.File("usr/lib/old", []byte("old"), 0o644, time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)))
	must(a.File("sbin/tool", []byte("shared data"), 0o4755, time.Time{}))
	must(a.Hardlink("bin/tool", "sbin/tool"))
	must(a.Hardlink("usr/bin/tool", "bin/tool"))
	must(a.Dir("tmp", 0o1777))
	must(a.File("init", []byte("#!/bin/sh\n"), 0o755, time.Time{}))
	return a
}

func written(t *testing.T, a *Archive, when time.Time) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := a.WriteTo(&b, when); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// GNU cpio reads our archive with the right types, modes, owners, links
// and times.
func TestArchiveWithGNUCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		testenv.Missing(t, "GNU cpio not installed (make deps installs it)")
	}
	data := written(t, sample(t), buildTime)
	cmd := exec.Command("cpio", "-itv", "--quiet", "--numeric-uid-gid")
	cmd.Stdin = bytes.NewReader(data)
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -itv: %v", err)
	}
	golden.Check(t, filepath.Join("testdata", "golden", "sample.cpio-itv"), out)

	// Extracted, the hard links share an inode and their data.
	dir := t.TempDir()
	cmd = exec.Command("cpio", "-idm", "--quiet", "--no-absolute-filenames")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v %s", err, out)
	}
	var inodes []uint64
	for _, p := range []string{"sbin/tool", "bin/tool", "usr/bin/tool"} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		inodes = append(inodes, fi.Sys().(*syscall.Stat_t).Ino)
		if b, _ := os.ReadFile(filepath.Join(dir, p)); string(b) != "shared data" {
			t.Errorf("%s = %q", p, b)
		}
	}
	if inodes[0] != inodes[1] || inodes[1] != inodes[2] {
		t.Errorf("hard links extracted as separate files: inodes %v", inodes)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "bin/sh")); l != "busybox" {
		t.Errorf("bin/sh -> %q", l)
	}
}

func TestArchiveReproducible(t *testing.T) {
	a, b := written(t, sample(t), buildTime), written(t, sample(t), buildTime)
	if !bytes.Equal(a, b) {
		t.Error("two writes of the same content differ")
	}
	if c := written(t, sample(t), buildTime.Add(time.Second)); bytes.Equal(a, c) {
		t.Error("the build time does not reach the archive")
	}
}

func TestArchiveRefusesClashes(t *testing.T) {
	a := NewArchive()
	a.File("bin/busybox", []byte("x"), 0o755, time.Time{})
	if err := a.File("bin/busybox/x", nil, 0o644, time.Time{}); err == nil {
		t.Error("a file under a file was accepted")
	}
	if err := a.File("bin", nil, 0o644, time.Time{}); err == nil {
		t.Error("a file replacing a directory was accepted")
	}
	if err := a.Hardlink("x", "missing"); err == nil {
		t.Error("a hard link to nothing was accepted")
	}
	if err := a.File("/../../etc/passwd", nil, 0o644, time.Time{}); err != nil || !a.Has("etc/passwd") {
		t.Errorf("a path with .. is not confined to the archive: %v", err)
	}
}

func TestCompressionsWithSystemTools(t *testing.T) {
	raw := written(t, sample(t), buildTime)
	tools := map[string][]string{
		"gzip": {"gzip", "-dc"},
		"xz":   {"xz", "-dc", "--format=xz"},
		"lzma": {"xz", "-dc", "--format=lzma"},
		"zstd": {"zstd", "-dc"},
	}
	for _, algo := range Compressions {
		t.Run(algo, func(t *testing.T) {
			var b bytes.Buffer
			c, err := compressor(&b, algo)
			if err != nil {
				t.Fatal(err)
			}
			c.Write(raw)
			c.Close()
			if algo == "none" {
				if !bytes.Equal(b.Bytes(), raw) {
					t.Error("none changed the bytes")
				}
				return
			}
			argv := tools[algo]
			if _, err := exec.LookPath(argv[0]); err != nil {
				testenv.Missing(t, "%s not installed (make deps installs it)", argv[0])
			}
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Stdin = bytes.NewReader(b.Bytes())
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v", strings.Join(argv, " "), err)
			}
			if !bytes.Equal(out, raw) {
				t.Error("decompressed archive differs")
			}
			if algo == "xz" {
				// Byte 7 of the stream header is the check type: 1 = CRC32,
				// the one the kernel's decoder takes.
				if got := b.Bytes()[7]; got != 1 {
					t.Errorf("xz check type %d, want CRC32 (1)", got)
				}
			}
			var again bytes.Buffer
			c2, _ := compressor(&again, algo)
			c2.Write(raw)
			c2.Close()
			if !bytes.Equal(b.Bytes(), again.Bytes()) {
				t.Error("compression is not deterministic")
			}
		})
	}
}

func TestSupported(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		version string
		want    []string
	}{
		{"kerrighed 2.6.30 without config", "", "2.6.30-krg3.0.0", []string{"gzip", "lzma", "none"}},
		{"2.6.38 without config", "", "2.6.38", []string{"gzip", "lzma", "none", "xz"}},
		{"5.8 without config", "", "5.8.0", []string{"gzip", "lzma", "none", "xz"}},
		{"5.9 without config", "", "5.9.1-custom", []string{"gzip", "lzma", "none", "xz", "zstd"}},
		{"2.4 without config", "", "2.4.37", []string{"gzip", "none"}},
		{"config with gzip only", "CONFIG_RD_GZIP=y\n# CONFIG_RD_XZ is not set\nCONFIG_RD_ZSTD=m\n", "6.1.0", []string{"gzip", "none"}},
		{"debian 6.1", "CONFIG_RD_GZIP=y\nCONFIG_RD_LZMA=y\nCONFIG_RD_XZ=y\nCONFIG_RD_ZSTD=y\n", "6.1.0-50-amd64", []string{"gzip", "lzma", "none", "xz", "zstd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg []byte
			if tt.config != "" {
				cfg = []byte(tt.config)
			}
			if got := Supported(cfg, tt.version); !slices.Equal(got, tt.want) {
				t.Errorf("Supported() = %v, want %v", got, tt.want)
			}
		})
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	err := CheckCompression(root, "2.6.30-krg3.0.0", "xz")
	if !errors.Is(err, ErrCompression) || !strings.Contains(err.Error(), "it can: gzip, lzma, none") {
		t.Errorf("CheckCompression(2.6.30, xz) = %v", err)
	}
	if err := CheckCompression(root, "2.6.30-krg3.0.0", "gzip"); err != nil {
		t.Errorf("CheckCompression(2.6.30, gzip) = %v", err)
	}
	os.WriteFile(filepath.Join(root, "boot/config-6.1.0"), []byte("CONFIG_RD_GZIP=y\n"), 0o644)
	if err := CheckCompression(root, "6.1.0", "zstd"); !errors.Is(err, ErrCompression) || !strings.Contains(err.Error(), "CONFIG_RD_ZSTD=y") {
		t.Errorf("CheckCompression(config without zstd) = %v", err)
	}
}
