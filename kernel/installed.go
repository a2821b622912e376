package kernel

import (
	"context"
	"errors"
	"fmt"
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
