//go:build !linux

package run

import (
	"os/exec"
	"syscall"
)

// contain has no PID namespace to offer outside Linux; the command runs in
// its own process group as any other.
func contain(*exec.Cmd, *syscall.SysProcAttr) error { return nil }
