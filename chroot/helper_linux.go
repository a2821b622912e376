package chroot

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The helper is krgimage itself, re-executed (/proc/self/exe) as PID 1 of
// new PID, IPC and UTS namespaces and in a new mount namespace whose "/"
// the Go runtime has already made MS_PRIVATE recursively (container_linux.go
// says what that shuts out). It mounts /proc, /sys and a small /dev inside
// the image, pivots into it, drops capabilities and runs the command. The
// mounts exist only in that namespace and its processes only in that PID
// namespace: a crash or SIGKILL of krgimage leaves neither on the host.

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
	// command to end. (signal.Ignore would be inherited by the command
	// through exec and make it immune too.)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	// A daemon a maintainer script started despite policy-rc.d dies with
	// the namespace's PID 1; killing it first lets the command's status
	// be the last word.
	defer unix.Kill(-1, unix.SIGKILL)
	if err := enterRoot(spec.Root); err != nil {
		fmt.Fprintf(os.Stderr, "krgimage chroot helper: %v\n", err)
		return 125
	}
	if err := setHostname(); err != nil {
		fmt.Fprintf(os.Stderr, "krgimage chroot helper: setting the hostname: %v\n", err)
		return 125
	}
	return runConfined(spec)
}

// runConfined runs the command from a thread whose capabilities were cut,
// so that the command inherits that thread's sets.
func runConfined(spec helperSpec) int {
	runtime.LockOSThread()
	if err := dropCapabilities(); err != nil {
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
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// exec.Command resolved argv[0] before the pivot; it must be found on
	// the image's PATH.
	cmd.Path = spec.Argv[0]
	if !strings.Contains(cmd.Path, "/") {
		cmd.Path = lookPathIn("/", spec.Argv[0], spec.Env)
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
// in the image can reach the host's disks. The mounts go with the
// namespace, so nothing unmounts them.
func mountAPI(root string) error {
	do := func(source, rel, fstype string, flags uintptr, data string) error {
		target, err := ensureDir(root, rel, 0o755)
		if err != nil {
			return err
		}
		if err := unix.Mount(source, target, fstype, flags, data); err != nil {
			return fmt.Errorf("mounting %s on %s: %w", fstype, target, err)
		}
		return nil
	}
	const nosuidNodev = unix.MS_NOSUID | unix.MS_NODEV
	if err := do("proc", "proc", "proc", nosuidNodev|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	if err := do("sysfs", "sys", "sysfs", nosuidNodev|unix.MS_NOEXEC|unix.MS_RDONLY, ""); err != nil {
		return err
	}
	// nodev: the bound devices below are mounts of their own and keep
	// working; a node made in this /dev does not.
	if err := do("tmpfs", "dev", "tmpfs", nosuidNodev, "mode=0755,size=1m"); err != nil {
		return err
	}
	dev := filepath.Join(root, "dev")
	for _, name := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		target := filepath.Join(dev, name)
		if err := ensureFile(target); err != nil {
			return err
		}
		if err := unix.Mount("/dev/"+name, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding /dev/%s: %w", name, err)
		}
	}
	if err := do("devpts", "dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"); err != nil {
		return err
	}
	if err := do("tmpfs", "dev/shm", "tmpfs", nosuidNodev, "mode=1777"); err != nil {
		return err
	}
	for name, target := range map[string]string{"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	return nil
}

// helperAttr starts the helper as PID 1 of new PID, IPC and UTS
// namespaces, in a new mount namespace; it dies with krgimage.
func helperAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags:   syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
		Unshareflags: syscall.CLONE_NEWNS,
		Pdeathsig:    syscall.SIGKILL,
	}
}
