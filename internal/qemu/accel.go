package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Accel is the accelerator a machine runs under, and why it was chosen.
type Accel struct {
	// Name is kvm or tcg (software emulation).
	Name string `json:"accel"`
	Why  string `json:"why,omitempty"`
	// kvmFailed: a KVM is there but does not run guests, which is worth
	// a warning; a host without one is simply TCG's.
	kvmFailed bool
}

// ErrUnknownAccel: KRGIMAGE_QEMU_ACCEL is neither kvm nor tcg. It is
// refused rather than ignored: whoever sets it means to decide, and a typo
// taken for "probe" would boot under what they meant to rule out.
var ErrUnknownAccel = errors.New("not an accelerator (allowed: kvm, tcg; unset probes)")

// KVM reports whether machines run under KVM.
func (a Accel) KVM() bool { return a.Name == "kvm" }

// A probe proves that an accelerator runs guest code the way a boot does:
// the BIOS every boot starts with must reach its first output. A /dev/kvm
// that opens, and even a paused machine that stays up, prove nothing: a
// KVM that cannot run real mode (kvm-pvm) makes every guest triple-fault at
// its first instruction, and QEMU leaves without a word.
type probe struct {
	device string
	qemu   string
	wait   time.Duration
}

// probeArgs start a machine with nothing in it but its firmware and the
// debug port on standard output.
var probeArgs = []string{"-accel", "kvm", "-cpu", "host", "-nodefaults", "-no-reboot", "-m", "32",
	"-display", "none", "-monitor", "none", "-serial", "none",
	"-chardev", "stdio,id=dbg", "-device", "isa-debugcon,iobase=0x402,chardev=dbg"}

// run returns KVM when the device can be opened and a KVM machine's BIOS
// prints, TCG otherwise, saying why.
func (p probe) run(ctx context.Context) Accel {
	f, err := os.OpenFile(p.device, os.O_RDWR, 0)
	if err != nil {
		return Accel{Name: "tcg", Why: fmt.Sprintf("no KVM: %v", unwrapPath(err))}
	}
	f.Close()
	if err := p.firmwareRuns(ctx); err != nil {
		return Accel{Name: "tcg", Why: fmt.Sprintf("%s opens, but KVM cannot run the BIOS: %v", p.device, err), kvmFailed: true}
	}
	return Accel{Name: "kvm", Why: "a KVM machine ran the BIOS"}
}

// firmwareRuns starts a KVM machine and waits for its first byte on the
// debug port.
func (p probe) firmwareRuns(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.qemu, probeArgs...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	_, readErr := io.ReadFull(out, make([]byte, 1))
	timedOut := ctx.Err() != nil
	cancel()
	waitErr := cmd.Wait()
	switch {
	case readErr == nil:
		return nil
	case timedOut:
		return fmt.Errorf("no firmware output within %s", p.wait)
	}
	msg := lastLine(stderr.String())
	if msg == "" && waitErr != nil {
		msg = waitErr.Error()
	}
	if msg == "" {
		return errors.New("the machine stopped at once with no output (a triple fault?)")
	}
	return fmt.Errorf("the machine stopped at once with no output: %s", msg)
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// Choice is an accelerator choice that machines share: probed once, and
// turned to TCG for good when a KVM guest dies with no output after all.
type Choice struct {
	probe  probe
	once   sync.Once
	mu     sync.Mutex
	chosen Accel
	// err is a KRGIMAGE_QEMU_ACCEL that is neither kvm nor tcg.
	err    error
	forced bool
	warned bool
}

// NewChoice is a choice of its own that probes device (a /dev/kvm) with
// the qemu-system-x86_64 on PATH, for tests that fake both; machines
// share the process's otherwise. SeaBIOS, the BIOS of every machine
// booted here, prints its version on the debug port (0x402) within
// milliseconds of the reset: two seconds is plenty.
func NewChoice(device string) *Choice {
	return &Choice{probe: probe{device: device, qemu: "qemu-system-x86_64", wait: 2 * time.Second}}
}

// processChoice is the choice of machines that name none.
var processChoice = NewChoice("/dev/kvm")

// orProcess is c, or for nil the process's choice.
func (c *Choice) orProcess() *Choice {
	if c == nil {
		return processChoice
	}
	return c
}

// Accelerator is the process's choice of accelerator (see
// Choice.Accelerator).
func Accelerator(log *slog.Logger) (Accel, error) { return processChoice.Accelerator(log) }

// Accelerator returns the accelerator machines run under:
// KRGIMAGE_QEMU_ACCEL (kvm or tcg) when set, else KVM when the probe
// proves it runs the BIOS, else TCG; after a KVM guest died with no
// output, TCG. The probe runs once per choice and takes at most two
// seconds. log, when not nil, is told once that KVM was there but could
// not be used. Any other KRGIMAGE_QEMU_ACCEL is ErrUnknownAccel. A nil c
// is the process's choice.
func (c *Choice) Accelerator(log *slog.Logger) (Accel, error) {
	c = c.orProcess()
	c.once.Do(func() {
		switch v := os.Getenv("KRGIMAGE_QEMU_ACCEL"); v {
		case "kvm", "tcg":
			c.chosen, c.forced = Accel{Name: v, Why: "KRGIMAGE_QEMU_ACCEL=" + v}, true
		case "":
			c.chosen = c.probe.run(context.Background())
		default:
			c.err = fmt.Errorf("KRGIMAGE_QEMU_ACCEL=%q: %w", v, ErrUnknownAccel)
		}
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.chosen.kvmFailed {
		c.warn(log)
	}
	return c.chosen, c.err
}

// distrust records that a KVM guest died without output: this machine and
// every later one run under TCG, unless KRGIMAGE_QEMU_ACCEL insists.
func (c *Choice) distrust(log *slog.Logger, why string) (Accel, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.forced {
		return c.chosen, false
	}
	if c.chosen.KVM() {
		c.chosen = Accel{Name: "tcg", Why: why, kvmFailed: true}
	}
	c.warn(log)
	return c.chosen, true
}

// warn says once per choice that boots fall back to TCG.
func (c *Choice) warn(log *slog.Logger) {
	if c.warned || log == nil {
		return
	}
	c.warned = true
	log.Warn("booting under software emulation (TCG), several times slower than KVM", "why", c.chosen.Why)
}
