package run

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/testenv"
)

const parentEnv = "KRGIMAGE_TEST_RUN_PARENT"

// TestContainedParent is not a test: it is the krgimage stand-in that
// TestKilledParentLeavesNoOrphan starts and kills.
func TestContainedParent(t *testing.T) {
	mode := os.Getenv(parentEnv)
	if mode == "" {
		return
	}
	// The grandchild leaves the process group (setsid), as a daemon does,
	// so only the PID namespace can still catch it.
	script := `setsid sleep 300 </dev/null >/dev/null 2>&1 & echo started; sleep 300`
	_ = New(logging.Discard()).Run(t.Context(), Cmd{
		Path: "/bin/sh", Args: []string{"-c", script},
		Env:       []string{"KRGIMAGE_TEST_TOKEN=" + os.Getenv("KRGIMAGE_TEST_TOKEN")},
		Line:      func(l string) { fmt.Println(l) },
		Contained: mode == "contained",
	})
}

// TestKilledParentLeavesNoOrphan kills the parent outright, as an OOM
// kill or a CI timeout does: under Contained nothing the command started
// survives it; without, the detached grandchild does (which shows the
// test can tell).
func TestKilledParentLeavesNoOrphan(t *testing.T) {
	testenv.RequireRoot(t, "a PID namespace")
	for mode, wantOrphan := range map[string]bool{"contained": false, "plain": true} {
		t.Run(mode, func(t *testing.T) {
			token := rand.Text()
			parent := exec.Command(os.Args[0], "-test.run=^TestContainedParent$")
			parent.Env = append(os.Environ(), parentEnv+"="+mode, "KRGIMAGE_TEST_TOKEN="+token)
			out, err := parent.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := parent.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(out)
			for sc.Scan() && sc.Text() != "started" {
			}
			if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = parent.Wait()
			// An orphan, when there is one, is already running.
			wait := 5 * time.Second
			if wantOrphan {
				wait = 500 * time.Millisecond
			}
			orphans := waitForNone(token, wait)
			t.Cleanup(func() {
				for _, pid := range orphans {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			})
			if got := len(orphans) > 0; got != wantOrphan {
				t.Errorf("processes left after the parent was killed: %v, want any: %v", orphans, wantOrphan)
			}
		})
	}
}

// waitForNone returns the processes whose environment holds token, once
// there are none or after d.
func waitForNone(token string, d time.Duration) []int {
	deadline := time.Now().Add(d)
	for {
		pids := withToken(token)
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func withToken(token string) []int {
	needle := []byte("KRGIMAGE_TEST_TOKEN=" + token + "\x00")
	paths, _ := filepath.Glob("/proc/[0-9]*/environ")
	var pids []int
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, needle) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(p, "/proc/%d/environ", &pid); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestContainedCommandReports: under the reaper the command's output,
// status and environment are what they would be without it, and it runs
// in a PID namespace of its own, whose PID 1 is the reaper.
func TestContainedCommandReports(t *testing.T) {
	testenv.RequireRoot(t, "a PID namespace")
	var lines []string
	err := New(logging.Discard()).Run(t.Context(), Cmd{
		Path: "sh", Args: []string{"-c", `echo "pid $$ parent $PPID $EXTRA"; exit 3`},
		Env: []string{"EXTRA=kept"}, Contained: true,
		Line: func(l string) { lines = append(lines, l) },
	})
	var e *Error
	if !errors.As(err, &e) || e.ExitCode != 3 {
		t.Fatalf("Run() = %v, want exit status 3", err)
	}
	if len(lines) != 1 || !strings.HasSuffix(lines[0], " parent 1 kept") {
		t.Errorf("output = %q, want the command a child of PID 1 (the reaper), its environment kept", lines)
	}
	if strings.Contains(e.Error(), "reaper") {
		t.Errorf("the error names the reaper, not the command: %v", e)
	}
}
