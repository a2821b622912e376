package initramfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/netns"
	"github.com/krgimage/krgimage/internal/nfsserver"
	"github.com/krgimage/krgimage/internal/qemu"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/internal/testfixture"
	"github.com/krgimage/krgimage/recipes"
)

// markerInit is the test root's /sbin/init: it reports how the root is
// mounted and whether it is writable, then powers the machine off.
const markerInit = `#!/bin/busybox sh
bb=/bin/busybox
echo "KRGIMAGE-ROOT: $($bb grep ' / ' /proc/mounts | $bb grep nfs)"
if $bb touch /write-test 2>/dev/null; then echo "KRGIMAGE-WRITE: ok"; $bb rm -f /write-test; else echo "KRGIMAGE-WRITE: refused"; fi
echo "KRGIMAGE-BOOT-OK"
$bb poweroff -f
`

// markerRoot is a tiny NFS root: busybox and markerInit.
func markerRoot(t *testing.T, imageRoot string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "nfsroot")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"bin", "sbin", "proc", "sys", "dev", "tmp"} {
		must(os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	bb, err := busybox(Options{Root: imageRoot})
	must(err)
	data, err := os.ReadFile(bb)
	must(err)
	must(os.WriteFile(filepath.Join(root, "bin/busybox"), data, 0o755))
	must(os.WriteFile(filepath.Join(root, "sbin/init"), []byte(markerInit), 0o755))
	return root
}

// bootNFS boots kernel+initrd in QEMU against an NFS server exporting
// root, in a network namespace of its own, and returns the console.
func bootNFS(t *testing.T, kernel, initrd, root string, readOnly bool, appendArgs string, wait string, timeout time.Duration) ([]string, error) {
	t.Helper()
	// What a killed run of this test left goes first.
	netns.Collect("krgtest")
	ns, err := netns.New("krgtest")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Delete()
	work := t.TempDir()
	srv, err := nfsserver.Start(t.Context(), nfsserver.Options{Dir: work, Netns: ns.Name,
		Exports: []nfsserver.Export{{Path: root, ReadOnly: readOnly}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	console := filepath.Join(work, "console.log")
	m, err := qemu.Start(qemu.Machine{Kernel: kernel, Initrd: initrd, Netns: ns.Name, ConsoleLog: console,
		Append: "console=ttyS0 panic=-1 " + appendArgs})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	start := time.Now()
	_, err = m.WaitString(t.Context(), timeout, wait)
	t.Logf("boot took %s", time.Since(start).Round(100*time.Millisecond))
	return m.Lines(), err
}

func TestBootOverNFS(t *testing.T) {
	testenv.RequireRoot(t, "an NFS server in a network namespace")
	kroot, version := testfixture.CachedKernelRoot(t)
	initrd := filepath.Join(t.TempDir(), "initrd.img")
	res, err := WriteFile(t.Context(), Options{Root: kroot, Kernel: version, NICs: recipes.DefaultNICs, DefaultNICs: true,
		BuildTime: time.Unix(1700000000, 0)}, initrd)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("initramfs: %d bytes, %d modules", res.Size, len(res.Modules))
	root := markerRoot(t, kroot)
	kernel := filepath.Join(kroot, "boot", "vmlinuz-"+version)
	for _, tc := range []struct {
		vers int
		mode string
	}{{3, "ro"}, {3, "rw"}, {4, "ro"}, {4, "rw"}} {
		t.Run(fmt.Sprintf("nfsv%d-%s", tc.vers, tc.mode), func(t *testing.T) {
			args := fmt.Sprintf("ip=dhcp root=/dev/nfs nfsroot=10.0.2.2:%s,vers=%d %s", root, tc.vers, tc.mode)
			lines, err := bootNFS(t, kernel, initrd, root, tc.mode == "ro", args, "KRGIMAGE-BOOT-OK", 3*time.Minute)
			console := strings.Join(lines, "\n")
			if err != nil {
				t.Fatalf("no boot: %v\n%s", err, lastLines(lines, 40))
			}
			fstype := "nfs"
			if tc.vers == 4 {
				fstype = "nfs4"
			}
			if !strings.Contains(console, "KRGIMAGE-ROOT: 10.0.2.2:"+root+" / "+fstype+" "+tc.mode+",") {
				t.Errorf("root not mounted %s over NFSv%d:\n%s", tc.mode, tc.vers, grep(lines, "KRGIMAGE-ROOT"))
			}
			want := map[string]string{"ro": "refused", "rw": "ok"}[tc.mode]
			if !strings.Contains(console, "KRGIMAGE-WRITE: "+want) {
				t.Errorf("write test: want %s:\n%s", want, grep(lines, "KRGIMAGE-WRITE"))
			}
			for _, phase := range []string{"krgimage-initramfs: starting", "krgimage-initramfs: network up: eth0 10.0.2.15", "krgimage-initramfs: NFS root mounted"} {
				if !strings.Contains(console, phase) {
					t.Errorf("console lacks %q", phase)
				}
			}
		})
	}
}

func lastLines(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func grep(lines []string, s string) string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
