package nosync

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Run runs start, which must start its processes from the calling
// goroutine, with fsync and its relatives turned into no-ops for those
// processes and their children: systemd-nspawn's --suppress-sync, by the
// same means (a seccomp filter that answers 0).
//
// dpkg syncs its database a dozen times per package even with
// --force-unsafe-io. On a disk other jobs share, each sync waits for the
// file system journal to commit everyone's data, and the syncs become most
// of the install time. They buy nothing in a build: an image the machine
// does not survive is built again, and a finished one is synced once
// before it takes its name.
//
// The filter is installed on a locked OS thread that is discarded
// afterwards; processes forked from it inherit the filter, krgimage's own
// other threads do not. When the filter cannot be installed (an unknown
// architecture, an old kernel) start runs unchanged.
func Run(start func() error) error {
	prog, ok := noSyncFilter()
	if !ok {
		return start()
	}
	errc := make(chan error, 1)
	go func() {
		// Left locked: a thread that carries the filter (or no_new_privs)
		// must not run other goroutines, and the runtime ends it when
		// this goroutine returns.
		runtime.LockOSThread()
		if tainted := installFilter(prog); !tainted {
			runtime.UnlockOSThread()
		}
		errc <- start()
	}()
	return <-errc
}

// installFilter applies prog to the calling thread and reports whether the
// thread was changed. Without CAP_SYS_ADMIN (tests run unprivileged) the
// kernel first wants no_new_privs, which then binds this thread and its
// children only.
func installFilter(prog []unix.SockFilter) bool {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	set := func() error {
		return unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0)
	}
	err := set()
	if err == nil {
		return true
	}
	if err != unix.EACCES {
		return false
	}
	if unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != nil {
		return false
	}
	set()
	return true
}

// noSyncFilter returns the seccomp program: for this architecture's
// system calls, fsync, fdatasync, sync, syncfs, sync_file_range and msync
// return 0 at once; everything else, and other architectures' calls (an
// i386 program on amd64), proceed.
func noSyncFilter() ([]unix.SockFilter, bool) {
	arch, ok := auditArch[runtime.GOARCH]
	if !ok {
		return nil, false
	}
	nrs := []uint32{unix.SYS_FSYNC, unix.SYS_FDATASYNC, unix.SYS_SYNC, unix.SYS_SYNCFS, unix.SYS_MSYNC, syncFileRange}
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
		// struct seccomp_data: nr at 0, arch at 4.
		offNr, offArch = 0, 4
	)
	n := uint8(len(nrs))
	prog := []unix.SockFilter{
		{Code: ld, K: offArch},
		{Code: jeq, K: arch, Jt: 0, Jf: n + 1}, // other architecture: allow
		{Code: ld, K: offNr},
	}
	for i, nr := range nrs {
		// On a match jump to the "return 0" after the allow.
		prog = append(prog, unix.SockFilter{Code: jeq, K: nr, Jt: n - uint8(i), Jf: 0})
	}
	prog = append(prog,
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ALLOW},
		// errno 0: the call "succeeds" without doing anything.
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ERRNO},
	)
	return prog, true
}

// auditArch is the AUDIT_ARCH_* value seccomp reports for the host's own
// system calls.
var auditArch = map[string]uint32{
	"amd64":   unix.AUDIT_ARCH_X86_64,
	"arm64":   unix.AUDIT_ARCH_AARCH64,
	"386":     unix.AUDIT_ARCH_I386,
	"ppc64le": unix.AUDIT_ARCH_PPC64LE,
	"s390x":   unix.AUDIT_ARCH_S390X,
	"riscv64": unix.AUDIT_ARCH_RISCV64,
}
