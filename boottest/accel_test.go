package boottest

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/qemu"
	"github.com/krgimage/krgimage/recipes"
)

// fakeQEMU passes the KVM probe, then under KVM warns on stderr (as QEMU
// does about host CPU features) and stops with no guest output, the way
// kvm-pvm's triple fault ends a guest; under TCG it boots to a login
// prompt.
const fakeQEMU = `#!/bin/sh
case " $* " in *" -accel kvm "*) ;; *)
	printf 'PXELINUX 6.04\r\nLinux version 6.1.0\r\nsystemd[1]: Started.\r\nnode1 login: '
	exec sleep 30;;
esac
case " $* " in *" isa-debugcon"*) printf 'SeaBIOS (version fake)\n'; exec sleep 30;; esac
echo "qemu-system-x86_64: warning: host doesn't support requested feature" >&2
exit 0
`

// A boot whose KVM guest fell back to TCG: result.json's top level says
// TCG and why, not the probe's KVM, and the node keeps both attempts'
// consoles.
func TestReportAfterAKVMFallback(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "qemu-system-x86_64"), []byte(fakeQEMU), 0o755); err != nil {
		t.Fatal(err)
	}
	device := filepath.Join(dir, "kvm")
	if err := os.WriteFile(device, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	t.Setenv("KRGIMAGE_QEMU_ACCEL", "")
	var logs bytes.Buffer
	p := &plan{o: Options{Log: slog.New(slog.NewTextHandler(&logs, nil)), Clock: time.Now, Timeout: 20 * time.Second, Accel: qemu.NewChoice(device)},
		r: &recipes.Recipe{Name: "r"}, bt: recipes.DefaultBootTest(), nodes: []recipes.ResolvedNode{{Name: "node1"}}, work: t.TempDir()}
	if a, err := p.o.Accel.Accelerator(p.o.Log); err != nil || !a.KVM() {
		t.Fatalf("the probe chose %+v (%v), want KVM", a, err)
	}
	if _, err := check(t.Context(), p, boot(t.Context(), p, &session{netdevs: []string{"user"}})); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	res := readResult(t, p.work)
	if res.Accel.Name != "tcg" || !strings.Contains(res.Why, "no output (QEMU exited with status 0: qemu-system-x86_64: warning:") {
		t.Errorf("result.json's top level says %+v, want tcg after a KVM guest stopped with no output", res.Accel)
	}
	n := res.Nodes[0]
	if n.Accel != "tcg" || len(n.Attempts) != 2 || n.Attempts[0].Accel != "kvm" || n.Attempts[1].Accel != "tcg" {
		t.Fatalf("node %s ran under %q, attempts %+v; want a KVM one, then TCG", n.Name, n.Accel, n.Attempts)
	}
	for i, name := range []string{"console-node1.kvm.log", "console-node1.log"} {
		if want := filepath.Join(p.work, name); n.Attempts[i].Console != want {
			t.Errorf("attempt %d's console %q, want %q", i, n.Attempts[i].Console, want)
		} else if _, err := os.Stat(want); err != nil {
			t.Errorf("attempt %d's console: %v", i, err)
		}
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"booting under software emulation") {
		t.Errorf("no warning of the fallback:\n%s", logs.String())
	}
}

func readResult(t *testing.T, work string) Result {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(work, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRanUnder(t *testing.T) {
	kvm := qemu.Accel{Name: "kvm", Why: "a KVM machine ran the BIOS"}
	fellBack := qemu.Accel{Name: "tcg", Why: "a KVM guest stopped with no output"}
	node := func(name, accel string) NodeResult { return NodeResult{Name: name, Accel: accel} }
	tests := []struct {
		name  string
		now   qemu.Accel
		nodes []NodeResult
		want  qemu.Accel
	}{
		{"all as chosen", kvm, []NodeResult{node("n1", "kvm"), node("n2", "kvm")}, kvm},
		{"none started", kvm, []NodeResult{node("n1", "")}, kvm},
		{"all fell back", fellBack, []NodeResult{node("n1", "tcg"), node("n2", "tcg")}, fellBack},
		{"one fell back", fellBack, []NodeResult{node("n1", "kvm"), node("n2", "tcg")},
			qemu.Accel{Name: "mixed", Why: "n1 under kvm, n2 under tcg; later machines run under tcg: a KVM guest stopped with no output"}},
		{"KVM, then no TCG", fellBack, []NodeResult{node("n1", "kvm")},
			qemu.Accel{Name: "kvm", Why: "n1 under kvm; later machines run under tcg: a KVM guest stopped with no output"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ranUnder(tt.now, tt.nodes); got != tt.want {
				t.Errorf("ranUnder() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
