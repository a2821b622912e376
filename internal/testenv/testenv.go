package testenv

import (
	"fmt"
	"os"
	"testing"
)

// Strict is the environment variable make test sets.
const Strict = "KRGIMAGE_TEST_STRICT"

// Skip skips t, saying why, or fails it under strict mode.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(Strict) != "" {
		t.Fatalf("%s (%s=1: make test runs every test, as root, with what make deps installs)", msg, Strict)
	}
	t.Skip(msg)
}

// RequireRoot skips t, or fails it under strict mode, when not root; why
// says what the test needs root for, so a skip tells what went untested.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root (%s); CI runs as root", why)
	}
}

// Missing reports a host tool a test needs that is not installed. Run by
// hand, the test is skipped; under make test, where make deps installs
// every tool, it fails: a skip there would hide a missing install step.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	Skip(t, "%s; make deps installs it", fmt.Sprintf(format, args...))
}
