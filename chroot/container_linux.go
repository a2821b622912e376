package chroot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A chroot session is a small container, after systemd-nspawn and
// bubblewrap: the helper is PID 1 of its own PID namespace (so /proc
// shows only the image's processes and its exit kills them all), has its
// own IPC and UTS namespaces, pivots into the image so no path leads back
// to the host's tree, and runs the command with a capability bounding set
// cut to what package scripts use.

// keptCaps are the capabilities a command inside the image keeps: what
// dpkg, maintainer scripts and a kernel build use (ownership, modes,
// setuid binaries, file capabilities, chroot, signals to its own
// processes). Everything else is dropped, notably module loading
// (SYS_MODULE), reboot (SYS_BOOT), raw I/O and /dev/mem (SYS_RAWIO), the
// clock (SYS_TIME, WAKE_ALARM), device nodes (MKNOD), mounts, swap and
// namespaces (SYS_ADMIN: it would also undo the read-only /sys and
// /proc/sys), the host's network configuration (NET_ADMIN, NET_RAW),
// open_by_handle_at, which reaches any file of a filesystem whatever the
// root (DAC_READ_SEARCH, the "shocker" escape), immutable flags that
// would stop krgimage removing the tree (LINUX_IMMUTABLE), the kernel log,
// audit control, BPF and perf.
var keptCaps = map[int]string{
	unix.CAP_CHOWN:            "CHOWN",
	unix.CAP_DAC_OVERRIDE:     "DAC_OVERRIDE",
	unix.CAP_FOWNER:           "FOWNER",
	unix.CAP_FSETID:           "FSETID",
	unix.CAP_KILL:             "KILL",
	unix.CAP_SETGID:           "SETGID",
	unix.CAP_SETUID:           "SETUID",
	unix.CAP_SETPCAP:          "SETPCAP",
	unix.CAP_SETFCAP:          "SETFCAP",
	unix.CAP_NET_BIND_SERVICE: "NET_BIND_SERVICE",
	unix.CAP_IPC_OWNER:        "IPC_OWNER",
	unix.CAP_SYS_CHROOT:       "SYS_CHROOT",
	unix.CAP_SYS_PTRACE:       "SYS_PTRACE",
	unix.CAP_SYS_RESOURCE:     "SYS_RESOURCE",
	unix.CAP_LEASE:            "LEASE",
	unix.CAP_AUDIT_WRITE:      "AUDIT_WRITE",
}

// enterRoot makes root the whole filesystem of the helper's mount
// namespace. The image is bound on itself with nodev, so a device node
// made or unpacked in it cannot be opened, then pivot_root puts it at /
// and the host's tree is detached: unlike chroot, there is no ".." or
// second chroot that leads out.
func enterRoot(root string) error {
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("binding the image root: %w", err)
	}
	if err := unix.Mount("", root, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("making the image root nodev: %w", err)
	}
	if err := mountAPI(root); err != nil {
		return err
	}
	if err := protectProc(filepath.Join(root, "proc")); err != nil {
		return err
	}
	if err := unix.Chdir(root); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root on the new one; detaching
	// it leaves only the image.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root into %s: %w", root, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's root: %w", err)
	}
	return unix.Chdir("/")
}

// protectProc makes the parts of /proc that act on the whole host
// read-only: /proc/sys (core_pattern runs a program as root on the host),
// /proc/sysrq-trigger (reboots it) and the hardware knobs. Without
// SYS_ADMIN the command cannot remount them.
func protectProc(proc string) error {
	for _, name := range []string{"sys", "sysrq-trigger", "irq", "bus", "fs"} {
		p := filepath.Join(proc, name)
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := unix.Mount(p, p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding /proc/%s: %w", name, err)
		}
		flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if err := unix.Mount("", p, "", flags, ""); err != nil {
			return fmt.Errorf("making /proc/%s read-only: %w", name, err)
		}
	}
	return nil
}

// setHostname names the UTS namespace after the image (its
// /etc/hostname, else localhost): package scripts that record the
// machine's name (ssh host key comments, mail names) see the node's, not
// the build host's.
func setHostname() error {
	name := "localhost"
	if b, err := os.ReadFile("/etc/hostname"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 && validHostname(f[0]) {
			name = f[0]
		}
	}
	return unix.Sethostname([]byte(name))
}

func validHostname(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return s != ""
}

// dropCapabilities cuts the calling thread's bounding, inheritable and
// ambient sets to keptCaps. All three are per thread: the caller locks
// itself to its thread and starts the command from it, which inherits
// them; as root, exec then grants exactly the bounding set.
func dropCapabilities() error {
	last, err := lastCap()
	if err != nil {
		return err
	}
	for c := 0; c <= last; c++ {
		if _, keep := keptCaps[c]; keep {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("dropping capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clearing inheritable capabilities: %w", err)
	}
	return nil
}

func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
