package chroot

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The helper is krgimage itself, re-executed (/proc/self/exe) in a new
// mount namespace whose "/" the Go runtime has already made MS_PRIVATE
// recursively. It mounts /proc, /sys and a small /dev inside the image,
// runs the command chrooted, unmounts deepest first and exits with the
// command's status. Because the mounts exist only in that namespace, a
// crash or SIGKILL of krgimage cannot leave them on the host.

const helperEnv = "KRGIMAGE_CHROOT_HELPER"

// helperSpec is what the parent passes to the helper.
type helperSpec struct {
	Root string   `json:"root"`
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
}

func init() {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		return
	}
	os.Unsetenv(helperEnv)
	os.Exit(helperMain(spec))
}

func helperMain(specJSON string) int {
	var spec helperSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil || len(spec.Argv) == 0 || !filepath.IsAbs(spec.Root) {
		fmt.Fprintf(os.Stderr, "krgimage chroot helper: bad spec: %v\n", err)
		return 125
	}
	// The whole process group gets the signals; the helper waits for the
	// command to end, then unmounts. (signal.Ignore would be inherited by
	// the command through exec and make it immune too.)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	mounted, err := mountAPI(spec.Root)
	defer func() {
		killChrooted(spec.Root)
		unmountAll(mounted)
	}()
	if err != nil {
		fmt.Fprintf(os.Stderr, "krgimage chroot helper: %v\n", err)
		return 125
	}
	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	cmd.Env = spec.Env
	cmd.Dir = spec.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: spec.Root, Pdeathsig: syscall.SIGKILL}
	// exec.Command resolves argv[0] on the host's PATH; inside the image
	// it must be found in the image's.
	cmd.Path = spec.Argv[0]
	if !strings.Contains(cmd.Path, "/") {
		cmd.Path = lookPathIn(spec.Root, spec.Argv[0], spec.Env)
	}
	cmd.Err = nil
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return exit.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "krgimage chroot helper: %v\n", err)
		return 127
	}
	return 0
}

// lookPathIn finds name on the PATH of env, inside root.
func lookPathIn(root, name string, env []string) string {
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(filepath.Join(root, p)); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}

type mount struct {
	target string
	kind   string // for messages
}

// ensureDir makes sure p, inside root, is a real directory: a symlink
// planted in the image must not redirect a mount onto the host.
func ensureDir(root, rel string, perm os.FileMode) (string, error) {
	p := root
	for _, c := range strings.Split(strings.Trim(rel, "/"), "/") {
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := os.Mkdir(p, perm); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case !fi.IsDir():
			return "", fmt.Errorf("%w: %s is not a directory in the image", ErrUnsafePath, strings.TrimPrefix(p, root))
		}
	}
	return p, nil
}

func ensureFile(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrUnsafePath, path)
	}
	return nil
}

// mountAPI mounts the filesystems package scripts expect. /dev is a fresh
// tmpfs holding only the harmless devices, bound from the host, so nothing
// in the image can reach the host's disks.
func mountAPI(root string) ([]mount, error) {
	var done []mount
	do := func(source, rel, fstype string, flags uintptr, data string) error {
		target, err := ensureDir(root, rel, 0o755)
		if err != nil {
			return err
		}
		if err := unix.Mount(source, target, fstype, flags, data); err != nil {
			return fmt.Errorf("mounting %s on %s: %w", fstype, target, err)
		}
		done = append(done, mount{target: target, kind: fstype})
		return nil
	}
	const nosuid = unix.MS_NOSUID | unix.MS_NODEV
	if err := do("proc", "proc", "proc", nosuid|unix.MS_NOEXEC, ""); err != nil {
		return done, err
	}
	if err := do("sysfs", "sys", "sysfs", nosuid|unix.MS_NOEXEC|unix.MS_RDONLY, ""); err != nil {
		return done, err
	}
	if err := do("tmpfs", "dev", "tmpfs", unix.MS_NOSUID, "mode=0755,size=1m"); err != nil {
		return done, err
	}
	dev := filepath.Join(root, "dev")
	for _, name := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		target := filepath.Join(dev, name)
		if err := ensureFile(target); err != nil {
			return done, err
		}
		if err := unix.Mount("/dev/"+name, target, "", unix.MS_BIND, ""); err != nil {
			return done, fmt.Errorf("binding /dev/%s: %w", name, err)
		}
		done = append(done, mount{target: target, kind: "bind"})
	}
	if err := do("devpts", "dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"); err != nil {
		return done, err
	}
	if err := do("tmpfs", "dev/shm", "tmpfs", nosuid, "mode=1777"); err != nil {
		return done, err
	}
	for name, target := range map[string]string{"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return done, err
		}
	}
	return done, nil
}

// unmountAll unmounts in reverse order, which is deepest first.
func unmountAll(ms []mount) {
	for i := len(ms) - 1; i >= 0; i-- {
		if err := unix.Unmount(ms[i].target, 0); err != nil {
			_ = unix.Unmount(ms[i].target, unix.MNT_DETACH)
		}
	}
}

// killChrooted kills whatever still runs inside root: a daemon a
// maintainer script started despite policy-rc.d would otherwise keep the
// namespace, and the image, busy.
func killChrooted(root string) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if link, err := os.Readlink(filepath.Join("/proc", e.Name(), "root")); err == nil && link == root {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// helperAttr starts the helper in a new mount namespace.
func helperAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
}
