package media

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/krgimage/krgimage/initramfs"
	"github.com/krgimage/krgimage/internal/netns"
	"github.com/krgimage/krgimage/internal/nfsserver"
	"github.com/krgimage/krgimage/internal/qemu"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/internal/testfixture"
	"github.com/krgimage/krgimage/netboot"
	"github.com/krgimage/krgimage/recipes"
)

// ovmf is Debian's UEFI firmware for QEMU (package ovmf).
const ovmf = "/usr/share/ovmf/OVMF.fd"

// nodeInit is the test image's /sbin/init: a getty on the serial line, as
// systemd would start, without the minute systemd takes under emulation.
const nodeInit = `#!/bin/sh
mount -t tmpfs tmpfs /run
echo "krgimage-test-node: init on $(hostname)"
exec /sbin/agetty --noclear -L 9600 ttyS0 vt100
`

// shared are what the boot tests share: one image root, made once per
// run (a copy of the kernel fixture with krgimage's initramfs and
// nodeInit), and the media made from it.
var shared struct {
	sync.Mutex
	dir     string
	root    string
	version string
	isos    map[string]string
}

// nodeImage returns the shared image root and its kernel version.
func nodeImage(t *testing.T) (root, version string) {
	t.Helper()
	testenv.RequireRoot(t, "an NFS server in a network namespace")
	kroot, version := testfixture.CachedKernelRoot(t)
	shared.Lock()
	defer shared.Unlock()
	if shared.root != "" {
		return shared.root, shared.version
	}
	dir, err := os.MkdirTemp("", "krgimage-media-test-")
	if err != nil {
		t.Fatal(err)
	}
	shared.dir = dir
	root = filepath.Join(dir, "root")
	if out, err := exec.Command("cp", "-a", "--reflink=auto", kroot, root).CombinedOutput(); err != nil {
		t.Fatalf("copying the kernel fixture: %v\n%s", err, out)
	}
	start := time.Now()
	res, err := initramfs.WriteFile(t.Context(), initramfs.Options{Root: root, Kernel: version, NICs: recipes.DefaultNICs, DefaultNICs: true,
		NFSVersion: 3, Mode: "ro", BuildTime: buildTime}, filepath.Join(root, "boot", "initrd.img-"+version))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("initramfs: %d bytes in %s", res.Size, time.Since(start).Round(100*time.Millisecond))
	if err := os.WriteFile(filepath.Join(root, "sbin", "init"), []byte(nodeInit), 0o755); err != nil {
		t.Fatal(err)
	}
	shared.root, shared.version = root, version
	return root, version
}

// nodeMedium writes the medium of a testdata recipe for the shared image
// once, and returns its path.
func nodeMedium(t *testing.T, recipe string) (iso string, r *recipes.Recipe) {
	t.Helper()
	root, version := nodeImage(t)
	r = load(t, recipe)
	shared.Lock()
	defer shared.Unlock()
	if p, ok := shared.isos[recipe]; ok {
		return p, r
	}
	iso = filepath.Join(shared.dir, r.Netboot.Media.Output)
	start := time.Now()
	_, res, err := Write(t.Context(), Options{Options: netboot.Options{Recipe: r, ImageRoot: root, Kernel: version}, Time: buildTime}, iso)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d bytes in %s", filepath.Base(iso), res.Bytes, time.Since(start).Round(100*time.Millisecond))
	if shared.isos == nil {
		shared.isos = map[string]string{}
	}
	shared.isos[recipe] = iso
	return iso, r
}

// boot starts m and waits for a console line containing want.
func boot(t *testing.T, m qemu.Machine, want string, timeout time.Duration) (*qemu.Running, string) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal(qemu.ErrMissing)
	}
	m.ConsoleLog = filepath.Join(t.TempDir(), "console.log")
	if m.MemoryMB == 0 {
		m.MemoryMB = 1024
	}
	vm, err := qemu.Start(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Stop)
	start := time.Now()
	line, err := vm.WaitPrompt(t.Context(), 0, timeout, func(l string) bool { return strings.Contains(l, want) })
	if err != nil {
		t.Fatalf("no %q on the console: %v\n%s", want, err, lastLines(strings.Join(vm.Lines(), "\n"), 40))
	}
	t.Logf("%q after %s", want, time.Since(start).Round(100*time.Millisecond))
	return vm, line
}

// commandLine waits for the kernel's command line and checks it carries
// the recipe's arguments, as the PXE nodes' append line does.
func commandLine(t *testing.T, vm *qemu.Running, r *recipes.Recipe) string {
	t.Helper()
	line, err := vm.WaitString(t.Context(), 3*time.Minute, "Command line:")
	if err != nil {
		t.Fatalf("no kernel command line: %v", err)
	}
	if want := strings.Join(netboot.KernelArgs(r, nil), " "); !strings.HasSuffix(line, want) {
		t.Errorf("kernel command line %q does not end with the PXE append line's arguments %q", line, want)
	}
	return line
}

// TestBootCDToLogin boots the isolinux medium as a CD, with no network
// boot at all: isolinux, the kernel, krgimage's initramfs, DHCP from
// QEMU's network posing as the recipe's server, the read-only NFS root
// from nfs-ganesha at the recipe's path, then the node's login prompt.
func TestBootCDToLogin(t *testing.T) {
	t.Parallel()
	iso, r := nodeMedium(t, "testdata/isolinux.yaml")
	root, _ := nodeImage(t)
	// What a killed run of this test left goes first.
	netns.Collect("krgmedia")
	ns, err := netns.New("krgmedia")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Delete()
	srv, err := nfsserver.Start(t.Context(), nfsserver.Options{Dir: t.TempDir(), Netns: ns.Name,
		Exports: []nfsserver.Export{{Path: root, Pseudo: r.NFSRoot.Path, ReadOnly: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c, node := r.Cluster, r.Nodes()[1]
	netdev := "user,net=" + c.Subnet.String() + ",host=" + c.Server.IP.String() + ",dhcpstart=" + node.IP.String() + ",hostname=" + node.Name
	vm, _ := boot(t, qemu.Machine{CDROM: iso, Netdev: netdev, Netns: ns.Name, MAC: node.MAC.String()}, node.Name+" login:", 6*time.Minute)
	console := strings.Join(vm.Lines(), "\n")
	for _, want := range []string{"ISOLINUX", "krgimage-initramfs: network up: eth0 " + node.IP.String(),
		"krgimage-initramfs: NFS root mounted from " + c.Server.IP.String() + ":" + r.NFSRoot.Path, "krgimage-test-node: init on " + node.Name} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	commandLine(t, vm, r)
}

// TestBootUSBStick boots the same medium as a USB stick: SeaBIOS runs
// the hybrid MBR, which starts isolinux from the ISO 9660 filesystem.
func TestBootUSBStick(t *testing.T) {
	t.Parallel()
	iso, r := nodeMedium(t, "testdata/isolinux.yaml")
	vm, _ := boot(t, qemu.Machine{USB: iso}, "krgimage-initramfs: starting", 3*time.Minute)
	commandLine(t, vm, r)
}

// TestBootUEFI boots the medium with UEFI firmware (OVMF), from CD (El
// Torito's EFI entry) and from a USB stick (the MBR's EFI system
// partition): GRUB, then the same kernel, arguments and initramfs.
func TestBootUEFI(t *testing.T) {
	if _, err := os.Stat(ovmf); err != nil {
		t.Fatalf("UEFI firmware: %v (install ovmf)", err)
	}
	for _, tt := range []struct {
		name string
		m    func(iso string) qemu.Machine
	}{
		{"cd", func(iso string) qemu.Machine { return qemu.Machine{Firmware: ovmf, CDROM: iso} }},
		{"usb", func(iso string) qemu.Machine { return qemu.Machine{Firmware: ovmf, USB: iso} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			iso, r := nodeMedium(t, "testdata/isolinux.yaml")
			vm, _ := boot(t, tt.m(iso), "krgimage-initramfs: starting", 5*time.Minute)
			commandLine(t, vm, r)
		})
	}
}

// TestBootIPXE boots the ipxe medium as a CD: iPXE asks DHCP, loads the
// boot server's pxelinux.0 over TFTP (QEMU's, serving the tree netboot
// generates) and pxelinux boots the node as it boots PXE nodes.
func TestBootIPXE(t *testing.T) {
	t.Parallel()
	iso, r := nodeMedium(t, "testdata/ipxe.yaml")
	root, version := nodeImage(t)
	tree, err := netboot.Generate(netboot.Options{Recipe: r, ImageRoot: root, Kernel: version})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "server")
	if err := tree.Write(dir); err != nil {
		t.Fatal(err)
	}
	c, node := r.Cluster, r.Nodes()[0]
	netdev := "user,tftp=" + filepath.Join(dir, netboot.TFTPRoot(r)) + ",bootfile=pxelinux.0,net=" + c.Subnet.String() +
		",host=" + c.Server.IP.String() + ",dhcpstart=" + node.IP.String()
	vm, _ := boot(t, qemu.Machine{CDROM: iso, Netdev: netdev, MAC: node.MAC.String()}, "PXELINUX", 4*time.Minute)
	line := commandLine(t, vm, r)
	// pxelinux's initrd= names the TFTP tree's initramfs: the PXE server,
	// not the medium, booted this node.
	if !strings.Contains(line, "initrd=boot/initrd.img-"+version) {
		t.Errorf("kernel command line %q was not pxelinux's", line)
	}
}

// lastLines is the end of a console log, for a failure's message.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
