package nosync

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krgimage/krgimage/internal/testenv"
)

// TestRun starts this test binary as a child under Run:
// its fsync of a closed descriptor answers 0 instead of EBADF, while this
// process's own fsync still fails as it should.
func TestRun(t *testing.T) {
	if os.Getenv("KRGIMAGE_TEST_FSYNC_CHILD") != "" {
		if err := unix.Fsync(-1); err != nil {
			os.Exit(3)
		}
		os.Exit(0)
	}
	if _, ok := noSyncFilter(); !ok {
		testenv.Skip(t, "no seccomp filter for %s", runtime.GOARCH)
	}
	child := func() error {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRun$")
		cmd.Env = append(os.Environ(), "KRGIMAGE_TEST_FSYNC_CHILD=1")
		return cmd.Run()
	}
	if err := child(); err == nil {
		t.Fatal("without the filter, fsync(-1) succeeded in the child")
	}
	if err := Run(child); err != nil {
		t.Errorf("under Run, the child's fsync(-1) failed: %v", err)
	}
	if err := unix.Fsync(-1); !errors.Is(err, unix.EBADF) {
		t.Errorf("fsync(-1) in the test process = %v, want EBADF: the filter leaked", err)
	}
}
