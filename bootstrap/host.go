package bootstrap

import (
	"net/http"
	"os"
	"strings"
	"time"
)

// Host answers what preflight needs to know about the build machine.
// Tests replace it to simulate other hosts.
type Host interface {
	Geteuid() int
	// Machine is uname -m: x86_64, i686, aarch64...
	Machine() string
	// Binfmt reports whether binfmt_misc runs binaries of a QEMU
	// architecture (aarch64, arm, ...) through an emulator.
	Binfmt(qemuArch string) bool
	HTTP() *http.Client
}

type systemHost struct{ client *http.Client }

// SystemHost describes the machine krgimage runs on.
func SystemHost() Host {
	return systemHost{client: &http.Client{Timeout: 20 * time.Second}}
}

func (systemHost) Geteuid() int         { return os.Geteuid() }
func (systemHost) Machine() string      { return machine() }
func (h systemHost) HTTP() *http.Client { return h.client }

func (systemHost) Binfmt(qemuArch string) bool {
	b, err := os.ReadFile("/proc/sys/fs/binfmt_misc/qemu-" + qemuArch)
	return err == nil && strings.HasPrefix(string(b), "enabled")
}

// native lists the Debian architectures each kernel machine type runs
// without emulation.
var native = map[string][]string{
	"x86_64":  {"amd64", "i386"},
	"i386":    {"i386"},
	"i486":    {"i386"},
	"i586":    {"i386"},
	"i686":    {"i386"},
	"aarch64": {"arm64", "armhf", "armel"},
	"armv7l":  {"armhf", "armel"},
	"armv6l":  {"armel"},
	"ppc64le": {"ppc64el"},
	"ppc":     {"powerpc"},
	"s390x":   {"s390x"},
	"riscv64": {"riscv64"},
	"mips64":  {"mips64el"},
	"ia64":    {"ia64"},
	"alpha":   {"alpha"},
	"parisc":  {"hppa"},
	"sparc64": {"sparc"},
}

func canRunNatively(machine, arch string) bool {
	for _, a := range native[machine] {
		if a == arch {
			return true
		}
	}
	return false
}

func is32bitX86(machine string) bool {
	switch machine {
	case "i386", "i486", "i586", "i686":
		return true
	}
	return false
}

// qemuArch maps a Debian architecture to QEMU's name for it.
func qemuArch(arch string) string {
	switch arch {
	case "amd64":
		return "x86_64"
	case "i386":
		return "i386"
	case "arm64":
		return "aarch64"
	case "armhf", "armel":
		return "arm"
	case "ppc64el":
		return "ppc64le"
	case "powerpc":
		return "ppc"
	case "mips64el":
		return "mips64el"
	}
	return arch
}
