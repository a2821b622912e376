//go:build unix

package run

import (
	"syscall"
	"time"
)

func signalGroup(pid int, sig syscall.Signal) error { return syscall.Kill(-pid, sig) }

// StopGroup ends the process group of a helper started with GroupAttr:
// SIGTERM, then SIGKILL when done is not closed within grace. done is
// closed once the helper was waited for.
func StopGroup(pid int, done <-chan struct{}, grace time.Duration) {
	_ = signalGroup(pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = signalGroup(pid, syscall.SIGKILL)
		<-done
	}
}
