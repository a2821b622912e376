package boottest

import (
	"strings"
	"sync"
	"time"
)

// Phases of a network boot, in order.
const (
	PhaseStart     = "qemu"
	PhaseLoader    = "loader"
	PhaseKernel    = "kernel"
	PhaseInitramfs = "initramfs"
	PhaseNetwork   = "network"
	PhaseNFS       = "nfs"
	PhaseInit      = "init"
	PhaseLogin     = "login"
	PhaseChecks    = "checks"
)

var order = []string{PhaseStart, PhaseLoader, PhaseKernel, PhaseInitramfs, PhaseNetwork, PhaseNFS, PhaseInit, PhaseLogin, PhaseChecks}

// markers are what the console says when a phase is reached, for
// krgimage's initramfs, initramfs-tools' and a kernel mounting the root
// itself.
var markers = []struct {
	phase string
	text  []string
}{
	// The loader phase starts with the network boot's first stage: iPXE
	// (QEMU's BIOS ROM) or OVMF's PXE or HTTP boot client.
	{PhaseLoader, []string{"PXELINUX ", "ISOLINUX ", "iPXE ", ">>Start PXE over IPv4", ">>Start HTTP Boot over IPv4", "krgimage: GRUB loading"}},
	{PhaseKernel, []string{"Linux version "}},
	{PhaseInitramfs, []string{"krgimage-initramfs: starting", "Loading, please wait", "Run /init as init process"}},
	{PhaseNetwork, []string{"krgimage-initramfs: network up", "IP-Config: Complete", "IP-Config: Got DHCP answer"}},
	{PhaseNFS, []string{"krgimage-initramfs: NFS root mounted", "VFS: Mounted root (nfs", "nfs-bottom"}},
	{PhaseInit, []string{"krgimage-initramfs: switching to", "systemd[1]:", "Welcome to Debian", "INIT: version"}},
}

// failures are console lines that announce a problem. A fatal one ends
// the boot (a panicked kernel never reboots); the others may be retried by
// the initramfs.
var failures = []struct {
	text  string
	fatal bool
}{
	{"krgimage-initramfs: ERROR:", false},
	{"Initramfs unpacking failed", false},
	{"VFS: Unable to mount root fs", false},
	{"Kernel panic", true},
	{"krgimage-initramfs: giving up", true},
	// OVMF has tried every boot option, the network's included.
	{"BdsDxe: No bootable option", true},
}

// tracker follows a node's console and remembers how far the boot got.
type tracker struct {
	mu      sync.Mutex
	start   time.Time
	reached map[string]time.Duration
	last    string
	failure string
	// lastInitramfs is the initramfs's last message, for errors.
	lastInitramfs string
}

func newTracker(start time.Time) *tracker {
	return &tracker{start: start, reached: map[string]time.Duration{PhaseStart: 0}, last: PhaseStart}
}

func index(phase string) int {
	for i, p := range order {
		if p == phase {
			return i
		}
	}
	return -1
}

// reach records a phase (and those before it) as reached now.
func (t *tracker) reach(phase string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.reached[phase]; !ok {
		t.reached[phase] = at.Sub(t.start)
	}
	if index(phase) > index(t.last) {
		t.last = phase
	}
}

// line feeds a console line and says whether it announced a problem.
func (t *tracker) line(l string, at time.Time) int {
	if strings.Contains(l, "krgimage-initramfs:") {
		t.mu.Lock()
		t.lastInitramfs = strings.TrimSpace(l[strings.Index(l, "krgimage-initramfs:"):])
		t.mu.Unlock()
	}
	for _, m := range markers {
		for _, s := range m.text {
			if strings.Contains(l, s) {
				t.reach(m.phase, at)
			}
		}
	}
	worst := noProblem
	if t.loaderFailed(l) {
		worst = fatalProblem
	}
	for _, f := range failures {
		if !strings.Contains(l, f.text) {
			continue
		}
		t.mu.Lock()
		if t.failure == "" {
			t.failure = strings.TrimSpace(l)
		}
		t.mu.Unlock()
		if f.fatal {
			worst = fatalProblem
		} else {
			worst = max(worst, problem)
		}
	}
	return worst
}

// A console line is no problem, a problem the boot may recover from, or
// the end of the boot.
const (
	noProblem = iota
	problem
	fatalProblem
)

// Last is the furthest phase reached.
func (t *tracker) Last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// Timeline lists the phases reached with their times since start.
func (t *tracker) Timeline() []PhaseTime {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []PhaseTime
	for _, p := range order {
		if d, ok := t.reached[p]; ok {
			out = append(out, PhaseTime{Phase: p, Seconds: d.Seconds()})
		}
	}
	return out
}

// explain says in one line where and why a boot stopped.
func (t *tracker) explain(cause string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	last := t.last
	msg := t.failure
	if msg == "" && index(last) < index(PhaseInit) {
		// Past init, the initramfs's last word says nothing about the stop.
		msg = t.lastInitramfs
	}
	var what string
	switch last {
	case PhaseStart:
		what = "nothing booted (no PXE answer, or no boot loader on the serial console)"
	case PhaseLoader:
		what = "the boot loader ran but the kernel did not start (kernel or initramfs missing from TFTP or HTTP?)"
	case PhaseKernel:
		what = "the kernel started but the initramfs did not run"
	case PhaseInitramfs:
		what = "the initramfs started but the network did not come up"
	case PhaseNetwork:
		what = "the network came up but NFS mount failed"
	case PhaseNFS:
		what = "the NFS root was mounted but init did not start"
	case PhaseInit:
		what = "init started but the login prompt never came"
	case PhaseLogin:
		what = "at the login prompt"
	default:
		what = "stopped after " + last
	}
	out := what
	if msg != "" {
		out += ": " + msg
	}
	if cause != "" {
		out += " (" + cause + ")"
	}
	return out
}

// loaderFailed says whether l is pxelinux giving up on a file ("Loading
// boot/vmlinuz... failed: No such file or directory"): it then waits at
// its boot: prompt for ever, so the boot is over.
func (t *tracker) loaderFailed(l string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last != PhaseLoader || !strings.Contains(l, "Loading ") || !strings.Contains(l, "... failed: ") {
		return false
	}
	if t.failure == "" {
		t.failure = strings.TrimSpace(l)
	}
	return true
}
