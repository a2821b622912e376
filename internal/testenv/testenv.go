package testenv

import (
	"fmt"
	"testing"

	"github.com/krgimage/krgimage/internal/testskip"
)

// RequireRoot skips t when not running as root (testskip.Skip: it fails
// under make test, which CI runs as root).
func RequireRoot(t testing.TB) {
	t.Helper()
	testskip.RequireRoot(t, "debootstrap, chroot, mounts")
}

// Missing reports a host tool a test needs that is not installed. Run by
// hand, the test is skipped; under make test, where make deps installs
// every tool, it fails: a skip there would hide a missing install step.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	testskip.Skip(t, "%s; make deps installs it", fmt.Sprintf(format, args...))
}
