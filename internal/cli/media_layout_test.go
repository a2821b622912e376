package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/testenv"
)

// krgimage media finds the image root where the recipe's outputs.rootfs
// puts it, with no OUT/rootfs to lead it there, and writes the medium
// under the recipe's file name in the output directory.
func TestMediaFollowsOutputsRootfs(t *testing.T) {
	if _, err := os.Stat("/usr/lib/ISOLINUX/isolinux.bin"); err != nil {
		testenv.Missing(t, "isolinux not installed (make deps installs it)")
	}
	shipped, err := os.ReadFile(filepath.Join("..", "..", "recipes", "bookworm-nfsroot.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	image := fakeImage(t, "6.1.0-50-amd64")
	recipe := filepath.Join(t.TempDir(), "elsewhere.yaml")
	text := strings.Replace(string(shipped), "\noutputs:\n", "\noutputs:\n  rootfs: "+image+"\n", 1)
	if text == string(shipped) {
		t.Fatal("the shipped recipe has no outputs: section to extend")
	}
	if err := os.WriteFile(recipe, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, stdout, stderr := execute(t, "media", out, "--recipe", recipe)
	want := filepath.Join(out, "bookworm-nfsroot.iso")
	if code != ExitOK || strings.TrimSpace(stdout) != want {
		t.Fatalf("media: exit %d: %s%s", code, stdout, stderr)
	}
	if fi, err := os.Stat(want); err != nil || fi.Size() == 0 {
		t.Errorf("no medium at %s: %v", want, err)
	}
	// Without outputs.rootfs the same command looks in OUT/rootfs, which
	// is not there.
	if code, _, stderr := execute(t, "media", t.TempDir(), "--recipe", "bookworm-nfsroot"); code != ExitFailure || !strings.Contains(stderr, "build the image first") {
		t.Errorf("no OUT/rootfs: exit %d: %s", code, stderr)
	}
}
