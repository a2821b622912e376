//go:build unix

package run

import "syscall"

func signalGroup(pid int, sig syscall.Signal) error { return syscall.Kill(-pid, sig) }
