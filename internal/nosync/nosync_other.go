//go:build !linux

package nosync

// Run runs start: suppressing syncs needs Linux's seccomp.
func Run(start func() error) error { return start() }
