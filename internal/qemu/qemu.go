// Package qemu boots a machine with qemu-system-x86_64 for boot tests:
// KVM when a probe proves it runs a BIOS, software emulation (TCG)
// otherwise or when a KVM guest dies without a word, the serial console
// captured line by line to a log file and to watchers.
package qemu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrMissing: QEMU is not installed.
var ErrMissing = errors.New("qemu-system-x86_64 not found: install qemu-system-x86")

// ErrTimeout: the console never showed what was awaited.
var ErrTimeout = errors.New("timed out")

// Machine describes a guest.
type Machine struct {
	// Name is QEMU's -name, which also tells the process apart in ps.
	Name string
	// Kernel, Initrd and Append boot a kernel directly; without Kernel,
	// the machine boots from the network (PXE) or CD-ROM.
	Kernel, Initrd, Append string
	// CDROM boots an ISO image.
	CDROM string
	// USB boots a raw disk image from a USB stick (read-only): a hybrid
	// ISO the way a node without a CD drive boots it.
	USB string
	// Firmware replaces the BIOS: OVMF.fd boots the machine with UEFI.
	// With Vars, it is OVMF's code alone, and Vars the machine's own
	// writable copy of a variable store: with Secure Boot's keys
	// enrolled (OVMF_VARS_4M.ms.fd), the machine boots with Secure Boot
	// on, on a q35 with SMM, which OVMF's Secure Boot build needs to
	// keep its variables from the guest.
	Firmware string
	Vars     string
	// NetBoot boots from the network first (-boot n).
	NetBoot  bool
	MemoryMB int
	// NIC is the emulated card: e1000 (default) or virtio-net-pci.
	NIC string
	MAC string
	// Netdev is QEMU's -netdev value without id (user,..., or tap,...).
	Netdev string
	// Netns runs QEMU inside a network namespace.
	Netns string
	// ConsoleLog receives everything the serial console prints; the
	// console of an attempt under KVM that died is kept beside it (see
	// Running.Attempts).
	ConsoleLog string
	Extra      []string
	// Log, when set, is told once per choice that KVM is there but
	// cannot be used.
	Log *slog.Logger
	// Choice is the accelerator choice the machine shares with others;
	// nil is the process's.
	Choice *Choice
}

// Args is QEMU's command line under accel (without the program name).
func (m Machine) Args(accel Accel) []string {
	mem := m.MemoryMB
	if mem == 0 {
		mem = 512
	}
	nic := m.NIC
	switch nic {
	case "", "e1000":
		nic = "e1000"
	case "virtio":
		nic = "virtio-net-pci"
	}
	netdev := m.Netdev
	if netdev == "" {
		netdev = "user"
	}
	dev := nic + ",netdev=n0"
	if m.MAC != "" {
		dev += ",mac=" + m.MAC
	}
	if m.Firmware != "" && nic == "virtio-net-pci" {
		// OVMF drives the card itself: QEMU's iPXE ROM is unsigned, and
		// Secure Boot refuses it.
		dev += ",romfile="
	}
	var a []string
	if m.Name != "" {
		a = append(a, "-name", m.Name)
	}
	a = append(a, "-m", strconv.Itoa(mem), "-smp", "1", "-display", "none", "-monitor", "none", "-serial", "stdio",
		"-no-reboot", "-netdev", netdev+",id=n0", "-device", dev)
	if accel.KVM() {
		a = append(a, "-accel", "kvm", "-cpu", "host")
	} else {
		a = append(a, "-accel", "tcg", "-cpu", "max")
	}
	if m.Kernel != "" {
		a = append(a, "-kernel", m.Kernel)
		if m.Initrd != "" {
			a = append(a, "-initrd", m.Initrd)
		}
		if m.Append != "" {
			a = append(a, "-append", m.Append)
		}
	}
	switch {
	case m.Vars != "":
		a = append(a, "-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on",
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+optEscape(m.Firmware),
			"-drive", "if=pflash,format=raw,unit=1,file="+optEscape(m.Vars))
	case m.Firmware != "":
		a = append(a, "-bios", m.Firmware)
	}
	switch {
	case m.CDROM != "":
		a = append(a, "-cdrom", m.CDROM, "-boot", "d")
	case m.USB != "":
		a = append(a, "-drive", "if=none,id=usb0,format=raw,readonly=on,file="+optEscape(m.USB),
			"-device", "qemu-xhci", "-device", "usb-storage,drive=usb0,bootindex=0")
	case m.NetBoot:
		a = append(a, "-boot", "n")
	}
	return append(a, m.Extra...)
}

// optEscape escapes a value inside QEMU's KEY=VALUE,... options, where a
// comma is written twice.
func optEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[a-zA-Z]`)

// line records a console line; an unfinished one (complete false) is only
// shown to waiters, and recorded once its newline comes.
func (r *Running) line(l string, complete bool) {
	if strings.IndexByte(l, 0x1b) >= 0 {
		l = ansi.ReplaceAllString(l, "")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if complete {
		r.lines = append(r.lines, l)
		r.partial = ""
	} else {
		r.partial = l
	}
	for _, w := range r.waiters {
		if (complete || w.prompt) && w.match(l) {
			select {
			case w.ch <- l:
			default:
			}
		}
	}
}

// Lines returns the console so far.
func (r *Running) Lines() []string { return r.LinesFrom(0) }

// LinesFrom returns the complete console lines from the nth on, for
// callers that follow the console without copying it all each time.
func (r *Running) LinesFrom(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines[min(n, len(r.lines)):]...)
}

// Wait waits for a complete console line matching match, or for the
// machine to stop, or for the timeout.
func (r *Running) Wait(ctx context.Context, timeout time.Duration, match func(string) bool) (string, error) {
	return r.WaitAfter(ctx, 0, timeout, match)
}

// Mark returns the number of complete console lines so far, for
// WaitAfter.
func (r *Running) Mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lines)
}

// WaitAfter is Wait ignoring the first from lines, so that an answer is
// not mistaken for an older line that looks the same.
func (r *Running) WaitAfter(ctx context.Context, from int, timeout time.Duration, match func(string) bool) (string, error) {
	return r.wait(ctx, &waiter{match: match, ch: make(chan string, 1)}, from, timeout)
}

// WaitPrompt is WaitAfter that also matches the line being written, for
// prompts, which end without a newline.
func (r *Running) WaitPrompt(ctx context.Context, from int, timeout time.Duration, match func(string) bool) (string, error) {
	return r.wait(ctx, &waiter{match: match, ch: make(chan string, 1), prompt: true}, from, timeout)
}

func (r *Running) wait(ctx context.Context, w *waiter, from int, timeout time.Duration) (string, error) {
	match := w.match
	r.mu.Lock()
	seen := append([]string(nil), r.lines[min(from, len(r.lines)):]...)
	if w.prompt {
		seen = append(seen, r.partial)
	}
	for _, l := range seen {
		if l != "" && match(l) {
			r.mu.Unlock()
			return l, nil
		}
	}
	r.waiters = append(r.waiters, w)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		for i, x := range r.waiters {
			if x == w {
				r.waiters = append(r.waiters[:i], r.waiters[i+1:]...)
				break
			}
		}
		r.mu.Unlock()
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l := <-w.ch:
		return l, nil
	case <-r.done:
		select {
		case l := <-w.ch:
			return l, nil
		default:
		}
		r.mu.Lock()
		ended := r.ended
		r.mu.Unlock()
		return "", fmt.Errorf("the machine stopped (%s)", ended)
	case <-t.C:
		return "", fmt.Errorf("%w after %s", ErrTimeout, timeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// WaitString waits for a line containing s.
func (r *Running) WaitString(ctx context.Context, timeout time.Duration, s string) (string, error) {
	return r.Wait(ctx, timeout, func(l string) bool { return strings.Contains(l, s) })
}
