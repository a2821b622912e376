package netboot

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krgimage/krgimage/initramfs"
	"github.com/krgimage/krgimage/internal/qemu"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/internal/testfixture"
)

// cmdlineInit is a test initramfs's /init: it shows the kernel command
// line pxelinux gave, and powers off.
const cmdlineInit = `#!/bin/sh
/bin/busybox mount -t proc proc /proc
echo "KRGIMAGE-CMDLINE: $(/bin/busybox cat /proc/cmdline)"
/bin/busybox poweroff -f
`

// TestPXEBoot boots a node the way the seed's nodes boot: QEMU's PXE ROM
// gets pxelinux.0 over TFTP from the generated tree, pxelinux reads our
// pxelinux.cfg/default and loads the kernel and initramfs with the
// recipe's append line.
func TestPXEBoot(t *testing.T) {
	testenv.RequireRoot(t, "the kernel fixture: debootstrap and chroot")
	kroot, version := testfixture.CachedKernelRoot(t)
	image := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(image, "boot"), 0o755))
	k, err := os.ReadFile(filepath.Join(kroot, "boot", "vmlinuz-"+version))
	must(err)
	must(os.WriteFile(filepath.Join(image, "boot", "vmlinuz-"+version), k, 0o644))
	bb, err := os.ReadFile(filepath.Join(kroot, "bin", "busybox"))
	must(err)
	a := initramfs.NewArchive()
	a.File("bin/busybox", bb, 0o755, time.Time{})
	a.Symlink("bin/sh", "busybox")
	a.File("init", []byte(cmdlineInit), 0o755, time.Time{})
	a.Dir("proc", 0o755)
	var raw bytes.Buffer
	if err := a.WriteTo(&raw, time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	must(os.WriteFile(filepath.Join(image, "boot", "initrd.img-"+version), raw.Bytes(), 0o644))

	r := load(t, "../recipes/bookworm-nfsroot.yaml")
	tree, err := Generate(Options{Recipe: r, ImageRoot: image, Kernel: version})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "server")
	if err := tree.Write(dir); err != nil {
		t.Fatal(err)
	}
	node := r.Nodes()[0]
	c := r.Cluster
	m, err := qemu.Start(qemu.Machine{
		NetBoot: true, MAC: node.MAC.String(), ConsoleLog: filepath.Join(t.TempDir(), "console.log"),
		Netdev: "user,tftp=" + filepath.Join(dir, TFTPRoot(r)) + ",bootfile=pxelinux.0,net=" + c.Subnet.String() +
			",host=" + c.Server.IP.String() + ",dhcpstart=" + node.IP.String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	start := time.Now()
	line, err := m.WaitString(t.Context(), 3*time.Minute, "KRGIMAGE-CMDLINE:")
	if err != nil {
		t.Fatalf("the node did not boot: %v\n%s", err, strings.Join(m.Lines(), "\n"))
	}
	t.Logf("PXE to initramfs in %s", time.Since(start).Round(100*time.Millisecond))
	want := strings.Join(KernelArgs(r, nil), " ")
	if !strings.Contains(line, want) {
		t.Errorf("kernel command line %q lacks the recipe's %q", line, want)
	}
	if !strings.Contains(line, "initrd=boot/initrd.img-"+version) {
		t.Errorf("pxelinux did not pass our initrd: %q", line)
	}
}
