package run

import "syscall"

// ownGroup puts the command in its own process group, so that a signal
// reaches everything it started, and has the kernel kill it if krgimage
// dies first.
func ownGroup(attr *syscall.SysProcAttr) {
	attr.Setpgid = true
	attr.Pdeathsig = syscall.SIGKILL
}

// GroupAttr is the process attributes of a long-running helper krgimage
// starts itself (a server, a virtual machine): its own process group, to
// stop it whole, and killed if krgimage dies.
func GroupAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{}
	ownGroup(a)
	return a
}
