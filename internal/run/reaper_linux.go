package run

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// A contained command runs under a reaper: krgimage itself, re-executed as
// PID 1 of a new PID namespace in a private mount namespace. Whatever the
// command leaves running (dpkg under a killed debootstrap, a daemon a
// maintainer script started) is in that namespace, and the kernel kills
// the whole namespace when its PID 1 dies, which Pdeathsig makes happen
// when krgimage dies, even by SIGKILL. Without it those orphans would go
// on writing into a tree the next build is clearing.

const reaperEnv = "KRGIMAGE_REAPER_ARGV"

func init() {
	spec := os.Getenv(reaperEnv)
	if spec == "" {
		return
	}
	os.Unsetenv(reaperEnv)
	os.Exit(reaperMain(spec))
}

// contain rewrites cmd to start under the reaper.
func contain(cmd *exec.Cmd, attr *syscall.SysProcAttr) error {
	if cmd.Err != nil {
		return cmd.Err
	}
	argv, err := json.Marshal(append([]string{cmd.Path}, cmd.Args[1:]...))
	if err != nil {
		return err
	}
	cmd.Path = "/proc/self/exe"
	cmd.Args = []string{"krgimage-reaper"}
	cmd.Env = append(cmd.Env, reaperEnv+"="+string(argv))
	attr.Cloneflags |= syscall.CLONE_NEWPID
	attr.Unshareflags |= syscall.CLONE_NEWNS
	return nil
}

func reaperMain(spec string) int {
	var argv []string
	if err := json.Unmarshal([]byte(spec), &argv); err != nil || len(argv) == 0 {
		fmt.Fprintf(os.Stderr, "krgimage reaper: bad argv: %v\n", err)
		return 125
	}
	// Signals to the process group reach the command directly; PID 1
	// would ignore them anyway, but only a handler keeps the reaper alive
	// to report the command's status. (signal.Ignore would be inherited
	// through exec.)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer unix.Kill(-1, unix.SIGKILL)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "krgimage reaper: %v\n", err)
		return 127
	}
	return reap(cmd.Process.Pid)
}

// reap waits for every process of the namespace, the orphans reparented to
// PID 1 included, and returns the command's status in the shell's form.
func reap(pid int) int {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 125
		}
		if got != pid {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
}
