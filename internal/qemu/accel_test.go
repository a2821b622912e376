package qemu

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeKVM stands in for a machine with a /dev/kvm and a QEMU on PATH
// whose behaviour under -accel kvm is kvm (shell code); under TCG it
// prints its accelerator and waits. The process's accelerator choice
// starts afresh, and logs go to the returned buffer.
func fakeKVM(t *testing.T, kvm string) (*slog.Logger, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
case " $* " in *" -accel kvm "*) ;; *) echo "running under tcg"; exec sleep 30;; esac
case " $* " in *" isa-debugcon"*) probe=1;; *) probe=;; esac
` + kvm
	if err := os.WriteFile(filepath.Join(dir, "qemu-system-x86_64"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	device := filepath.Join(dir, "kvm")
	if err := os.WriteFile(device, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	t.Setenv("KRGIMAGE_QEMU_ACCEL", "")
	old := processChoice
	processChoice = NewChoice(device)
	t.Cleanup(func() { processChoice = old })
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

// startAndWait boots a fake machine and waits for its console to say s.
func startAndWait(t *testing.T, log *slog.Logger, s string) (*Running, string) {
	t.Helper()
	console := filepath.Join(t.TempDir(), "console-node1.log")
	m, err := Start(Machine{ConsoleLog: console, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	if _, err := m.WaitString(t.Context(), 10*time.Second, s); err != nil {
		t.Fatalf("waiting for %q: %v (console %q)", s, err, m.Lines())
	}
	return m, console
}

// A KVM whose guests die at their first instruction (kvm-pvm's triple
// fault): the probe sees no firmware output, and machines run under TCG,
// with one warning that says why.
func TestKVMThatCannotRunTheBIOS(t *testing.T) {
	log, logs := fakeKVM(t, "exit 0\n")
	start := time.Now()
	a, err := Accelerator(log)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the probe took %s", took)
	}
	if a.Name != "tcg" || !strings.Contains(a.Why, "cannot run the BIOS") || !strings.Contains(a.Why, "no output") {
		t.Fatalf("Accelerator() = %+v, want tcg because KVM cannot run the BIOS", a)
	}
	m, _ := startAndWait(t, log, "running under tcg")
	if got := m.Accel().Name; got != "tcg" {
		t.Errorf("the machine runs under %s", got)
	}
	if n := len(m.Attempts()); n != 1 {
		t.Errorf("%d attempts, want one straight under TCG", n)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "cannot run the BIOS") {
		t.Errorf("want one warning saying why:\n%s", logs)
	}
}

// A KVM that runs the BIOS is kept, and the machine starts under it.
func TestWorkingKVMIsKept(t *testing.T) {
	log, logs := fakeKVM(t, `[ -n "$probe" ] && { printf 'SeaBIOS (version fake)\n'; exec sleep 30; }
echo "running under kvm"; exec sleep 30
`)
	if a, _ := Accelerator(log); a.Name != "kvm" {
		t.Fatalf("Accelerator() = %+v, want kvm", a)
	}
	m, _ := startAndWait(t, log, "running under kvm")
	if got := m.Attempts(); len(got) != 1 || got[0].Accel != "kvm" {
		t.Errorf("attempts %+v, want one under KVM", got)
	}
	if logs.Len() != 0 {
		t.Errorf("nothing to say about a working KVM:\n%s", logs)
	}
}

// A KVM that passes the probe, then a guest that dies with no output: the
// machine starts again under TCG, the KVM console is kept beside the
// other, and every later machine runs under TCG. What QEMU itself says on
// stderr is not the guest's output: it goes to the console log, not to
// the console's lines, and does not stop the fallback.
func TestSilentKVMGuestFallsBackToTCG(t *testing.T) {
	const warning = "qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.01H:ECX.vmx [bit 5]"
	tests := []struct {
		name, kvm, why string
	}{
		{"quiet", "exit 0\n", "no output (QEMU exited with status 0)"},
		{"QEMU warns first", "echo \"" + warning + "\" >&2; exit 1\n", "no output (QEMU exited with status 1: " + warning + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := fakeKVM(t, `[ -n "$probe" ] && { printf 'SeaBIOS\n'; exec sleep 30; }
`+tt.kvm)
			m, console := startAndWait(t, log, "running under tcg")
			at := m.Attempts()
			if len(at) != 2 || at[0].Accel != "kvm" || at[1].Accel != "tcg" || !strings.HasSuffix(at[0].Error, tt.why) {
				t.Fatalf("attempts %+v, want a silent KVM one (%q), then TCG", at, tt.why)
			}
			checkConsoles(t, at, console)
			if a, _ := Accelerator(log); a.Name != "tcg" || !strings.HasSuffix(a.Why, tt.why) {
				t.Errorf("after the fallback Accelerator() = %+v", a)
			}
			if strings.Contains(strings.Join(m.Lines(), "\n"), "warning") {
				t.Errorf("QEMU's stderr among the guest's lines: %q", m.Lines())
			}
			if b, _ := os.ReadFile(at[0].Console); strings.Contains(tt.kvm, warning) && !strings.Contains(string(b), warning) {
				t.Errorf("the KVM attempt's console log holds %q, want what QEMU said on stderr", b)
			}
			startAndWait(t, log, "running under tcg")
			if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
				t.Errorf("%d warnings, want one:\n%s", n, logs)
			}
		})
	}
}

// checkConsoles checks that a fallback kept the KVM attempt's console as
// console-NODE.kvm.log beside the TCG one's console-NODE.log.
func checkConsoles(t *testing.T, at []Attempt, console string) {
	t.Helper()
	if want := strings.TrimSuffix(console, ".log") + ".kvm.log"; at[0].Console != want || at[1].Console != console {
		t.Errorf("consoles %q and %q, want %q and %q", at[0].Console, at[1].Console, want, console)
	}
	if _, err := os.Stat(at[0].Console); err != nil {
		t.Errorf("the KVM attempt's console log: %v", err)
	}
	if b, _ := os.ReadFile(console); !strings.Contains(string(b), "running under tcg") {
		t.Errorf("the console log holds %q", b)
	}
}

// KRGIMAGE_QEMU_ACCEL=kvm insists: no probe, no fallback.
func TestForcedKVMIsNotSecondGuessed(t *testing.T) {
	log, _ := fakeKVM(t, "exit 0\n")
	t.Setenv("KRGIMAGE_QEMU_ACCEL", "kvm")
	if a, _ := Accelerator(log); a.Name != "kvm" || a.Why != "KRGIMAGE_QEMU_ACCEL=kvm" {
		t.Fatalf("Accelerator() = %+v", a)
	}
	m, err := Start(Machine{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the silent KVM guest was started again")
	}
	if n := len(m.Attempts()); n != 1 {
		t.Errorf("%d attempts", n)
	}
	if _, err := m.WaitString(t.Context(), time.Second, "never"); err == nil || !strings.Contains(err.Error(), "the machine stopped (QEMU exited with status 0)") {
		t.Errorf("waiting on the stopped machine: %v", err)
	}
}

// A KRGIMAGE_QEMU_ACCEL that names no accelerator is refused, not
// taken for "probe": no machine starts.
func TestUnknownAccelIsRefused(t *testing.T) {
	log, _ := fakeKVM(t, "exit 0\n")
	t.Setenv("KRGIMAGE_QEMU_ACCEL", "tgc")
	if _, err := Accelerator(log); !errors.Is(err, ErrUnknownAccel) || !strings.Contains(err.Error(), `KRGIMAGE_QEMU_ACCEL="tgc"`) {
		t.Errorf("Accelerator() = %v, want ErrUnknownAccel naming the value", err)
	}
	if _, err := Start(Machine{Log: log}); !errors.Is(err, ErrUnknownAccel) {
		t.Errorf("Start() = %v, want ErrUnknownAccel", err)
	}
}

// A probe machine that hangs without output is given its two seconds.
func TestProbeTimesOut(t *testing.T) {
	fakeKVM(t, "exec sleep 30\n")
	p := processChoice.probe
	p.wait = 300 * time.Millisecond
	start := time.Now()
	a := p.run(t.Context())
	if a.Name != "tcg" || !strings.Contains(a.Why, "no firmware output within 300ms") {
		t.Errorf("probe = %+v", a)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the probe took %s", took)
	}
}

func TestNoKVMDevice(t *testing.T) {
	fakeKVM(t, "exit 0\n")
	p := processChoice.probe
	p.device = filepath.Join(t.TempDir(), "kvm")
	if a := p.run(t.Context()); a.Name != "tcg" || !strings.Contains(a.Why, "no KVM") || !strings.Contains(a.Why, "no such file") {
		t.Errorf("probe = %+v", a)
	}
}
