package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/krgimage/krgimage/boottest"
	"github.com/krgimage/krgimage/internal/netns"
	"github.com/krgimage/krgimage/internal/testfixture"
)

// bootTest runs krgimage boot-test on out with args and returns its
// result.json, whether it passed or not.
func bootTest(t *testing.T, out string, args ...string) (*boottest.Result, string, error) {
	t.Helper()
	return bootTestEnv(t, out, nil, args...)
}

// bootTestEnv is bootTest with env added to the environment: a password
// goes there, never on a command line.
func bootTestEnv(t *testing.T, out string, env []string, args ...string) (*boottest.Result, string, error) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(krgimage, append([]string{"boot-test", out}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	t.Logf("krgimage boot-test %s: %s in %s", strings.Join(args, " "), strings.TrimSpace(stdout.String()), time.Since(start).Round(time.Second))
	b, err := os.ReadFile(filepath.Join(out, boottest.Dir, "result.json"))
	if err != nil {
		t.Fatalf("no result.json (%v); boot-test said: %v\n%s", err, runErr, tail(stderr.String(), 40))
	}
	var res boottest.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	verdict, _ := os.ReadFile(filepath.Join(out, boottest.Dir, "verdict"))
	if strings.TrimSpace(string(verdict)) != res.Verdict || strings.TrimSpace(stdout.String()) != res.Verdict {
		t.Errorf("verdict file %q, stdout %q, result.json %q: want one verdict", verdict, stdout.String(), res.Verdict)
	}
	assertStopped(t, out, cmd.Process.Pid)
	return &res, stderr.String(), runErr
}

// assertStopped checks boot-test stopped everything it started for out:
// its QEMU guests (named krgimage-boot-test-NODE), and the servers whose
// command lines name the output directory, and the network namespaces
// it made (named after its PID, so that another run's do not count).
func assertStopped(t *testing.T, out string, pid int) {
	t.Helper()
	if _, err := exec.LookPath("pgrep"); err != nil {
		t.Fatal("pgrep not found (make deps installs procps): cannot check what boot-test left running")
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, pattern := range []string{"qemu-system-x86_64 -name krgimage-boot-test-", "ganesha.nfsd .*" + abs, "dhcpd .*" + abs, "in.tftpd .*" + abs} {
		o, err := exec.Command("pgrep", "-a", "-f", pattern).Output()
		var exit *exec.ExitError
		if err == nil {
			t.Errorf("still running after boot-test:\n%s", o)
		} else if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("pgrep -f %q: %v", pattern, err)
		}
	}
	o, _ := exec.Command("ip", "netns", "list").Output()
	for _, prefix := range []string{"krgboot-", "krgboot-site-"} {
		if mine := fmt.Sprintf("%s%d-", prefix, pid); strings.Contains(string(o), mine) {
			t.Errorf("network namespace %s… left behind:\n%s", mine, o)
		}
	}
}

func checkPassed(t *testing.T, res *boottest.Result, stderr string, err error, nodes int) {
	t.Helper()
	if err != nil || !res.Passed {
		t.Fatalf("boot-test failed: %v: %s\n%s", err, res.Verdict, tail(stderr, 30))
	}
	if len(res.Nodes) != nodes {
		t.Fatalf("%d nodes booted, want %d", len(res.Nodes), nodes)
	}
	for _, n := range res.Nodes {
		var phases []string
		for _, p := range n.Timeline {
			phases = append(phases, p.Phase)
		}
		if want := "qemu loader kernel initramfs network nfs init login checks"; strings.Join(phases, " ") != want {
			t.Errorf("%s went through %v, want %s", n.Name, phases, want)
		}
		if len(n.Checks) != 5 {
			t.Errorf("%s ran %d checks, want the recipe's 5", n.Name, len(n.Checks))
		}
		if _, err := os.Stat(n.Console); err != nil {
			t.Errorf("console log: %v", err)
		}
	}
}

// TestBootTestReadOnly boots the shipped bookworm recipe as make image
// builds it, root locked: PXE through QEMU's network posing as the
// recipe's server, our pxelinux config and initramfs, the read-only NFS
// root, systemd to the login prompt, then the recipe's checks, logged in
// with the boot test's one-time password. The root must come back
// unchanged, and nothing of that login may stay behind.
func TestBootTestReadOnly(t *testing.T) {
	out, _ := bookwormImage(t, "ro")
	// As the README has it: boot-test out, relative to where it runs.
	t.Chdir(filepath.Dir(out))
	res, stderr, err := bootTest(t, filepath.Base(out))
	checkPassed(t, res, stderr, err, 1)
	if res.RootUnchanged == nil || !*res.RootUnchanged {
		t.Errorf("the read-only root was not proven unchanged: %v", res.RootChanges)
	}
	if res.Nodes[0].Checks[0].Name != "NFS root mounted ro" {
		t.Errorf("first check %q", res.Nodes[0].Checks[0].Name)
	}
	if !strings.Contains(stderr, "one-time password") {
		t.Errorf("boot-test does not say it logged in with a one-time password:\n%s", tail(stderr, 20))
	}
	if res.Accel.Name == "" || res.Accel.Why == "" || res.Nodes[0].Accel == "" {
		t.Errorf("result.json does not say which accelerator ran and why: %+v, node %q", res.Accel, res.Nodes[0].Accel)
	}
	assertNoLoginLeft(t, out)
	testfixture.AssertNoMounts(t, out)
}

// sha512Hash is a whole "$6$" crypt hash, such as the one-time login's.
var sha512Hash = regexp.MustCompile(`\$6\$[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}`)

// assertNoLoginLeft checks that a boot test's one-time login left nothing
// a production node could be logged into with: root is still locked in
// the image (whose manifest the boot test compared), the snapshot still
// matches the image, no scratch copy of /etc/shadow remains and no
// output holds a hash.
func assertNoLoginLeft(t *testing.T, out string) {
	t.Helper()
	shadow, err := os.ReadFile(filepath.Join(out, "rootfs/etc/shadow"))
	if err != nil || !bytes.HasPrefix(shadow, []byte("root:!:")) {
		t.Errorf("root's entry in the image's /etc/shadow changed (%v): %.20q", err, shadow)
	}
	if o, err := exec.Command(krgimage, "verify", filepath.Join(out, "bookworm-nfsroot.tar.zst"), "--against", filepath.Join(out, "rootfs")).CombinedOutput(); err != nil {
		t.Errorf("the snapshot no longer matches the image: %v\n%s", err, tail(string(o), 10))
	}
	for _, dir := range []string{out, filepath.Join(out, boottest.Dir)} {
		if m, _ := filepath.Glob(filepath.Join(dir, ".login-*")); len(m) > 0 {
			t.Errorf("scratch login files left: %v", m)
		}
	}
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		// The root and its snapshot are compared above.
		if err != nil || d.IsDir() && p == filepath.Join(out, "rootfs") || strings.HasSuffix(p, ".tar.zst") {
			return err
		}
		if d.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil && sha512Hash.Match(b) {
				t.Errorf("%s holds a password hash: %s", p, sha512Hash.Find(b))
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestBootTestReadWrite boots the read-write variant: the whole root is
// writable over NFS (a scratch copy, so the build stays as it was).
func TestBootTestReadWrite(t *testing.T) {
	out, _ := bookwormImage(t, "rw")
	res, stderr, err := bootTestEnv(t, out, []string{"ROOT_PASSWORD=" + testPassword})
	checkPassed(t, res, stderr, err, 1)
	if c := res.Nodes[0].Checks[0]; c.Name != "NFS root mounted rw" || !strings.Contains(c.Output, " rw,") {
		t.Errorf("the root check says %q: %s", c.Name, c.Output)
	}
	if res.RootUnchanged != nil {
		t.Error("a read-write root cannot be checked unchanged")
	}
	if strings.Contains(stderr, testPassword) || strings.Contains(stderr, "one-time") {
		t.Errorf("the recipe's password should log in, unlogged:\n%s", tail(stderr, 20))
	}
}

// TestBootTestNetns runs the seed's server for real in a private network
// namespace: our dhcpd.conf in ISC dhcpd, tftpd-hpa with our TFTP tree and
// the NFS server, two inventory nodes booting at once from one read-only
// root, each named and addressed by dhcpd.
func TestBootTestNetns(t *testing.T) {
	out, _ := bookwormImage(t, "ro")
	res, stderr, err := bootTest(t, out, "--network", "netns", "--nodes", "2")
	checkPassed(t, res, stderr, err, 2)
	for i, n := range res.Nodes {
		name, ip := []string{"node1", "node2"}[i], []string{"192.168.1.101", "192.168.1.102"}[i]
		if n.Name != name || n.Hostname != name || !strings.Contains(strings.Join(n.Addresses, " "), ip) {
			t.Errorf("node %d is %q at %v, want %s at %s", i, n.Hostname, n.Addresses, name, ip)
		}
	}
	if res.RootUnchanged == nil || !*res.RootUnchanged {
		t.Errorf("the read-only root changed under two nodes: %v", res.RootChanges)
	}
	leases, _ := os.ReadFile(filepath.Join(out, boottest.Dir, "dhcpd.log"))
	for i, mac := range []string{"52:54:00:12:01:01", "52:54:00:12:01:02"} {
		if ack := fmt.Sprintf("DHCPACK on 192.168.1.10%d to %s", i+1, mac); !strings.Contains(string(leases), ack) {
			t.Errorf("dhcpd's log lacks %q:\n%s", ack, tail(string(leases), 20))
		}
	}
}

// TestBootTestServers boots a node with each DHCP server beside ISC
// dhcpd and each way of loading the kernel: Kea from the generated
// kea-dhcp4.conf with the kernel and initramfs over HTTP (lpxelinux.0,
// nginx), and dnsmasq as a proxy beside a site DHCP server on a machine of
// its own, which alone gives the address, over TFTP. It logs how long the
// loader took to get the kernel running each way.
func TestBootTestServers(t *testing.T) {
	out, _ := bookwormImage(t, "ro")
	loader := map[string]float64{}
	for _, tc := range []struct {
		name string
		args []string
		logs map[string][]string
		not  map[string]string
	}{
		// UEFI HTTP boot: the firmware downloads the RAM disk image
		// holding shim, GRUB, the kernel and initramfs, Secure Boot on.
		{"uefi-secureboot-kea-http", []string{"--dhcp", "kea", "--http", "--firmware", "uefi-secureboot"}, map[string][]string{
			"kea-dhcp4.log":    {"DHCP4_LEASE_ALLOC [hwtype=1 52:54:00:12:01:01]", "lease 192.168.1.101 has been allocated"},
			"nginx-access.log": {"\"GET /httpboot-x64.img HTTP/1.1\" 200 ", "UefiHttpBoot/"},
			"console-node1.log": {">>Start HTTP Boot over IPv4", "URI: http://192.168.1.1:80/httpboot-x64.img",
				"krgimage: GRUB loading boot/vmlinuz-6", "EFI stub: UEFI Secure Boot is enabled."},
		}, nil},
		// UEFI PXE: ISC dhcpd picks shim by option 93, GRUB loads the
		// kernel over TFTP; the same firmware as above, for the ratio.
		{"uefi-secureboot-isc-tftp", []string{"--dhcp", "isc", "--firmware", "uefi-secureboot"}, map[string][]string{
			"console-node1.log": {">>Start PXE over IPv4", "NBP filename is shimx64.efi", "krgimage: GRUB loading boot/vmlinuz-6", "EFI stub: UEFI Secure Boot is enabled."},
		}, map[string]string{"console-node1.log": "HTTP Boot"}},
		{"dnsmasq-proxy-tftp", []string{"--dhcp", "dnsmasq-proxy"}, map[string][]string{
			"dnsmasq.log":      {"proxy on subnet 192.168.1.0", "PXE(br0) 52:54:00:12:01:01 proxy"},
			"site-dnsmasq.log": {"DHCPACK(site1) 192.168.1.101 52:54:00:12:01:01 node1"},
		}, map[string]string{"dnsmasq.log": "DHCPACK"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, stderr, err := bootTest(t, out, append([]string{"--network", "netns"}, tc.args...)...)
			checkPassed(t, res, stderr, err, 1)
			n := res.Nodes[0]
			if n.Hostname != "node1" || !strings.Contains(strings.Join(n.Addresses, " "), "192.168.1.101") {
				t.Errorf("dhcp %q: node %q at %v, want node1 at 192.168.1.101", res.DHCP, n.Hostname, n.Addresses)
			}
			for file, wants := range tc.logs {
				log, _ := os.ReadFile(filepath.Join(out, boottest.Dir, file))
				for _, want := range wants {
					if !strings.Contains(string(log), want) {
						t.Errorf("%s lacks %q:\n%s", file, want, tail(string(log), 20))
					}
				}
			}
			for file, not := range tc.not {
				if log, _ := os.ReadFile(filepath.Join(out, boottest.Dir, file)); strings.Contains(string(log), not) {
					t.Errorf("%s has %q", file, not)
				}
			}
			loader[tc.name] = phaseGap(n.Timeline, "loader", "kernel")
		})
	}
	if m, _ := filepath.Glob(filepath.Join(out, ".boot-test-http-*")); len(m) > 0 {
		t.Errorf("the HTTP boot's tree was left: %v", m)
	}
	if h, f := loader["uefi-secureboot-kea-http"], loader["uefi-secureboot-isc-tftp"]; h > 0 && f > 0 {
		t.Logf("UEFI network boot start to the kernel's first line: TFTP %.1fs, HTTP %.1fs (TFTP/HTTP %.2f)", f, h, f/h)
	}
}

// phaseGap is the time from one boot phase to another, 0 when either is
// missing.
func phaseGap(timeline []boottest.PhaseTime, from, to string) float64 {
	var a, b float64
	for _, p := range timeline {
		switch p.Phase {
		case from:
			a = p.Seconds
		case to:
			b = p.Seconds
		}
	}
	if a == 0 || b == 0 {
		return 0
	}
	return b - a
}

// TestBootTestFailures breaks a build in the two places a boot most often
// fails and checks the verdict names the phase, well before the timeout.
func TestBootTestFailures(t *testing.T) {
	out, _ := bookwormImage(t, "ro")
	tftp := filepath.Join(out, "netboot/srv/tftp")
	for _, tc := range []struct {
		name  string
		file  string
		edit  func([]byte) []byte
		phase string
		says  string
	}{
		{"wrong nfsroot path", "pxelinux.cfg/default",
			func(b []byte) []byte {
				return bytes.ReplaceAll(b, []byte("nfsroot=192.168.1.1:/srv/nfsroot/bookworm"), []byte("nfsroot=192.168.1.1:/srv/nfsroot/nowhere"))
			},
			"network", "NFS mount failed"},
		{"broken initramfs", "", func([]byte) []byte { return bytes.Repeat([]byte("not an initramfs\n"), 4096) },
			"kernel", "the initramfs did not run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(tftp, tc.file)
			if tc.file == "" {
				m, _ := filepath.Glob(filepath.Join(tftp, "boot/initrd.img-*"))
				if len(m) != 1 {
					t.Fatalf("initrds in the TFTP tree: %v", m)
				}
				file = m[0]
			}
			orig, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			// The image is shared with the other tests: put it back.
			t.Cleanup(func() { os.WriteFile(file, orig, 0o644) })
			if err := os.WriteFile(file, tc.edit(orig), 0o644); err != nil {
				t.Fatal(err)
			}
			const timeout = 5 * time.Minute
			start := time.Now()
			res, stderr, err := bootTest(t, out, "--timeout", timeout.String())
			var exit *exec.ExitError
			if !errors.As(err, &exit) || res.Passed {
				t.Fatalf("boot-test passed a broken image (%v): %s", err, res.Verdict)
			}
			if took := time.Since(start); took > timeout {
				t.Errorf("took %s, past the %s timeout", took.Round(time.Second), timeout)
			}
			n := res.Nodes[0]
			if n.Phase != tc.phase || !strings.Contains(n.Error, tc.says) {
				t.Errorf("stopped at %q: %q\nwant phase %q and %q\n%s", n.Phase, n.Error, tc.phase, tc.says, tail(stderr, 20))
			}
		})
	}
}

// TestBootTestInterrupted stops boot-test with Ctrl-C mid-boot: QEMU, the
// NFS server and the namespace must go, and the verdict must say so.
func TestBootTestInterrupted(t *testing.T) {
	out, _ := bookwormImage(t, "ro")
	cmd, wait, log := startUntil(t, "phase=kernel", "boot-test", out)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Errorf("boot-test exited with %v after SIGINT, want status 130\n%s", err, tail(log.String(), 20))
	}
	assertStopped(t, out, cmd.Process.Pid)
	testfixture.AssertNoMounts(t, out)
	b, err := os.ReadFile(filepath.Join(out, boottest.Dir, "verdict"))
	if err != nil || !strings.Contains(string(b), "interrupted") {
		t.Errorf("verdict after Ctrl-C: %q %v", b, err)
	}
}

// TestBootTestKilled SIGKILLs boot-test mid-boot, which leaves it no
// cleanup of its own: nothing it started may go on running (the kernel
// ends the servers and guests with it), and the network namespace it
// could not delete must be one the next boot test deletes.
func TestBootTestKilled(t *testing.T) {
	out, _ := bookwormImage(t, "ro")
	cmd, wait, _ := startUntil(t, "phase=kernel", "boot-test", out)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	wait()
	mine := fmt.Sprintf("krgboot-%d-", cmd.Process.Pid)
	var left string
	deadline := time.Now().Add(10 * time.Second)
	for {
		left = ""
		o, _ := exec.Command("ip", "netns", "list").Output()
		for _, line := range strings.Split(string(o), "\n") {
			if name, _, _ := strings.Cut(line, " "); strings.HasPrefix(name, mine) {
				left = name
			}
		}
		if left == "" {
			t.Fatalf("no namespace %s… after the kill: boot-test did not name it after itself\n%s", mine, o)
		}
		pids, _ := exec.Command("ip", "netns", "pids", left).Output()
		if len(strings.TrimSpace(string(pids))) == 0 {
			break
		}
		if time.Now().After(deadline) {
			ps, _ := exec.Command("ps", "-o", "pid,args", "-p", strings.Join(strings.Fields(string(pids)), ",")).Output()
			t.Fatalf("still running in %s 10 s after boot-test was killed:\n%s", left, ps)
		}
		time.Sleep(200 * time.Millisecond)
	}
	gone, err := netns.Collect("krgboot")
	if err != nil || !slices.Contains(gone, left) {
		t.Errorf("collecting after the kill: deleted %v (%v), want %s among them", gone, err, left)
	}
}

// TestBootTestMedia boots the build from the ISO krgimage media writes
// for nodes that cannot PXE: the same kernel, initramfs and NFS root, to
// the login prompt and the recipe's checks.
func TestBootTestMedia(t *testing.T) {
	out, _ := bookwormImage(t, "ro")
	iso := filepath.Join(t.TempDir(), "node.iso")
	if o, err := exec.Command(krgimage, "media", out, "-o", iso).CombinedOutput(); err != nil {
		t.Fatalf("krgimage media: %v\n%s", err, tail(string(o), 20))
	}
	res, stderr, err := bootTest(t, out, "--media", iso)
	if err != nil || !res.Passed {
		t.Fatalf("boot-test --media failed: %v: %s\n%s", err, res.Verdict, tail(stderr, 30))
	}
	n := res.Nodes[0]
	if len(n.Checks) != 5 || n.Timeline[1].Phase != "loader" {
		t.Errorf("timeline %v, %d checks", n.Timeline, len(n.Checks))
	}
	if log, _ := os.ReadFile(n.Console); !bytes.Contains(log, []byte("ISOLINUX")) {
		t.Error("the node did not boot through isolinux")
	}
}
