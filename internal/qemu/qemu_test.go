package qemu

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeQEMU puts a qemu-system-x86_64 on PATH that plays script, a shell
// program standing in for a guest's serial console.
func fakeQEMU(t *testing.T, script string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "qemu-system-x86_64"), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	t.Setenv("KRGIMAGE_QEMU_ACCEL", "tcg")
}

func TestConsolePromptsAndAnswers(t *testing.T) {
	// A login prompt without a newline, an answer arriving in two pieces,
	// and the typed line echoed back.
	fakeQEMU(t, `printf 'Welcome\r\n\033[1mnode1\033[0m login: '
read user
printf 'Password: '
read pw
printf 'root@node1:~# '
read cmd
printf 'echo %s\r\n' "$cmd"
printf 'KRGE1ND'
sleep 0.3
printf ' 0\r\n'
sleep 30
`)
	log := filepath.Join(t.TempDir(), "console.log")
	m, err := Start(Machine{ConsoleLog: log})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	ctx := t.Context()
	contains := func(s string) func(string) bool { return func(l string) bool { return strings.Contains(l, s) } }
	if _, err := m.Wait(ctx, 300*time.Millisecond, contains("login:")); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Wait matched an unfinished line: %v", err)
	}
	l, err := m.WaitPrompt(ctx, 0, 5*time.Second, contains("login:"))
	if err != nil || l != "node1 login: " {
		t.Fatalf("WaitPrompt = %q, %v; want the prompt without its escapes", l, err)
	}
	m.Send("root\n")
	if _, err := m.WaitPrompt(ctx, 0, 5*time.Second, contains("assword:")); err != nil {
		t.Fatal(err)
	}
	mark := m.Mark()
	m.Send("secret\n")
	if _, err := m.WaitPrompt(ctx, mark, 5*time.Second, func(l string) bool { return strings.HasSuffix(l, "# ") }); err != nil {
		t.Fatal(err)
	}
	mark = m.Mark()
	m.Send("hostname\n")
	end, err := m.WaitAfter(ctx, mark, 5*time.Second, func(l string) bool { return strings.HasPrefix(l, "KRGE1ND") })
	if err != nil || end != "KRGE1ND 0" {
		t.Fatalf("WaitAfter = %q, %v; want the whole line", end, err)
	}
	if _, err := m.WaitAfter(ctx, m.Mark(), 200*time.Millisecond, func(l string) bool { return strings.HasPrefix(l, "Welcome") }); !errors.Is(err, ErrTimeout) {
		t.Errorf("WaitAfter saw a line from before its mark: %v", err)
	}
	m.Stop()
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not end the machine")
	}
	b, _ := os.ReadFile(log)
	if !strings.Contains(string(b), "\033[1mnode1") {
		t.Errorf("the console log should keep the raw output, got %q", b)
	}
}

func TestWaitReportsAStoppedMachine(t *testing.T) {
	fakeQEMU(t, "echo 'Kernel panic - not syncing'; exit 1\n")
	m, err := Start(Machine{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	_, err = m.Wait(t.Context(), 10*time.Second, func(l string) bool { return strings.Contains(l, "login:") })
	if err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("Wait = %v; want the machine stopped", err)
	}
	if got := strings.Join(m.Lines(), "|"); got != "Kernel panic - not syncing" {
		t.Errorf("Lines = %q", got)
	}
}

func TestArgsBootMedia(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    Machine
		want string
	}{
		{"cdrom", Machine{CDROM: "/m/node.iso"}, "-cdrom /m/node.iso -boot d"},
		{"usb stick", Machine{USB: "/m/a,b.iso"}, "-drive if=none,id=usb0,format=raw,readonly=on,file=/m/a,,b.iso -device qemu-xhci -device usb-storage,drive=usb0,bootindex=0"},
		{"uefi", Machine{Firmware: "/usr/share/ovmf/OVMF.fd", CDROM: "/m/node.iso"}, "-bios /usr/share/ovmf/OVMF.fd -cdrom /m/node.iso -boot d"},
		{"secure boot", Machine{Firmware: "/o/CODE.secboot.fd", Vars: "/w/vars,1.fd", NetBoot: true},
			"-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on -drive if=pflash,format=raw,unit=0,readonly=on,file=/o/CODE.secboot.fd -drive if=pflash,format=raw,unit=1,file=/w/vars,,1.fd -boot n"},
		{"uefi virtio without QEMU's ROM", Machine{Firmware: "/o/OVMF.fd", NIC: "virtio", NetBoot: true}, "-device virtio-net-pci,netdev=n0,romfile= "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(tt.m.Args(Accel{Name: "tcg"}), " ")
			if !strings.Contains(got, tt.want) {
				t.Errorf("Args() = %q, want it to contain %q", got, tt.want)
			}
		})
	}
}
