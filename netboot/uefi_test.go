package netboot

import (
	"errors"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/recipes"
)

// The UEFI loaders come from the host or the image, as pxelinux does:
// served at the TFTP root under the names shim and GRUB look for, still
// to come before an image whose loaders they are, and a missing one is
// named with the packages that hold it.
func TestUEFILoaders(t *testing.T) {
	const version = "6.1.0-50-amd64"
	r := load(t, "../recipes/bookworm-nfsroot.yaml")
	image, host := fakeRoots(t, version)
	tftp := TFTPRoot(r)

	tree, err := Generate(Options{Recipe: r, ImageRoot: image, Kernel: version, HostRoot: host})
	if err != nil {
		t.Fatal(err)
	}
	if got := tree.Files[path.Join(tftp, UEFIBootFile)].Src; got != filepath.Join(host, shimPaths[0]) {
		t.Errorf("shim from %q", got)
	}
	if got := tree.Files[path.Join(tftp, grubFile)].Src; got != filepath.Join(host, grubNetPaths[0]) {
		t.Errorf("GRUB from %q", got)
	}
	if _, ok := tree.Files[path.Join(tftp, GrubConfPath)]; !ok {
		t.Error("no grub.cfg")
	}

	fromImage := r.WithNetboot(func(nb *recipes.Netboot) { nb.UEFI = &recipes.UEFI{Loaders: "image"} })
	before, err := Generate(Options{Recipe: fromImage, Kernel: version, HostRoot: host})
	if err != nil {
		t.Fatal(err)
	}
	if !pending(before, path.Join(tftp, UEFIBootFile)) {
		t.Errorf("the image's shim is not still to come: %+v", before.Pending)
	}
	writeFile(t, filepath.Join(image, shimPaths[0]), "image shim", 0o644)
	writeFile(t, filepath.Join(image, grubNetPaths[0]), "image grub", 0o644)
	after, err := Generate(Options{Recipe: fromImage, ImageRoot: image, Kernel: version, HostRoot: host})
	if err != nil {
		t.Fatal(err)
	}
	if got := after.Files[path.Join(tftp, grubFile)].Src; got != filepath.Join(image, grubNetPaths[0]) {
		t.Errorf("GRUB from %q, want the image's", got)
	}

	bare := t.TempDir()
	_, err = Generate(Options{Recipe: r, ImageRoot: image, Kernel: version, HostRoot: bare})
	if !errors.Is(err, ErrNoUEFILoader) && !errors.Is(err, ErrNoPXELinux) {
		t.Fatalf("no loaders on the host: %v", err)
	}
	writeFile(t, filepath.Join(bare, pxelinuxPaths[0]), "PXELINUX", 0o644)
	writeFile(t, filepath.Join(bare, LdlinuxPaths[0]), "ldlinux", 0o644)
	_, err = Generate(Options{Recipe: r, ImageRoot: image, Kernel: version, HostRoot: bare})
	if !errors.Is(err, ErrNoUEFILoader) || !strings.Contains(err.Error(), "shim-signed and grub-efi-amd64-signed") {
		t.Fatalf("no UEFI loaders on the host: %v", err)
	}
}

// A node with its own arguments gets its own GRUB entry, picked by its
// address, as pxelinux picks its file; with netboot.http GRUB still
// loads over TFTP, the one way its signed network image has.
func TestGrubConfigNodes(t *testing.T) {
	r := load(t, "../recipes/testdata/everything.yaml")
	r = r.WithNetboot(func(nb *recipes.Netboot) { nb.HTTP = &recipes.HTTP{Port: 80} })
	image, host := fakeRoots(t, "6.1.0-50-amd64")
	writeFile(t, filepath.Join(host, lpxelinuxPaths[0]), "LPXELINUX", 0o644)
	tree, err := Generate(Options{Recipe: r, ImageRoot: image, Kernel: "6.1.0-50-amd64", HostRoot: host})
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(tree.Files[path.Join(TFTPRoot(r), GrubConfPath)].Data)
	for _, want := range []string{
		`if [ "$net_default_ip" = 192.168.50.10 ]; then set default=1; fi`,
		"menuentry head {",
		"\tlinux /boot/vmlinuz-6.1.0-50-amd64 ip=dhcp root=/dev/nfs nfsroot=192.168.50.1:/srv/nfsroot/lab,vers=4,timeo=14 ro console=ttyS0 quiet",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("grub.cfg lacks %q:\n%s", want, cfg)
		}
	}
}

func pending(t *Tree, p string) bool {
	for _, q := range t.Pending {
		if q.Path == p {
			return true
		}
	}
	return false
}
