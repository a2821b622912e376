package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/krgimage/krgimage/internal/testenv"
)

// krgimage is the binary under test, built once for the package.
var krgimage string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "krgimage-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	krgimage = filepath.Join(dir, "krgimage")
	build := exec.Command("go", "build", "-o", krgimage, "../cmd/krgimage")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building krgimage:", err)
		os.Exit(1)
	}
	code := m.Run()
	removeImages()
	os.RemoveAll(dir)
	os.Exit(code)
}

func requireRoot(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t, "debootstrap, chroot and mounts")
}
