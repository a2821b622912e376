// Package testskip is the one way a test of this project skips: by hand
// it skips, under make test (KRGIMAGE_TEST_STRICT=1, as root, with every
// tool make deps installs) it fails, so that CI never passes a test it
// did not run. It imports nothing of the project, so that every package's
// tests can use it.
package testskip

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

// RequireRoot skips t, or fails it under strict mode, when not root.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root (%s); CI runs as root", why)
	}
}
