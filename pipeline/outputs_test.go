package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/layout"
	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/netboot"
	"github.com/krgimage/krgimage/recipes"
)

// An output step run alone writes what it writes in a build, where the
// layout says, from the image the layout names.
func TestRunOutputStep(t *testing.T) {
	if _, err := os.Stat("/usr/lib/PXELINUX/pxelinux.0"); err != nil {
		testenv.Missing(t, "pxelinux not installed (make deps installs it)")
	}
	r, err := recipes.LoadShipped("bookworm-nfsroot", recipes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	image := t.TempDir()
	for _, v := range []string{"6.1.0-49-amd64", "6.1.0-50-amd64"} {
		os.MkdirAll(filepath.Join(image, "boot"), 0o755)
		os.WriteFile(filepath.Join(image, "boot", "vmlinuz-"+v), []byte("kernel "+v), 0o644)
		os.WriteFile(filepath.Join(image, "boot", "initrd.img-"+v), []byte("initrd"), 0o644)
	}
	lay := layout.New(t.TempDir(), r).At(t.TempDir(), image)
	o := OutputOptions{Recipe: r, Layout: lay, BuildTime: time.Unix(1700000000, 0), Log: logging.Discard()}
	if err := RunOutputStep(t.Context(), "netboot", o); err == nil {
		t.Error("two kernels and no --kernel: the step should not pick one")
	}
	o.Kernel = "6.1.0-50-amd64"
	if err := RunOutputStep(t.Context(), "netboot", o); err != nil {
		t.Fatal(err)
	}
	tftp := filepath.Join(lay.Netboot(), netboot.TFTPRoot(r))
	if b, err := os.ReadFile(filepath.Join(tftp, "boot", "vmlinuz-6.1.0-50-amd64")); err != nil || string(b) != "kernel 6.1.0-50-amd64" {
		t.Errorf("the TFTP tree's kernel: %q, %v", b, err)
	}
	tree, err := NetbootTree(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	for p := range tree.Files {
		if _, err := os.Lstat(filepath.Join(lay.Netboot(), p)); err != nil {
			t.Errorf("NetbootTree has %s, which the step did not write: %v", p, err)
		}
	}
	if err := RunOutputStep(t.Context(), "bootstrap", o); !errors.Is(err, ErrNoSuchStep) {
		t.Errorf("RunOutputStep(bootstrap) = %v, want ErrNoSuchStep", err)
	}
}
