package kernel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/krgimage/krgimage/internal/run"
)

// Errors callers branch on.
var (
	// ErrNoKernel: the image has no kernel in /boot after installation.
	ErrNoKernel = errors.New("no kernel installed")
	// ErrAmbiguous: several kernels and no version to choose.
	ErrAmbiguous = errors.New("several kernels installed")
	// ErrNotInstalled: the version asked for is not in the image.
	ErrNotInstalled = errors.New("kernel version not installed")
	// ErrChecksum: a downloaded or given source does not match its sha256.
	ErrChecksum = errors.New("sha256 mismatch")
	// ErrSource: a source tarball or directory is missing or unreadable.
	ErrSource = errors.New("kernel source unavailable")
	// ErrTarget: a make target failed.
	ErrTarget = errors.New("build target failed")
)

// Versions lists the kernel versions installed in root: those with a
// /boot/vmlinuz-VERSION (or vmlinux-, as the seed's pxelinux line names
// it), sorted.
func Versions(root string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, "boot"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, e := range entries {
		for _, prefix := range []string{"vmlinuz-", "vmlinux-"} {
			if v, ok := strings.CutPrefix(e.Name(), prefix); ok && v != "" && !strings.HasSuffix(v, ".old") {
				seen[v] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out, nil
}

// Image returns the path of the kernel image for version inside root
// (relative to root, starting with /boot).
func Image(root, version string) (string, error) {
	for _, prefix := range []string{"vmlinuz-", "vmlinux-"} {
		p := filepath.Join("/boot", prefix+version)
		if fi, err := os.Stat(filepath.Join(root, p)); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no /boot/vmlinuz-%s", ErrNotInstalled, version)
}

// Resolve picks the kernel to use: want when given, else the only one.
func Resolve(root, want string) (string, error) {
	versions, err := Versions(root)
	if err != nil {
		return "", err
	}
	if want != "" {
		for _, v := range versions {
			if v == want {
				return v, nil
			}
		}
		return "", fmt.Errorf("%w: %s (the image has: %s)", ErrNotInstalled, want, listOrNone(versions))
	}
	switch len(versions) {
	case 0:
		return "", fmt.Errorf("%w: /boot has no vmlinuz-*", ErrNoKernel)
	case 1:
		return versions[0], nil
	}
	return "", fmt.Errorf("%w: %s; set kernel.version", ErrAmbiguous, strings.Join(versions, ", "))
}

func listOrNone(v []string) string {
	if len(v) == 0 {
		return "none"
	}
	return strings.Join(v, ", ")
}

// ModulesDir is where version's modules live inside root. On merged-/usr
// images /lib is a link to usr/lib; the path works either way.
func ModulesDir(root, version string) string {
	return filepath.Join(root, "lib", "modules", version)
}

// Depmod writes modules.dep and friends for version inside root, with the
// host's depmod (-b): Debian's kernel packages ship none, and a kernel
// built from source may leave none.
func Depmod(ctx context.Context, r *run.Runner, root, version string) error {
	if err := os.MkdirAll(ModulesDir(root, version), 0o755); err != nil {
		return err
	}
	depmod, err := lookDepmod()
	if err != nil {
		return err
	}
	return r.Run(ctx, run.Cmd{Path: depmod, Args: []string{"-a", "-b", root, version}, Quiet: true})
}

func lookDepmod() (string, error) {
	for _, p := range []string{"/usr/sbin/depmod", "/sbin/depmod"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("depmod not found on the build host: install kmod")
}

// Check makes sure version is usable: a kernel image in /boot and a module
// tree with modules.dep.
func Check(root, version string) error {
	if _, err := Image(root, version); err != nil {
		return err
	}
	dep := filepath.Join(ModulesDir(root, version), "modules.dep")
	if _, err := os.Stat(dep); err != nil {
		return fmt.Errorf("%w: /lib/modules/%s/modules.dep is missing", ErrNotInstalled, version)
	}
	return nil
}

// ImageVersion reads the version an x86 bzImage announces in its setup
// header (the string "uname -r" will print), or "" if path is not one.
func ImageVersion(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	hdr := make([]byte, 0x210)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return "", nil
	}
	// "HdrS" at 0x202 marks the boot protocol header; kernel_version at
	// 0x20e points (from 0x200) at a NUL-terminated string.
	if string(hdr[0x202:0x206]) != "HdrS" {
		return "", nil
	}
	off := int64(binary.LittleEndian.Uint16(hdr[0x20e:])) + 0x200
	buf := make([]byte, 256)
	n, _ := f.ReadAt(buf, off)
	s := string(buf[:n])
	if i := strings.IndexAny(s, " \x00"); i >= 0 {
		s = s[:i]
	}
	return s, nil
}

// NameInstalled gives an unversioned /boot/vmlinuz (and its System.map
// and config) the version its header announces: Linux's own "make
// install" on x86 writes plain names when no installkernel takes over,
// and nodes need to know which kernel is which. configSrc, when set, is
// copied to /boot/config-VERSION if the install left none there, so that
// later steps can read what the kernel supports. It returns the version it
// named, or "".
func NameInstalled(root, configSrc string) (string, error) {
	plain := filepath.Join(root, "boot", "vmlinuz")
	fi, err := os.Lstat(plain)
	if err != nil || !fi.Mode().IsRegular() {
		return "", nil
	}
	v, err := ImageVersion(plain)
	if err != nil || v == "" {
		return "", err
	}
	for _, name := range []string{"vmlinuz", "System.map", "config"} {
		p := filepath.Join(root, "boot", name)
		if _, err := os.Lstat(p); err == nil {
			if err := os.Rename(p, p+"-"+v); err != nil {
				return "", err
			}
		}
	}
	for _, old := range []string{"vmlinuz.old", "System.map.old"} {
		os.Remove(filepath.Join(root, "boot", old))
	}
	return v, nil
}

// InstallConfig copies a kernel configuration to /boot/config-VERSION
// when the install left none, as Debian's packages have it.
func InstallConfig(root, version, src string) error {
	dst := filepath.Join(root, "boot", "config-"+version)
	if _, err := os.Stat(dst); err == nil || src == "" {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
