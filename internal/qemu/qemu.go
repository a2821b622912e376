// Package qemu boots a machine with qemu-system-x86_64 for boot tests:
// KVM when /dev/kvm can be used, software emulation (TCG) otherwise, the
// serial console captured line by line to a log file and to watchers.
package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/krgimage/krgimage/internal/run"
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
	Firmware string
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
	// ConsoleLog receives everything the serial console prints.
	ConsoleLog string
	Extra      []string
}

// Args is QEMU's command line (without the program name).
func (m Machine) Args() []string {
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
	var a []string
	if m.Name != "" {
		a = append(a, "-name", m.Name)
	}
	a = append(a, "-m", strconv.Itoa(mem), "-smp", "1", "-display", "none", "-monitor", "none", "-serial", "stdio",
		"-no-reboot", "-netdev", netdev+",id=n0", "-device", dev)
	if KVM() {
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
	if m.Firmware != "" {
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

var (
	kvmOnce sync.Once
	kvmOK   bool
)

// KVM reports whether QEMU can use KVM here. /dev/kvm existing is not
// enough (nested virtualization may refuse the host CPU's MSRs), so a
// paused machine is started once to see whether it survives.
// KRGIMAGE_QEMU_ACCEL=tcg or kvm overrides the probe.
func KVM() bool {
	switch os.Getenv("KRGIMAGE_QEMU_ACCEL") {
	case "tcg":
		return false
	case "kvm":
		return true
	}
	kvmOnce.Do(func() {
		f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
		if err != nil {
			return
		}
		f.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-S", "-nodefaults",
			"-display", "none", "-monitor", "none", "-serial", "none")
		_ = cmd.Run()
		// Still running when the probe ends: KVM works.
		kvmOK = ctx.Err() != nil
	})
	return kvmOK
}

// Running is a started machine.
type Running struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	err   error

	mu      sync.Mutex
	lines   []string
	partial string
	waiters []*waiter
}

type waiter struct {
	match func(string) bool
	ch    chan string
	// prompt also matches the unfinished line: a prompt has no newline,
	// while other output may arrive in pieces.
	prompt bool
}

// Start boots m. Stop it with Stop whatever happens.
func Start(m Machine) (*Running, error) {
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, ErrMissing
	}
	argv := append([]string{bin}, m.Args()...)
	if m.Netns != "" {
		argv = append([]string{"ip", "netns", "exec", m.Netns}, argv...)
	}
	r := &Running{done: make(chan struct{})}
	r.cmd = exec.Command(argv[0], argv[1:]...)
	r.cmd.SysProcAttr = run.GroupAttr()
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	r.cmd.Stderr = r.cmd.Stdout
	if r.stdin, err = r.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	var log io.WriteCloser = nopWC{}
	if m.ConsoleLog != "" {
		f, err := os.Create(m.ConsoleLog)
		if err != nil {
			return nil, err
		}
		log = f
	}
	if err := r.cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	go func() {
		defer log.Close()
		// A login prompt ends without a newline: lines are delivered as
		// they complete, and the unfinished one is offered to prompt waiters.
		buf := make([]byte, 4096)
		var partial []byte
		for {
			n, err := out.Read(buf)
			if n > 0 {
				log.Write(buf[:n])
				partial = append(partial, buf[:n]...)
				for {
					i := bytes.IndexByte(partial, '\n')
					if i < 0 {
						break
					}
					r.line(strings.TrimRight(string(partial[:i]), "\r"), true)
					partial = partial[i+1:]
				}
				if len(partial) > 0 {
					r.line(strings.TrimRight(string(partial), "\r"), false)
				}
			}
			if err != nil {
				if len(partial) > 0 {
					r.line(strings.TrimRight(string(partial), "\r"), true)
				}
				break
			}
		}
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	return r, nil
}

type nopWC struct{}

func (nopWC) Write(p []byte) (int, error) { return len(p), nil }
func (nopWC) Close() error                { return nil }

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
		return "", fmt.Errorf("the machine stopped (%v)", r.err)
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

// Send types s on the serial console.
func (r *Running) Send(s string) error {
	_, err := io.WriteString(r.stdin, s)
	return err
}

// Done is closed when QEMU has exited.
func (r *Running) Done() <-chan struct{} { return r.done }

// Stop ends the machine.
func (r *Running) Stop() {
	if r.cmd.Process == nil {
		return
	}
	run.StopGroup(r.cmd.Process.Pid, r.done, 5*time.Second)
}
