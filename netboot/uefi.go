package netboot

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"strings"

	"github.com/krgimage/krgimage/internal/quote"
	"github.com/krgimage/krgimage/recipes"
)

// ErrNoUEFILoader: the signed shim or GRUB network image is missing.
var ErrNoUEFILoader = errors.New("UEFI loader not found")

// UEFI clients are given shim, signed by Microsoft's UEFI CA that
// firmware with Secure Boot on trusts; shim loads grubx64.efi from the
// same server, Debian's GRUB network image, which shim trusts by
// Debian's key, and GRUB the Debian-signed kernel. GRUB reads
// grub/grub.cfg: its network image's prefix is /grub on the server it
// was loaded from.
const (
	UEFIBootFile = "shimx64.efi"
	grubFile     = "grubx64.efi"
	GrubConfPath = "grub/grub.cfg"
)

// Where Debian's shim-signed and grub-efi-amd64-signed put them (buster
// and newer).
var (
	shimPaths    = []string{"usr/lib/shim/shimx64.efi.signed"}
	grubNetPaths = []string{"usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"}
)

// uefiLoaders puts shim and GRUB at the TFTP root, from the host or,
// with uefi.loaders: image, from the image, which without an image are
// still to come.
func (t *Tree) uefiLoaders(o Options, tftp string) error {
	if o.Recipe.Netboot.UEFI.Loaders == "image" && o.ImageRoot == "" {
		for _, f := range []string{UEFIBootFile, grubFile} {
			t.pend(path.Join(tftp, f), "the image's shim and GRUB network image (uefi.loaders: image)")
		}
		return nil
	}
	shim, grub, err := uefiLoaderFiles(o, grubNetPaths)
	if err != nil {
		return err
	}
	t.Files[path.Join(tftp, UEFIBootFile)] = File{Src: shim, Mode: 0o644}
	t.Files[path.Join(tftp, grubFile)] = File{Src: grub, Mode: 0o644}
	return nil
}

// uefiLoaderFiles finds shim and one of Debian's signed GRUB images in
// the root uefi.loaders names.
func uefiLoaderFiles(o Options, grubPaths []string) (shim, grub string, err error) {
	root := LoaderRoot(o.Recipe.Netboot.UEFI.Loaders, o.HostRoot, o.ImageRoot)
	shim, grub = FirstFile(root, shimPaths), FirstFile(root, grubPaths)
	if shim == "" || grub == "" {
		return "", "", fmt.Errorf("%w in %s: install shim-signed and grub-efi-amd64-signed", ErrNoUEFILoader, root)
	}
	return shim, grub, nil
}

// Entry is one boot entry of the loaders' configurations: the recipe's
// label, which every node boots, or a node's own (Node and IP set).
type Entry struct {
	Label string
	Node  string
	IP    netip.Addr
	Boot  Boot
	Args  []string
}

// GrubConfig renders GRUB's configuration for UEFI nodes: the entries
// of pxelinux.cfg, the kernel and initramfs from the TFTP tree, and each
// node with its own entry picked by the address DHCP gave it, as
// pxelinux picks its file by that address.
func GrubConfig(r *recipes.Recipe, entries []Entry) string {
	pick := grubPick{variable: "net_default_ip", value: func(e Entry) string { return e.IP.String() }}
	if r.Netboot.HTTP != nil {
		// Booted by hand: "error: disk `http,SERVER' not found". Under
		// Secure Boot GRUB loads no module, and its signed network image
		// has no HTTP device.
		pick.note = "# Over TFTP, not HTTP: Debian's signed GRUB network image has no HTTP device.\n"
	}
	return grubConfig(r, entries, "shim and GRUB, UEFI network boot", pick)
}

// grubPick is how a GRUB configuration finds the node it runs on: the
// commands that learn it, and the variable they set.
type grubPick struct {
	prelude  []string
	variable string
	value    func(Entry) string
	note     string
}

func grubConfig(r *recipes.Recipe, entries []Entry, what string, pick grubPick) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# grub.cfg: written by krgimage for recipe %s (%s).\n", quote.Plain(r.Name), what)
	// No serial terminal: the firmware already copies its console to the
	// serial line, and GRUB driving the same UART besides reads stray
	// keys that stop the countdown.
	// Entries are chosen by number: a node may bear the label's name.
	b.WriteString("set default=0\n")
	fmt.Fprintf(&b, "set timeout=%d\n", (r.Netboot.PXE.Timeout+9)/10)
	if len(entries) > 1 {
		for _, l := range pick.prelude {
			b.WriteString(l + "\n")
		}
	}
	for i, e := range entries[1:] {
		fmt.Fprintf(&b, "if [ \"$%s\" = %s ]; then set default=%d; fi\n", pick.variable, quote.Grub(pick.value(e)), i+1)
	}
	b.WriteString(pick.note)
	for _, e := range entries {
		fmt.Fprintf(&b, "menuentry %s {\n", quote.Grub(e.Label))
		fmt.Fprintf(&b, "\techo %s\n", quote.Grub("krgimage: GRUB loading "+e.Boot.Kernel))
		fmt.Fprintf(&b, "\tlinux %s %s\n", quote.Grub("/"+e.Boot.Kernel), quote.GrubWords(e.Args))
		fmt.Fprintf(&b, "\tinitrd %s\n", quote.Grub("/"+e.Boot.Initrd))
		b.WriteString("}\n")
	}
	return b.String()
}
