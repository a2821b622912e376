//go:build unix

package run

import (
	"os/exec"
	"testing"
	"time"
)

// StopGroup ends a helper that obeys SIGTERM at once, and kills one that
// ignores it once the grace period is over.
func TestStopGroup(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		min    time.Duration
		max    time.Duration
	}{
		{"obeys SIGTERM", "echo started; sleep 60 & wait", 0, 250 * time.Millisecond},
		{"ignores SIGTERM", `trap "" TERM; echo started; sleep 60 & wait; sleep 60`, 300 * time.Millisecond, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("/bin/sh", "-c", tc.script)
			cmd.SysProcAttr = GroupAttr()
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if _, err := out.Read(make([]byte, 8)); err != nil { // the trap is set
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			start := time.Now()
			StopGroup(cmd.Process.Pid, done, 300*time.Millisecond)
			if took := time.Since(start); took < tc.min || took > tc.max {
				t.Errorf("StopGroup took %v", took)
			}
		})
	}
}
