//go:build unix && !linux

package run

import "syscall"

func ownGroup(attr *syscall.SysProcAttr) { attr.Setpgid = true }

// GroupAttr is the process attributes of a long-running helper krgimage
// starts itself: its own process group, to stop it whole.
func GroupAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{}
	ownGroup(a)
	return a
}
