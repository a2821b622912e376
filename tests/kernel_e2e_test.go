//go:build e2ekernel

package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKernelFromDebianSources builds a real kernel from Debian's
// linux-source package through a recipe's kernel section: tinyconfig plus
// what a diskless node needs, installed with DESTDIR into the image. It
// takes minutes, so it is built only with the e2ekernel tag, by "make
// e2e-kernel", which installs linux-source first.
func TestKernelFromDebianSources(t *testing.T) {
	requireRoot(t)
	tarballs, _ := filepath.Glob("/usr/src/linux-source-*.tar.xz")
	if len(tarballs) == 0 {
		t.Fatal("no /usr/src/linux-source-*.tar.xz: make e2e-kernel installs linux-source")
	}
	src := tarballs[len(tarballs)-1]

	// Make the configuration in a scratch tree: tinyconfig, then the
	// node's needs merged in.
	work := t.TempDir()
	start := time.Now()
	sh := func(dir, script string) {
		t.Helper()
		cmd := exec.Command("sh", "-ec", script)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", script, err, tail(string(out), 30))
		}
	}
	sh(work, "tar -xf "+src+" && mv linux-source-* linux")
	frag, _ := filepath.Abs("testdata/nfsroot-node.config")
	sh(filepath.Join(work, "linux"), "make tinyconfig >/dev/null && scripts/kconfig/merge_config.sh -m .config "+frag+" >/dev/null && make olddefconfig >/dev/null && cp .config ../node.config")
	t.Logf("configuration made in %s", time.Since(start).Round(time.Second))

	recipe := filepath.Join(work, "kernel.yaml")
	os.WriteFile(recipe, []byte(`name: kernel-e2e
suite: bookworm
variant: minbase
kernel:
  source: `+src+`
  config: `+filepath.Join(work, "node.config")+`
  targets: [olddefconfig, bzImage, modules, install, modules_install]
  env:
    INSTALL_PATH: $(DESTDIR)/boot
    INSTALL_MOD_PATH: $(DESTDIR)
`), 0o644)
	out := filepath.Join(work, "out")
	build := time.Now()
	cmd := exec.CommandContext(t.Context(), krgimage, "build", recipe, "-o", out, "--cache-dir", filepath.Join(work, "cache"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("krgimage build: %v\n%s", err, tail(stderr.String(), 40))
	}
	t.Logf("krgimage build (debootstrap + kernel) took %s", time.Since(build).Round(time.Second))
	t.Logf("%s", tail(stderr.String(), 6))
	kernels, _ := filepath.Glob(filepath.Join(out, "rootfs/boot/vmlinuz-*"))
	if len(kernels) != 1 {
		t.Fatalf("kernels in the image: %v", kernels)
	}
	version := strings.TrimPrefix(filepath.Base(kernels[0]), "vmlinuz-")
	if _, err := os.Stat(filepath.Join(out, "rootfs/lib/modules", version, "modules.dep")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat("/boot/vmlinuz-" + version); err == nil {
		t.Errorf("the kernel was installed on the build host too")
	}
}
