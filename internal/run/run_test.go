package run

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/logging"
)

func TestRunFailureCarriesTail(t *testing.T) {
	r := New(logging.Discard())
	script := `for i in $(seq 1 30); do echo "line $i"; done; echo "the reason" >&2; exit 3`
	err := r.Run(t.Context(), Cmd{Path: "/bin/sh", Args: []string{"-c", script}})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Run() = %v, want *Error", err)
	}
	if e.ExitCode != 3 || len(e.Tail) != TailLines || e.Tail[len(e.Tail)-1] != "the reason" {
		t.Errorf("Error = %+v", e)
	}
	if !strings.Contains(err.Error(), "/bin/sh -c") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("message = %q", err)
	}
}

func TestRunCleanEnvironment(t *testing.T) {
	t.Setenv("KRGIMAGE_SECRET_HOST_VAR", "leak")
	r := New(logging.Discard())
	out, err := r.Output(t.Context(), Cmd{Path: "/usr/bin/env", Env: []string{"EXTRA=1", "LANG=C.UTF-8"}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if strings.Contains(s, "KRGIMAGE_SECRET_HOST_VAR") {
		t.Error("a host variable leaked into the command")
	}
	for _, want := range []string{"LC_ALL=C\n", "EXTRA=1\n", "LANG=C.UTF-8\n", "DEBIAN_FRONTEND=noninteractive\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("environment lacks %q:\n%s", want, s)
		}
	}
	if strings.Count(s, "LANG=") != 1 {
		t.Errorf("LANG appears twice:\n%s", s)
	}
}

func TestRunTimeoutKillsTheGroup(t *testing.T) {
	r := New(logging.Discard())
	r.KillGrace = 500 * time.Millisecond
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The grandchild ignores SIGTERM: only the group SIGKILL stops it.
	script := `sh -c 'trap "" TERM; echo $$ > ` + pidFile + `; sleep 60' & wait`
	start := time.Now()
	err := r.Run(t.Context(), Cmd{Path: "/bin/sh", Args: []string{"-c", script}, Timeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Run() = %v, want ErrTimeout", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
	b, _ := os.ReadFile(pidFile)
	pid := strings.TrimSpace(string(b))
	if pid == "" {
		t.Fatal("grandchild never started")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat("/proc/" + pid); errors.Is(err, os.ErrNotExist) {
			break
		}
		if stat, _ := os.ReadFile("/proc/" + pid + "/stat"); bytes.Contains(stat, []byte(") Z ")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %s outlived the command", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRunCancel(t *testing.T) {
	r := New(logging.Discard())
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	err := r.Run(ctx, Cmd{Path: "/bin/sleep", Args: []string{"30"}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run() = %v, want context.Canceled", err)
	}
}

func TestRunLines(t *testing.T) {
	var got []string
	r := New(logging.Discard())
	err := r.Run(t.Context(), Cmd{Path: "/bin/sh", Args: []string{"-c", "printf 'a\\r\\nb\\n'; echo c >&2"}, Line: func(l string) { got = append(got, l) }})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "a,b,c" {
		t.Errorf("lines = %q", got)
	}
}

func TestCmdString(t *testing.T) {
	c := Cmd{Path: "chroot", Args: []string{"/srv/root", "sh", "-c", "echo 'hi there'", ""}}
	if got, want := c.String(), `chroot /srv/root sh -c 'echo '\''hi there'\''' ''`; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
}
