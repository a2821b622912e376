package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/recipes"
)

// A recipe's netboot.media adds the media step after the boot server's
// files; it writes the ISO into the output with the kernel and initramfs
// the earlier steps left.
func TestMediaStep(t *testing.T) {
	r, err := recipes.Parse([]byte(`name: lab
suite: bookworm
cluster: {server: {ip: 10.0.0.1}, subnet: 10.0.0.0/24, nodes: [{name: n1, ip: 10.0.0.11}]}
nfsroot: {path: /srv/lab}
initramfs: {output: /boot/krg-initrd-VERSION}
netboot: {media: {uefi: true}}
`), "lab.yaml", recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var media BuildStep
	for _, s := range Steps(r) {
		names = append(names, s.Name())
		if s.Name() == "media" {
			media = s
		}
	}
	if got := strings.Join(names, " "); !strings.HasSuffix(got, "netboot media") {
		t.Fatalf("steps = %s, want media after netboot", got)
	}
	out := t.TempDir()
	env := &Env{Recipe: r, Root: t.TempDir(), Out: out, FinalOut: "/srv/out", Log: logging.Discard(),
		BuildTime: time.Unix(1700000000, 0), State: &State{KernelVersion: "6.1.0-50-amd64", Initramfs: "/boot/krg-initrd-6.1.0-50-amd64"}}
	if d := strings.Join(media.Describe(env), "\n"); !strings.Contains(d, "/srv/out/lab.iso") || !strings.Contains(d, "UEFI") {
		t.Errorf("plan:\n%s", d)
	}
	if err := media.(Preflighter).Preflight(t.Context(), env); err != nil {
		testenv.Missing(t, "the host's boot loaders: %v (make deps installs them)", err)
	}
	os.MkdirAll(filepath.Join(env.Root, "boot"), 0o755)
	os.WriteFile(filepath.Join(env.Root, "boot/vmlinuz-6.1.0-50-amd64"), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(env.Root, "boot/krg-initrd-6.1.0-50-amd64"), []byte("initrd"), 0o644)
	if err := media.Run(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(out, "lab.iso")); err != nil || fi.Size()%(1<<20) != 0 {
		t.Errorf("lab.iso: %v", err)
	}
	if MediaOptions(r, "/img", "6.1.0-50-amd64", env.BuildTime, nil).Initramfs != "/boot/krg-initrd-6.1.0-50-amd64" {
		t.Error("MediaOptions does not find the initramfs where the initramfs step puts it")
	}
}
