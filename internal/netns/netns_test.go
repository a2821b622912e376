package netns

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/testenv"
)

// A namespace is collected only when its maker is gone and nothing runs
// in it: a live maker's, or one a process still uses, stays.
func TestCollectTakesOnlyWhatADeadRunLeft(t *testing.T) {
	testenv.RequireRoot(t, "network namespaces")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("krgcollect%d", os.Getpid())
	name := func(pid int, random string) string { return fmt.Sprintf("%s-%d-%s", prefix, pid, random) }
	left, busy, live := name(dead.Process.Pid, "0000aaaa"), name(dead.Process.Pid, "0000bbbb"), name(os.Getpid(), "0000cccc")
	for _, n := range []string{left, busy, live} {
		if err := ip("netns", "add", n); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "delete", n).Run() })
	}
	sleeper := exec.Command("ip", "netns", "exec", busy, "sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	waitFor(t, func() bool {
		o, _ := exec.Command("ip", "netns", "pids", busy).Output()
		return len(strings.TrimSpace(string(o))) > 0
	})

	gone, err := Collect(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gone, []string{left}) {
		t.Fatalf("collected %v, want only %s", gone, left)
	}
	o, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(o), left) || !strings.Contains(string(o), busy) || !strings.Contains(string(o), live) {
		t.Errorf("after Collect:\n%s", o)
	}
}

func TestNewNamesItsMaker(t *testing.T) {
	testenv.RequireRoot(t, "network namespaces")
	ns, err := New("krgname")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Delete()
	if want := fmt.Sprintf("krgname-%d-", os.Getpid()); !strings.HasPrefix(ns.Name, want) || stale("krgname", ns.Name) {
		t.Errorf("name %q: want %s… and not stale while this process runs", ns.Name, want)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for range 100 {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the sleeper never showed up in its namespace")
}
