//go:build unix && !linux

package run

import "syscall"

func ownGroup(attr *syscall.SysProcAttr) { attr.Setpgid = true }
