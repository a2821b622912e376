package testfixture

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/internal/fsutil"
	"github.com/krgimage/krgimage/internal/mounts"
	"github.com/krgimage/krgimage/internal/testenv"
)

// MaxAge is how long a cached fixture is reused before it is rebuilt, so
// that a developer's cache follows the mirror.
const MaxAge = 24 * time.Hour

// CacheDir is where fixtures are kept.
func CacheDir() string {
	if d := os.Getenv("KRGIMAGE_TEST_CACHE"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "krgimage-test-cache")
}

// Mirror returns the Debian mirror tests use: KRGIMAGE_MIRROR, else the
// host's APT configuration.
func Mirror(t testing.TB) string {
	t.Helper()
	if m := os.Getenv("KRGIMAGE_MIRROR"); m != "" {
		return strings.TrimRight(m, "/")
	}
	entries, err := debarchive.ReadHost("/")
	if err != nil {
		t.Fatalf("reading the host's APT sources: %v", err)
	}
	uri, _, ok := debarchive.Archive(entries, "")
	if !ok {
		t.Fatal("no Debian mirror: set KRGIMAGE_MIRROR or configure APT on this host")
	}
	return uri
}

// Base describes a bootstrapped root to cache.
type Base struct {
	Suite   string
	Variant string
	Include []string
}

// Bookworm is the default fixture: a bookworm minbase.
var Bookworm = Base{Suite: "bookworm", Variant: "minbase"}

func (b Base) key(mirror string) string {
	h := sha256.Sum256([]byte(strings.Join(append([]string{mirror, b.Suite, b.Variant}, b.Include...), "\x00")))
	return fmt.Sprintf("%s-%s-%s", b.Suite, b.Variant, hex.EncodeToString(h[:6]))
}

// CachedRoot returns the shared, bootstrapped root for b, building it the
// first time. Callers must not modify it: use Root for a private copy.
func CachedRoot(t testing.TB, b Base) string {
	t.Helper()
	testenv.RequireRoot(t, "debootstrap, chroot and mounts for the shared root")
	mirror := Mirror(t)
	dir := CacheDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	key := b.key(mirror)
	final := filepath.Join(dir, key)
	lk, err := fsutil.WaitLock(final + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Unlock()
	if fi, err := os.Stat(filepath.Join(final, ".krgimage-fixture")); err == nil && time.Since(fi.ModTime()) < MaxAge {
		return final
	}
	tmp := final + ".tmp"
	for _, p := range []string{tmp, final} {
		if err := fsutil.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	// debootstrap itself rather than the bootstrap package, which the
	// packages this fixture serves (chroot) are imported by; in a mount
	// namespace of its own, so its mounts die with it.
	args := []string{"--mount", "--propagation", "private", "debootstrap", "--arch=amd64", "--components=main"}
	if b.Variant != "" {
		args = append(args, "--variant="+b.Variant)
	}
	if len(b.Include) > 0 {
		args = append(args, "--include="+strings.Join(b.Include, ","))
	}
	args = append(args, b.Suite, tmp, mirror)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "unshare", args...).CombinedOutput(); err != nil {
		t.Fatalf("bootstrapping the %s fixture: debootstrap: %v\n%s", key, err, lastLines(string(out), 30))
	}
	if err := os.WriteFile(filepath.Join(tmp, ".krgimage-fixture"), []byte(mirror+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	t.Logf("bootstrapped the %s fixture in %s", key, time.Since(start).Round(time.Second))
	return final
}

// Root returns a private copy of the cached root for b in a directory the
// test owns and removes afterwards.
func Root(t testing.TB, b Base) string {
	t.Helper()
	src := CachedRoot(t, b)
	dst := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", "--reflink=auto", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copying the fixture: %v\n%s", err, out)
	}
	if err := os.Remove(filepath.Join(dst, ".krgimage-fixture")); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A test that failed halfway may have left a mount: refuse to
		// delete through it, loudly.
		if err := fsutil.RemoveAll(dst); err != nil {
			t.Errorf("removing the test root: %v", err)
		}
	})
	return dst
}

// AssertNoMounts fails t if anything is mounted at or below dir on the
// host: krgimage's mounts must live only in private namespaces.
func AssertNoMounts(t testing.TB, dir string) {
	t.Helper()
	under, err := mounts.Under(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(under) > 0 {
		t.Errorf("mounts left on the host under %s: %v", dir, under)
	}
}

// CachedKernelRoot returns a shared bookworm root with Debian's kernel
// (linux-image-amd64, modules.dep written) and busybox-static, what the
// initramfs and boot tests need, and the kernel's version. It is derived
// from the Bookworm fixture. Callers must not modify it.
func CachedKernelRoot(t testing.TB) (root, version string) {
	t.Helper()
	base := CachedRoot(t, Bookworm)
	final := base + "-kernel"
	lk, err := fsutil.WaitLock(final + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Unlock()
	if fi, err := os.Stat(filepath.Join(final, ".krgimage-fixture")); err != nil || time.Since(fi.ModTime()) >= MaxAge {
		tmp := final + ".tmp"
		for _, p := range []string{tmp, final} {
			if err := fsutil.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
		}
		if out, err := exec.Command("cp", "-a", "--reflink=auto", base, tmp).CombinedOutput(); err != nil {
			t.Fatalf("copying the fixture: %v\n%s", err, out)
		}
		// INITRD=No: krgimage writes the initramfs; initramfs-tools would
		// spend half a minute on one nobody uses.
		script := `set -e
mount -t proc proc "$1/proc"
mount -t sysfs sysfs "$1/sys"
mount --rbind /dev "$1/dev"
chroot "$1" sh -c 'export DEBIAN_FRONTEND=noninteractive INITRD=No LC_ALL=C
apt-get -q update && apt-get -q install -y --no-install-recommends linux-image-amd64 busybox-static && apt-get clean'
`
		start := time.Now()
		cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", tmp)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("installing the kernel in the fixture: %v\n%s", err, out)
		}
		versions, _ := filepath.Glob(filepath.Join(tmp, "boot", "vmlinuz-*"))
		if len(versions) != 1 {
			t.Fatalf("kernels in the fixture: %v", versions)
		}
		v := strings.TrimPrefix(filepath.Base(versions[0]), "vmlinuz-")
		if out, err := exec.Command("depmod", "-a", "-b", tmp, v).CombinedOutput(); err != nil {
			t.Fatalf("depmod: %v\n%s", err, out)
		}
		now := time.Now()
		if err := os.Chtimes(filepath.Join(tmp, ".krgimage-fixture"), now, now); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, final); err != nil {
			t.Fatal(err)
		}
		t.Logf("installed the kernel fixture in %s", time.Since(start).Round(time.Second))
	}
	versions, _ := filepath.Glob(filepath.Join(final, "boot", "vmlinuz-*"))
	if len(versions) != 1 {
		t.Fatalf("kernels in the fixture: %v", versions)
	}
	return final, strings.TrimPrefix(filepath.Base(versions[0]), "vmlinuz-")
}

// KernelRoot returns a private copy of CachedKernelRoot's root, which the
// test may change, and the kernel version.
func KernelRoot(t testing.TB) (string, string) {
	t.Helper()
	src, version := CachedKernelRoot(t)
	dst := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", "--reflink=auto", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copying the fixture: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if err := fsutil.RemoveAll(dst); err != nil {
			t.Errorf("removing the test root: %v", err)
		}
	})
	return dst, version
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
