package chroot

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/internal/testfixture"
	"github.com/krgimage/krgimage/recipes"
)

// The escapes issue 20 lists, each tried by a `run` step as a hostile
// package script would: every one must fail, with the kernel's reason in
// the step's error, and leave the host as it was. Where an attempt would
// harm the host if the container ever let it through (the clock, the
// name, reboot), it asks for no change (bad reboot magic, the current
// time and name): the refusal is what is tested.
func TestRunStepCannotEscape(t *testing.T) {
	testenv.RequireRoot(t, "namespaces, mounts and chroot of a container")
	root := testfixture.Root(t, testfixture.Bookworm)
	hostName, _ := os.Hostname()
	canary := filepath.Join(t.TempDir(), "host-only")
	os.WriteFile(canary, []byte("host"), 0o600)
	victim := exec.Command("sleep", "600")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Process.Kill(); victim.Wait() })
	disk := hostDiskNode(t, root)

	perl := func(call string) string {
		return fmt.Sprintf(`perl -e '%s == -1 and die "$!\n"; print "succeeded\n"'`, call)
	}
	escapes := []struct{ name, script, why string }{
		{"mknod a host disk", "mknod /tmp/sda b 8 0", "Operation not permitted"},
		{"open a host disk node in the image", "head -c 512 /" + disk + " >/dev/null", "Permission denied"},
		{"host filesystem through /proc/1/root", "cat /proc/1/root" + canary, "No such file or directory"},
		{"host filesystem by a second chroot", `perl -e 'mkdir "x"; chroot "x" or die; chdir ".." for 1..64; chroot "." or die; exec "/bin/cat", "` + canary + `"'`, "No such file or directory"},
		{"see a host process", fmt.Sprintf("cat /proc/%d/cmdline", victim.Process.Pid), "No such file or directory"},
		{"kill a host process", fmt.Sprintf("kill -9 %d", victim.Process.Pid), "No such process"},
		{"load a module", perl("syscall(313, 0, my $args = \"\", 0)"), moduleRefusal()},             // finit_module
		{"set the host name", `hostname "$(hostname)"`, "you must be root to change the host name"}, // EPERM, in hostname's words
		{"set the clock", `date -s "$(date -R)"`, "Operation not permitted"},                        // to now: harmless if it ever passed
		{"reboot", perl("syscall(169, 0, 0, 0, 0)"), "Operation not permitted"},                     // reboot, bad magic: EINVAL if allowed
		{"physical memory", "mknod /tmp/mem c 1 1", "Operation not permitted"},
		{"write a host sysctl", "echo 1 > /proc/sys/vm/drop_caches", "Read-only file system"},
		{"remount /sys writable", "mount -o remount,rw /sys", "permission denied"},
	}
	for _, e := range escapes {
		t.Run(e.name, func(t *testing.T) {
			err := runStep(t, root, e.script)
			if err == nil {
				t.Fatalf("%s: the run step succeeded", e.script)
			}
			if !strings.Contains(err.Error(), e.why) {
				t.Errorf("%s: error does not say %q:\n%v", e.script, e.why, err)
			}
		})
	}
	if name, _ := os.Hostname(); name != hostName {
		t.Errorf("the host's name changed from %q to %q", hostName, name)
	}
	if victim.ProcessState != nil || victim.Process.Signal(syscall.Signal(0)) != nil {
		t.Error("the host process was killed")
	}
	if b, _ := os.ReadFile(canary); string(b) != "host" {
		t.Errorf("host file = %q", b)
	}
}

// moduleRefusal is what finit_module answers without CAP_SYS_MODULE: EPERM,
// or ENOSYS on a kernel built without modules, which tells the caller
// nothing; TestContainerView then shows the capability is gone anyway.
func moduleRefusal() string {
	// fd -1: with the capability, a kernel with modules answers EBADF.
	_, _, errno := unix.Syscall(unix.SYS_FINIT_MODULE, ^uintptr(0), 0, 0)
	if errno == unix.ENOSYS {
		return "Function not implemented"
	}
	return "Operation not permitted"
}

// hostDiskNode makes, from the host side, a block device node in the
// image for the disk that holds it, as a package could unpack one, and
// returns its path relative to the root.
func hostDiskNode(t *testing.T, root string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(root, &st); err != nil {
		t.Fatal(err)
	}
	rel := "var/tmp/hostdisk"
	if err := unix.Mknod(filepath.Join(root, rel), unix.S_IFBLK|0o600, int(st.Dev)); err != nil {
		t.Fatal(err)
	}
	return rel
}

// runStep runs script as a recipe's run step does: with sh, on stdin.
func runStep(t *testing.T, root, script string) error {
	t.Helper()
	s, err := Open(t.Context(), testImage(t, root, &recipes.Recipe{Name: "t", Suite: "bookworm"}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return s.RunCommand(t.Context(), Command{Argv: []string{"/bin/sh", "-s"}, Stdin: strings.NewReader(script + "\n")})
}

// What a command inside sees: its own namespaces, only its own processes,
// the image's name, and none of the dropped capabilities.
func TestContainerView(t *testing.T) {
	testenv.RequireRoot(t, "namespaces, mounts and chroot of a container")
	root := testfixture.Root(t, testfixture.Bookworm)
	img := testImage(t, root, &recipes.Recipe{Name: "t", Suite: "bookworm"})
	os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("n1\n"), 0o644)
	got := inChroot(t, img, `for n in pid ipc uts mnt; do readlink /proc/self/ns/$n; done; uname -n; ls /proc | grep -c '^[0-9]'; grep CapBnd /proc/self/status; ls /proc/1/root/`)
	lines := strings.Split(got, "\n")
	for i, n := range []string{"pid", "ipc", "uts", "mnt"} {
		host, _ := os.Readlink("/proc/self/ns/" + n)
		if lines[i] == host {
			t.Errorf("the command shares the host's %s namespace (%s)", n, host)
		}
	}
	if lines[4] != "n1" {
		t.Errorf("hostname inside = %q, want the image's n1", lines[4])
	}
	if lines[5] != "4" && lines[5] != "3" { // the helper, sh, ls, grep (the last may be done)
		t.Errorf("%s processes visible inside, want only the command's own", lines[5])
	}
	bnd, host := capBounding(t, lines[6]), capBounding(t, "")
	for c := 0; c < 64; c++ {
		_, keep := keptCaps[c]
		keep = keep && host&(1<<c) != 0 // the host may have fewer
		if has := bnd&(1<<c) != 0; has != keep {
			t.Errorf("capability %d in the bounding set: %v, want %v", c, has, keep)
		}
	}
	if !strings.Contains(got, "\netc\n") || strings.Contains(got, "\nwork\n") {
		t.Errorf("/proc/1/root is not the image:\n%s", got)
	}
}

// capBounding reads a CapBnd line of /proc/PID/status, ours when line is
// empty.
func capBounding(t *testing.T, line string) uint64 {
	t.Helper()
	if line == "" {
		status, _ := os.ReadFile("/proc/self/status")
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "CapBnd:") {
				line = l
			}
		}
	}
	var bnd uint64
	if _, err := fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "CapBnd:")), "%x", &bnd); err != nil {
		t.Fatalf("CapBnd line %q: %v", line, err)
	}
	return bnd
}
