package netboot

import (
	"bytes"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A server set up before its image, as the seed does it, gets every file
// it will have once the image exists, the same bytes, except exactly the
// image's files, which are Pending: running netboot again after the build
// adds them and changes nothing else.
func TestBeforeTheImage(t *testing.T) {
	const version = "6.1.0-50-amd64"
	for name, src := range goldenRecipes {
		t.Run(name, func(t *testing.T) {
			r := load(t, src)
			image, host := fakeRoots(t, version)
			tftp := TFTPRoot(r)
			want := []string{path.Join(tftp, "boot/initrd.img-"+version), path.Join(tftp, "boot/vmlinuz-"+version)}
			if len(r.Cluster.Nodes) > 0 {
				// A node that boots its own kernel: one more file to come.
				r.Cluster.Nodes[0].Kernel = "/boot/vmlinuz-node"
				writeFile(t, filepath.Join(image, "boot/vmlinuz-node"), "node kernel", 0o644)
				want = append(want, path.Join(tftp, "boot/vmlinuz-node"))
			}
			after, err := Generate(Options{Recipe: r, ImageRoot: image, Kernel: version, HostRoot: host})
			if err != nil {
				t.Fatal(err)
			}
			before, err := Generate(Options{Recipe: r, Kernel: version, HostRoot: host})
			if err != nil {
				t.Fatalf("without an image: %v", err)
			}
			var added []string
			for _, p := range after.Paths() {
				b, ok := before.Files[p]
				if !ok {
					added = append(added, p)
					continue
				}
				a := after.Files[p]
				if !bytes.Equal(a.Data, b.Data) || a.Src != b.Src || a.Mode != b.Mode {
					t.Errorf("%s differs once the image exists", p)
				}
			}
			for _, p := range before.Paths() {
				if _, ok := after.Files[p]; !ok {
					t.Errorf("%s is written only before the image", p)
				}
			}
			var pending []string
			for _, p := range before.Pending {
				pending = append(pending, p.Path)
				if !strings.Contains(p.From, "the image's /boot/") {
					t.Errorf("pending %s says it comes from %q", p.Path, p.From)
				}
			}
			slices.Sort(pending)
			if !slices.Equal(pending, want) || !slices.Equal(added, want) {
				t.Errorf("pending %v, added by the image %v, want both %v", pending, added, want)
			}
		})
	}
}

// Without a version to name the kernel by, the configuration boots the
// image's /vmlinuz and /initrd.img links; with pxelinux.syslinux: image,
// pxelinux.0 is still to come too.
func TestBeforeTheImageUnknownKernel(t *testing.T) {
	r := load(t, goldenRecipes["bookworm"])
	r.Netboot.PXE.Syslinux = "image"
	tree, err := Generate(Options{Recipe: r})
	if err != nil {
		t.Fatal(err)
	}
	tftp := TFTPRoot(r)
	var pending []string
	for _, p := range tree.Pending {
		pending = append(pending, p.Path)
	}
	want := []string{path.Join(tftp, "pxelinux.0"), path.Join(tftp, "boot/vmlinuz"), path.Join(tftp, "boot/initrd.img")}
	if !slices.Equal(pending, want) {
		t.Errorf("pending = %v, want %v", pending, want)
	}
	if _, ok := tree.Files[path.Join(tftp, "pxelinux.0")]; ok {
		t.Error("the host's pxelinux.0 is served though the recipe asks for the image's")
	}
	cfg := string(tree.Files[path.Join(tftp, "pxelinux.cfg/default")].Data)
	if !strings.Contains(cfg, "kernel boot/vmlinuz\n") || !strings.Contains(cfg, "initrd=boot/initrd.img ") {
		t.Errorf("pxelinux.cfg does not boot the links:\n%s", cfg)
	}
	for _, p := range []string{DHCPPath(r), TFTPDefaultsPath, ExportsPath} {
		if len(tree.Files[p].Data) == 0 {
			t.Errorf("%s is not written before the image", p)
		}
	}
}
