package netboot

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/krgimage/krgimage/internal/fsutil"
	"github.com/krgimage/krgimage/recipes"
)

// Errors callers branch on.
var (
	// ErrNoPXELinux: pxelinux.0 (or the ldlinux.c32 it needs) is missing.
	ErrNoPXELinux = errors.New("pxelinux not found")
	// ErrNoKernel: the image has no kernel or initramfs to serve.
	ErrNoKernel = errors.New("kernel or initramfs missing")
)

// File is one file of the generated tree: content, or a file to copy.
type File struct {
	Data []byte
	Src  string
	Mode os.FileMode
}

// Tree is the boot server's files, by path relative to the server's root:
// etc/dhcp/dhcpd.conf, etc/default/tftpd-hpa, etc/exports.d/...,
// srv/tftp/...
type Tree struct {
	Files map[string]File
	// TFTPRoot is the recipe's tftp.root (/srv/tftp): the files below it
	// are the TFTP tree, and Install refuses it if it is a system
	// directory.
	TFTPRoot string
	// Services are the commands that make the running services read the
	// new files, as the seed lists them.
	Services []string
	// Pending are the files the configuration names that only the image
	// can give (its kernel and initramfs, its pxelinux), when the tree
	// was made before the image was built, as the seed sets the server
	// up before it creates the base system.
	Pending []Pending
}

// Pending is a file of the tree still to come.
type Pending struct {
	// Path is where it goes in the tree, as Files are keyed.
	Path string
	// From says where a later run takes it from.
	From string
}

// Options say where the boot files come from.
type Options struct {
	Recipe *recipes.Recipe
	// ImageRoot is the built image: its kernel, initramfs and, with
	// pxelinux.syslinux: image, its pxelinux. Empty means the image is
	// not built yet: those files are Pending.
	ImageRoot string
	// Kernel is the kernel version; Initramfs its initramfs inside the
	// image (default /boot/initrd.img-VERSION). Without an image the
	// version may be unknown: the configuration then names the image's
	// /vmlinuz and /initrd.img, the links Debian's kernel packages make.
	Kernel    string
	Initramfs string
	// HostRoot is where the host's syslinux files are looked for ("/").
	HostRoot string
}

// pxelinuxPaths are where Debian puts pxelinux.0: the pxelinux package
// since syslinux 5, the syslinux package before. LdlinuxPaths are where
// syslinux-common puts ldlinux.c32, which syslinux 5 and newer load first
// (lenny's 3.71 has none).
var (
	pxelinuxPaths  = []string{"usr/lib/PXELINUX/pxelinux.0", "usr/lib/syslinux/pxelinux.0"}
	lpxelinuxPaths = []string{"usr/lib/PXELINUX/lpxelinux.0"}
	LdlinuxPaths   = []string{"usr/lib/syslinux/modules/bios/ldlinux.c32", "usr/lib/syslinux/ldlinux.c32"}
)

// FirstFile returns the first of rels, relative to root, that is a regular
// file, or "".
func FirstFile(root string, rels []string) string {
	for _, r := range rels {
		p := filepath.Join(root, r)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// FindPXELinux finds pxelinux.0 and, for syslinux 5 and newer, the
// ldlinux.c32 it needs, under root (the host's "/" or an image's).
func FindPXELinux(root string) (pxe, ldlinux string, err error) {
	pxe = FirstFile(root, pxelinuxPaths)
	if pxe == "" {
		return "", "", fmt.Errorf("%w in %s: install pxelinux and syslinux-common (or syslinux on lenny)", ErrNoPXELinux, root)
	}
	ldlinux = FirstFile(root, LdlinuxPaths)
	if ldlinux == "" && strings.Contains(pxe, "PXELINUX") {
		return "", "", fmt.Errorf("%w: %s is syslinux 5 or newer and needs ldlinux.c32 (package syslinux-common)", ErrNoPXELinux, pxe)
	}
	return pxe, ldlinux, nil
}

// SyslinuxRoot is where a recipe's pxelinux comes from, as
// pxelinux.syslinux says.
func SyslinuxRoot(r *recipes.Recipe, hostRoot, imageRoot string) string {
	return LoaderRoot(r.Netboot.PXE.Syslinux, hostRoot, imageRoot)
}

// LoaderRoot is the root boot loaders come from by a recipe's choice
// (pxelinux.syslinux, uefi.loaders): the host's ("/" unless hostRoot
// says otherwise) or, with "image", the image's.
func LoaderRoot(whose, hostRoot, imageRoot string) string {
	if whose == "image" {
		return imageRoot
	}
	if hostRoot == "" {
		return "/"
	}
	return hostRoot
}

// Generate makes the tree for a recipe.
func Generate(o Options) (*Tree, error) {
	r := o.Recipe
	if r.Netboot == nil || r.Cluster == nil || r.NFSRoot == nil {
		return nil, errors.New("the recipe needs netboot, cluster and nfsroot sections")
	}
	t := &Tree{Files: map[string]File{}, TFTPRoot: r.Netboot.TFTP.Root}
	t.Files[DHCPPath(r)] = File{Data: []byte(DHCPConf(r)), Mode: 0o644}
	t.Files[TFTPDefaultsPath] = File{Data: []byte(TFTPDefaults(r)), Mode: 0o644}
	t.Files[ExportsPath] = File{Data: []byte(Exports(r)), Mode: 0o644}
	tftp := TFTPRoot(r)

	if err := t.pxelinux(o, tftp); err != nil {
		return nil, err
	}
	vmlinuz, initrd := o.bootNames()
	boot, err := t.bootFiles(o, tftp, vmlinuz, initrd)
	if err != nil {
		return nil, err
	}
	if h := r.Netboot.HTTP; h != nil {
		t.Files[NginxPath] = File{Data: []byte(NginxSite(r)), Mode: 0o644}
	}
	label := r.Netboot.PXE.Label
	def := PXEConfig(r, label, overHTTP(r, boot), KernelArgs(r, nil), "")
	t.Files[path.Join(tftp, "pxelinux.cfg/default")] = File{Data: []byte(def), Mode: 0o644}
	entries := []Entry{{Label: label, Boot: boot, Args: KernelArgs(r, nil)}}
	for _, n := range r.Nodes() {
		content := def
		if n.Kernel != "" || n.Initrd != "" || len(n.Append) > 0 {
			e, err := t.nodeEntry(o, tftp, n, boot, vmlinuz, initrd)
			if err != nil {
				return nil, err
			}
			entries = append(entries, e)
			content = PXEConfig(r, label, overHTTP(r, e.Boot), e.Args, ", node "+n.Name)
			t.Files[path.Join(tftp, "pxelinux.cfg", HexName(n.IP))] = File{Data: []byte(content), Mode: 0o644}
		}
		if r.Netboot.PXE.MACFiles && len(n.MAC) > 0 {
			t.Files[path.Join(tftp, "pxelinux.cfg", MACName(n.MAC.String()))] = File{Data: []byte(content), Mode: 0o644}
		}
	}
	if r.Netboot.UEFI != nil {
		if err := t.uefiLoaders(o, tftp); err != nil {
			return nil, err
		}
		t.Files[path.Join(tftp, GrubConfPath)] = File{Data: []byte(GrubConfig(r, entries)), Mode: 0o644}
		if r.Netboot.HTTP != nil {
			if err := t.httpBootImage(o, tftp, entries); err != nil {
				return nil, err
			}
		}
	}
	t.Services = services(r)
	return t, nil
}

// nodeEntry is the boot entry of a node with its own kernel, initramfs
// or arguments; boot is every node's, from the image's vmlinuz and
// initrd.
func (t *Tree) nodeEntry(o Options, tftp string, n recipes.ResolvedNode, boot Boot, vmlinuz, initrd string) (Entry, error) {
	e := Entry{Label: n.Name, Node: n.Name, IP: n.IP, Boot: boot, Args: KernelArgs(o.Recipe, n.Append)}
	if n.Kernel == "" && n.Initrd == "" {
		return e, nil
	}
	k, i := cmp.Or(n.Kernel, vmlinuz), cmp.Or(n.Initrd, initrd)
	var err error
	if e.Boot, err = t.bootFiles(o, tftp, k, i); err != nil {
		return e, fmt.Errorf("node %s: %w", n.Name, err)
	}
	return e, nil
}

// pxelinux puts the host's pxelinux.0 (and the ldlinux.c32 syslinux 5 and
// newer load) at the TFTP root, or the image's with pxelinux.syslinux:
// image, which without an image is still to come.
func (t *Tree) pxelinux(o Options, tftp string) error {
	if o.ImageRoot == "" && o.Recipe.Netboot.PXE.Syslinux == "image" {
		t.Pending = append(t.Pending, Pending{Path: path.Join(tftp, "pxelinux.0"),
			From: "the image's pxelinux.0 and, for syslinux 5 and newer, its ldlinux.c32 (pxelinux.syslinux: image)"})
		return nil
	}
	root := SyslinuxRoot(o.Recipe, o.HostRoot, o.ImageRoot)
	pxe, ld, err := FindPXELinux(root)
	if err != nil {
		return err
	}
	if o.Recipe.Netboot.HTTP != nil {
		// Served under the name DHCP gives: lpxelinux.0 is pxelinux.0
		// with an HTTP client, and reads the same pxelinux.cfg.
		if pxe = FirstFile(root, lpxelinuxPaths); pxe == "" {
			return fmt.Errorf("%w in %s: an HTTP boot needs lpxelinux.0 (package pxelinux, syslinux 5 and newer)", ErrNoPXELinux, root)
		}
	}
	t.Files[path.Join(tftp, "pxelinux.0")] = File{Src: pxe, Mode: 0o644}
	if ld != "" {
		t.Files[path.Join(tftp, "ldlinux.c32")] = File{Src: ld, Mode: 0o644}
	}
	return nil
}

// bootNames are the image's kernel and initramfs that every node boots
// unless its inventory entry names others.
func (o Options) bootNames() (vmlinuz, initrd string) {
	if o.Kernel == "" {
		vmlinuz, initrd = "/vmlinuz", "/initrd.img"
	} else {
		vmlinuz, initrd = "/boot/vmlinuz-"+o.Kernel, "/boot/initrd.img-"+o.Kernel
	}
	if o.Initramfs != "" {
		initrd = o.Initramfs
	}
	return vmlinuz, initrd
}

// bootFiles puts a kernel and initramfs of the image into the TFTP tree's
// boot/ directory, as the seed copies them, and returns their TFTP paths.
// Without an image they are Pending.
func (t *Tree) bootFiles(o Options, tftp, kernel, initrd string) (Boot, error) {
	var b Boot
	for _, f := range []struct {
		image string
		dst   *string
	}{{kernel, &b.Kernel}, {initrd, &b.Initrd}} {
		rel := path.Join("boot", path.Base(f.image))
		*f.dst = rel
		if o.ImageRoot == "" {
			t.pend(path.Join(tftp, rel), "the image's "+f.image)
			continue
		}
		src := filepath.Join(o.ImageRoot, f.image)
		if fi, err := os.Stat(src); err != nil || !fi.Mode().IsRegular() {
			return b, fmt.Errorf("%w: the image has no %s", ErrNoKernel, f.image)
		}
		t.Files[path.Join(tftp, rel)] = File{Src: src, Mode: 0o644}
	}
	return b, nil
}

// overHTTP is where the loader fetches b from: the TFTP tree's paths,
// or with netboot.http the same paths on the server's web server, whose
// root is the TFTP tree.
func overHTTP(r *recipes.Recipe, b Boot) Boot {
	h := r.Netboot.HTTP
	if h == nil {
		return b
	}
	base := "http://" + netip.AddrPortFrom(r.Cluster.Server.IP.Addr, uint16(h.Port)).String() + "/"
	b.Kernel = base + b.Kernel
	if b.Initrd != "" {
		b.Initrd = base + b.Initrd
	}
	return b
}

// pend records a file still to come, once however many nodes boot it.
func (t *Tree) pend(p, from string) {
	for _, q := range t.Pending {
		if q.Path == p {
			return
		}
	}
	t.Pending = append(t.Pending, Pending{Path: p, From: from})
}

func services(r *recipes.Recipe) []string {
	dhcp, _ := DHCPService(r)
	var out []string
	if r.Netboot.DHCP.Flavor == "dhcp3" && r.Netboot.DHCP.Server == "isc" {
		out = []string{"exportfs -avr", "/etc/init.d/" + dhcp + " restart", "/etc/init.d/tftpd-hpa restart", "/etc/init.d/nfs-kernel-server restart"}
	} else {
		out = []string{"exportfs -avr", "systemctl restart " + dhcp, "systemctl restart tftpd-hpa", "systemctl restart nfs-kernel-server"}
	}
	if r.Netboot.HTTP != nil {
		out = append(out, "ln -sf ../sites-available/krgimage /etc/nginx/sites-enabled/krgimage", "systemctl reload nginx")
	}
	return out
}

// Paths returns the tree's paths, sorted.
func (t *Tree) Paths() []string {
	out := make([]string, 0, len(t.Files))
	for p := range t.Files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func (f File) content() ([]byte, error) {
	if f.Src != "" {
		return os.ReadFile(f.Src)
	}
	return f.Data, nil
}

// Write writes the tree into dir, which must not exist yet or be a tree
// written before: it is built next to dir and swapped in whole.
func (t *Tree) Write(dir string) error {
	stage := dir + ".partial"
	if err := fsutil.RemoveAll(stage); err != nil {
		return err
	}
	if err := t.writeInto(stage); err != nil {
		fsutil.RemoveAll(stage)
		return err
	}
	if _, err := os.Lstat(dir); err == nil {
		if err := fsutil.Exchange(stage, dir); err != nil {
			return err
		}
		return fsutil.RemoveAll(stage)
	}
	return os.Rename(stage, dir)
}

func (t *Tree) writeInto(dir string) error {
	for _, p := range t.Paths() {
		f := t.Files[p]
		data, err := f.content()
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, f.Mode); err != nil {
			return err
		}
	}
	return nil
}

// Diff writes a unified diff between what root has and what the tree
// would install there, and returns how many files would change.
func (t *Tree) Diff(root string, w io.Writer) (int, error) {
	changed := 0
	for _, p := range t.Paths() {
		want, err := t.Files[p].content()
		if err != nil {
			return changed, err
		}
		if link := symlinkOnPath(root, p); link != "" {
			// Reading through it would show what it points to, which
			// Install refuses to write.
			changed++
			fmt.Fprintf(w, "/%s: %s is a symlink; --install refuses to write through it\n", p, link)
			continue
		}
		have, err := os.ReadFile(filepath.Join(root, p))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return changed, err
		}
		if bytes.Equal(have, want) {
			continue
		}
		changed++
		if t.Files[p].Src != "" || !isText(want) || !isText(have) {
			state := "differs"
			if have == nil {
				state = "is new"
			}
			fmt.Fprintf(w, "binary file /%s %s (%d bytes)\n", p, state, len(want))
			continue
		}
		if err := unifiedDiff(w, "/"+p, have, want); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// symlinkOnPath returns the first directory of rel below root, or rel
// itself, that is a symlink, or "".
func symlinkOnPath(root, rel string) string {
	p := root
	for _, name := range strings.Split(rel, "/") {
		p = filepath.Join(p, name)
		fi, err := os.Lstat(p)
		if err != nil {
			return ""
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return p
		}
	}
	return ""
}

func isText(b []byte) bool { return !bytes.ContainsRune(b, 0) }

// unifiedDiff runs diff -u, which every Debian system has.
func unifiedDiff(w io.Writer, name string, a, b []byte) error {
	dir, err := os.MkdirTemp("", "krgimage-diff-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pa, pb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(pa, a, 0o644)
	os.WriteFile(pb, b, 0o644)
	out, err := exec.Command("diff", "-u", "--label", name+" (now)", "--label", name+" (krgimage)", pa, pb).Output()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		return fmt.Errorf("diff: %w", err)
	}
	_, err = w.Write(out)
	return err
}

// String lists the tree for messages.
func (t *Tree) String() string { return strings.Join(t.Paths(), "\n") }
