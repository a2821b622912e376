package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/testenv"
)

// krgimage media writes the same bytes for the same build, from
// SOURCE_DATE_EPOCH or else from the build's time in build.json.
func TestMedia(t *testing.T) {
	for _, p := range []string{"/usr/lib/ISOLINUX/isolinux.bin", "/usr/lib/ipxe/ipxe.lkrn", "/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed"} {
		if _, err := os.Stat(p); err != nil {
			testenv.Missing(t, "%s not installed (make deps installs isolinux, ipxe and grub-efi-amd64-signed)", p)
		}
	}
	out := t.TempDir()
	if err := os.Symlink(fakeImage(t, "6.1.0-50-amd64"), filepath.Join(out, "rootfs")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(out, "build.json"), []byte(`{"recipe": {"name": "bookworm-nfsroot"}, "started": "2023-11-14T22:20:00Z", "build_time": "2023-11-14T22:13:20Z"}`), 0o644)
	dir := t.TempDir()
	iso := func(name string, args ...string) []byte {
		t.Helper()
		dst := filepath.Join(dir, name)
		code, stdout, stderr := execute(t, append([]string{"media", out, "--recipe", "bookworm-nfsroot", "-o", dst}, args...)...)
		if code != ExitOK || strings.TrimSpace(stdout) != dst {
			t.Fatalf("media %v: exit %d: %s%s", args, code, stdout, stderr)
		}
		b, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := iso("a.iso", "--uefi")
	b := iso("b.iso", "--uefi")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	c := iso("c.iso", "--uefi")
	if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
		t.Error("the same build gave different media")
	}
	if len(iso("ipxe.iso", "--kind", "ipxe")) >= len(a) {
		t.Error("an ipxe medium should be far smaller than one with the kernel")
	}
	for _, args := range [][]string{{"--kind", "ipxe", "--uefi"}, {"--kind", "pxe"}} {
		code, _, stderr := execute(t, append([]string{"media", out, "--recipe", "bookworm-nfsroot"}, args...)...)
		if code != ExitUsage {
			t.Errorf("media %v: exit %d, want %d: %s", args, code, ExitUsage, stderr)
		}
	}
	if code, _, stderr := execute(t, "media", t.TempDir(), "--recipe", "bookworm-nfsroot"); code != ExitFailure || !strings.Contains(stderr, "build the image first") {
		t.Errorf("no image: exit %d: %s", code, stderr)
	}
}
