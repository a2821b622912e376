package media

import (
	"fmt"
	"path"
	"strings"

	"github.com/krgimage/krgimage/internal/quote"
	"github.com/krgimage/krgimage/netboot"
	"github.com/krgimage/krgimage/recipes"
)

// Entry is one boot entry of the medium: a label, what it boots (paths
// inside the image) and the kernel arguments.
type Entry struct {
	Label string
	// Node is the node the entry is for; empty for every node's entry.
	Node   string
	Kernel string
	Initrd string
	Args   []string
}

// Entries are the medium's boot entries: the recipe's label, which every
// node boots over PXE, and one per node that boots differently, named
// after the node (a node booting from a medium has no address yet that
// would pick its entry, so the person at the console types its name).
// kernel and initrd are the image's paths for the common entry.
func Entries(r *recipes.Recipe, kernel, initrd string) []Entry {
	out := []Entry{{Label: r.Netboot.PXE.Label, Kernel: kernel, Initrd: initrd, Args: netboot.KernelArgs(r, nil)}}
	for _, n := range r.Nodes() {
		if n.Kernel == "" && n.Initrd == "" && len(n.Append) == 0 {
			continue
		}
		e := Entry{Label: n.Name, Node: n.Name, Kernel: kernel, Initrd: initrd, Args: netboot.KernelArgs(r, n.Append)}
		if n.Kernel != "" {
			e.Kernel = n.Kernel
		}
		if n.Initrd != "" {
			e.Initrd = n.Initrd
		}
		out = append(out, e)
	}
	return out
}

// mediaPath is where a file of the image goes on the medium: boot/ and
// its name, as the TFTP tree has it.
func mediaPath(image string) string { return path.Join("boot", path.Base(image)) }

// serialLine tells isolinux to talk on the serial line the kernel is told
// to use, as netboot's pxelinux configuration does.
func serialLine(args []string) string {
	if unit, baud, ok := netboot.SerialConsole(args); ok {
		return "SERIAL " + unit + " " + baud + "\n"
	}
	return ""
}

// defaultTimeout is how long, in tenths of a second, the prompt waits for
// a node's name when there are per-node entries and the recipe sets no
// pxelinux timeout.
const defaultTimeout = 50

// timeout is how long the boot loaders wait, in tenths of a second: the
// recipe's pxelinux timeout, or defaultTimeout when there are per-node
// entries to choose from.
func timeout(r *recipes.Recipe, entries []Entry) int {
	t := r.Netboot.PXE.Timeout
	if t == 0 && len(entries) > 1 {
		t = defaultTimeout
	}
	return t
}

// IsolinuxConfig renders isolinux's configuration: the PXE nodes' label
// with the same append line as pxelinux.cfg/default, and the per-node
// labels. Paths are absolute on the medium, where the kernel and
// initramfs are in /boot as in the TFTP tree.
func IsolinuxConfig(r *recipes.Recipe, entries []Entry) string {
	var b strings.Builder
	// SERIAL first, as syslinux's documentation asks.
	b.WriteString(serialLine(entries[0].Args))
	fmt.Fprintf(&b, "# Boot medium configuration (isolinux): written by krgimage for recipe %s.\n", quote.Plain(r.Name))
	fmt.Fprintf(&b, "DEFAULT %s\n", quote.Word(entries[0].Label))
	if len(entries) > 1 {
		// SAY shows on the screen only, not on a serial console; there,
		// Tab at the boot: prompt lists the labels.
		var labels []string
		for _, e := range entries[1:] {
			labels = append(labels, quote.Word(e.Label))
		}
		fmt.Fprintf(&b, "SAY krgimage %s: Enter boots %s; a node with its own arguments boots by its name: %s\n", quote.Plain(r.Name), quote.Word(entries[0].Label), strings.Join(labels, " "))
	}
	if t := timeout(r, entries); t > 0 {
		fmt.Fprintf(&b, "PROMPT 1\nTIMEOUT %d\n", t)
	}
	if r.Netboot.PXE.IPAppend > 0 {
		// IPAPPEND hands over what the PXE ROM learnt; from a medium there
		// is nothing yet, and the initramfs asks DHCP on every card.
		fmt.Fprintf(&b, "# pxelinux.ipappend %d has no meaning here: nothing has used the network yet.\n", r.Netboot.PXE.IPAppend)
	}
	for _, e := range entries {
		if e.Node != "" {
			fmt.Fprintf(&b, "# node %s boots with its own arguments.\n", quote.Plain(e.Node))
		}
		fmt.Fprintf(&b, "LABEL %s\n", quote.Word(e.Label))
		fmt.Fprintf(&b, "    kernel /%s\n", quote.Word(mediaPath(e.Kernel)))
		fmt.Fprintf(&b, "    append %s\n", quote.Words(append([]string{"initrd=/" + mediaPath(e.Initrd)}, e.Args...)))
	}
	return b.String()
}

// GrubLoaderConfig is the grub.cfg in the EFI system partition, next to
// GRUB: it finds the medium's ISO 9660 filesystem by its volume label and
// reads the configuration there.
func GrubLoaderConfig(r *recipes.Recipe, volumeID string) string {
	return fmt.Sprintf(`# Written by krgimage for recipe %s: the boot entries are on the medium.
search --no-floppy --set=root --label %s
set prefix=($root)/boot/grub
source $prefix/grub.cfg
`, quote.Plain(r.Name), quote.Grub(volumeID))
}

// GrubConfig renders the configuration of GRUB, the UEFI boot loader: the
// same entries, with the kernel arguments of the append line, and the
// files read from the ISO 9660 filesystem.
func GrubConfig(r *recipes.Recipe, entries []Entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Boot medium configuration (GRUB, UEFI): written by krgimage for recipe %s.\n", quote.Plain(r.Name))
	// No "serial" terminal, unlike isolinux: UEFI firmware puts its own
	// console on the serial line, and GRUB driving the same UART besides
	// reads stray keys that stop the countdown.
	// GRUB reads a script: %q's double quotes would still expand $.
	fmt.Fprintf(&b, "set default=%s\n", quote.Grub(entries[0].Label))
	fmt.Fprintf(&b, "set timeout=%d\n", (timeout(r, entries)+9)/10)
	for _, e := range entries {
		fmt.Fprintf(&b, "menuentry %s --id %s {\n", quote.Grub(e.Label), quote.Grub(e.Label))
		fmt.Fprintf(&b, "\tlinux %s %s\n", quote.Grub("/"+mediaPath(e.Kernel)), quote.GrubWords(e.Args))
		fmt.Fprintf(&b, "\tinitrd %s\n", quote.Grub("/"+mediaPath(e.Initrd)))
		b.WriteString("}\n")
	}
	return b.String()
}

// iPXE on the medium.
const (
	ipxeKernel = "ipxe/ipxe.lkrn"
	ipxeScript = "ipxe/krgimage.ipxe"
)

// IPXEConfig renders the isolinux configuration of an ipxe medium: iPXE's
// Linux-kernel form, with the script as its initrd, which iPXE runs.
func IPXEConfig(r *recipes.Recipe) string {
	var b strings.Builder
	b.WriteString(serialLine(netboot.KernelArgs(r, nil)))
	fmt.Fprintf(&b, "# Boot medium configuration (isolinux starting iPXE): written by krgimage for recipe %s.\n", quote.Plain(r.Name))
	b.WriteString("DEFAULT ipxe\n")
	b.WriteString("LABEL ipxe\n")
	fmt.Fprintf(&b, "    kernel /%s\n", ipxeKernel)
	fmt.Fprintf(&b, "    append initrd=/%s\n", ipxeScript)
	return b.String()
}

// IPXEScript is the script iPXE runs: DHCP, then the boot file DHCP names
// from the server DHCP names, as a PXE ROM would, falling back on the
// recipe's server and pxelinux.0 (dynamic clients get no boot file from
// the generated dhcpd.conf). It tries again until it boots.
func IPXEScript(r *recipes.Recipe) string {
	return fmt.Sprintf(`#!ipxe
# Written by krgimage for recipe %s: boot what the boot server serves.
echo krgimage: iPXE asks DHCP for an address and a boot file
:retry
dhcp || goto retry
isset ${next-server} || set next-server %s
isset ${filename} || set filename pxelinux.0
echo krgimage: booting tftp://${next-server}/${filename}
chain tftp://${next-server}/${filename} || goto retry
`, quote.Plain(r.Name), r.Cluster.Server.IP)
}
