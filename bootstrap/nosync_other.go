//go:build !linux

package bootstrap

// withoutSync runs start: suppressing syncs needs Linux's seccomp.
func withoutSync(start func() error) error { return start() }
