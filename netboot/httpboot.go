package netboot

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/krgimage/krgimage/internal/esp"
	"github.com/krgimage/krgimage/recipes"
)

// UEFI HTTP boot (netboot.uefi with netboot.http): a client whose
// firmware has an HTTP boot client (RFC 4578 architecture 16, vendor
// class HTTPClient) is given a URL instead of a TFTP file name. It names
// a FAT image that the firmware downloads in one transfer and boots as a
// RAM disk: shim as its removable-media loader, Debian's signed GRUB CD
// image beside it, GRUB's configuration, the kernels and the initramfs.
// Under Secure Boot this is how HTTP carries the kernel at all: signed
// GRUB loads no module and has no HTTP device of its own.
const (
	HTTPBootFile = "httpboot-x64.img"
	// HTTPBootClass is the vendor class (option 60) an HTTP boot client
	// sends, and the one it requires in the answer before it takes a URL.
	HTTPBootClass = "HTTPClient"
	// HTTPBootMIME makes firmware boot the download as a disk image
	// rather than run it (UEFI's RAM disk types).
	HTTPBootMIME = "application/vnd.efi-img"
)

// Where the image's loaders go: the removable-media path UEFI firmware
// boots a disk by, shim's second stage beside it, and the grub.cfg that
// Debian's GRUB CD image reads from its own directory when the disk has
// no /.disk/info.
const (
	httpBootLoader = "EFI/BOOT/BOOTX64.EFI"
	httpBootGrub   = "EFI/BOOT/grubx64.efi"
	httpBootConf   = "EFI/BOOT/grub.cfg"
)

var grubCDPaths = []string{"usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed"}

// HTTPBootURL is where a UEFI HTTP boot client fetches the image.
func HTTPBootURL(r *recipes.Recipe) string {
	return "http://" + netip.AddrPortFrom(r.Cluster.Server.IP.Addr, uint16(r.Netboot.HTTP.Port)).String() + "/" + HTTPBootFile
}

// httpBootImage puts the HTTP boot image at the TFTP root, which the web
// server serves; without an image it is still to come.
func (t *Tree) httpBootImage(o Options, tftp string, entries []Entry) error {
	dst := path.Join(tftp, HTTPBootFile)
	if o.ImageRoot == "" {
		t.pend(dst, "a FAT image of shim, GRUB, the image's kernel and initramfs (UEFI HTTP boot)")
		return nil
	}
	shim, grub, err := uefiLoaderFiles(o, grubCDPaths)
	if err != nil {
		return err
	}
	files := map[string]esp.File{
		httpBootLoader: {Src: shim},
		httpBootGrub:   {Src: grub},
		httpBootConf:   {Data: []byte(HTTPBootGrubConfig(o.Recipe, entries))},
	}
	for _, e := range entries {
		for _, p := range []string{e.Boot.Kernel, e.Boot.Initrd} {
			files[p] = esp.File{Src: t.Files[path.Join(tftp, p)].Src}
		}
	}
	data, err := fatImage(files)
	if err != nil {
		return fmt.Errorf("the UEFI HTTP boot image: %w", err)
	}
	t.Files[dst] = File{Data: data, Mode: 0o644}
	return nil
}

// HTTPBootGrubConfig is the configuration of GRUB in the HTTP boot
// image. GRUB there reads a disk, not the network, so it asks DHCP
// itself for the node's name (option 12, which every inventory node is
// given) when some node has an entry of its own; efinet0 is the first
// card, the one a single-NIC node booted from.
func HTTPBootGrubConfig(r *recipes.Recipe, entries []Entry) string {
	return grubConfig(r, entries, "UEFI HTTP boot, GRUB in the RAM disk the firmware downloaded", grubPick{
		prelude:  []string{"net_bootp", "net_get_dhcp_option krgimage_host efinet0:dhcp 12 string"},
		variable: "krgimage_host",
		value:    func(e Entry) string { return e.Node },
	})
}

// fatImage writes files into a FAT image and returns its bytes, dated as
// the newest file it holds, so that the same image gives the same bytes.
func fatImage(files map[string]esp.File) ([]byte, error) {
	var newest time.Time
	for _, f := range files {
		if f.Src == "" {
			continue
		}
		fi, err := os.Stat(f.Src)
		if err != nil {
			return nil, err
		}
		if fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
	}
	dir, err := os.MkdirTemp("", "krgimage-httpboot-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, HTTPBootFile)
	if err := esp.Write(img, files, newest); err != nil {
		return nil, err
	}
	// Without dosfstools the image goes unchecked: its sizes are ones
	// go-diskfs is known to write soundly.
	if err := esp.Check(context.Background(), img); err != nil && !errors.Is(err, esp.ErrNoFsck) {
		return nil, err
	}
	return os.ReadFile(img)
}
