package run

import "syscall"

// ownGroup puts the command in its own process group, so that a signal
// reaches everything it started, and has the kernel kill it if krgimage
// dies first.
func ownGroup(attr *syscall.SysProcAttr) {
	attr.Setpgid = true
	attr.Pdeathsig = syscall.SIGKILL
}
