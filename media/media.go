package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/krgimage/krgimage/internal/esp"
	"github.com/krgimage/krgimage/netboot"
	"github.com/krgimage/krgimage/recipes"
)

// ErrNoLoader: a boot loader the medium needs is not installed. A
// missing kernel or initramfs is netboot.ErrNoKernel, as for the PXE tree.
var ErrNoLoader = errors.New("boot loader not found")

// Options say what goes on a medium and where it comes from.
type Options struct {
	// The recipe, and where the kernel, the initramfs and the boot
	// loaders come from: the same as for the PXE tree (the boot loaders
	// from the host's root, or the image's with pxelinux.syslinux: image).
	netboot.Options
	// Time is every date the medium records: the build time.
	Time time.Time
	Log  *slog.Logger
}

// Where Debian installs the boot loaders, newest layout first: isolinux
// and syslinux-common (syslinux 5 and newer), grub-efi-amd64-signed and
// ipxe; lenny's syslinux 3 kept isolinux.bin in /usr/lib/syslinux and
// needs no ldlinux.c32.
var (
	isolinuxPaths = []string{"usr/lib/ISOLINUX/isolinux.bin", "usr/lib/syslinux/isolinux.bin"}
	mbrPaths      = []string{"usr/lib/ISOLINUX/isohdpfx.bin", "usr/lib/syslinux/isohdpfx.bin"}
	grubPaths     = []string{"usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed"}
	ipxePaths     = []string{"usr/lib/ipxe/ipxe.lkrn", "boot/ipxe.lkrn"}
)

// Medium is a planned medium: the ISO, the files of its EFI system
// partition when it has one, and what a person needs to know about it.
type Medium struct {
	ISO *ISO
	// ESP holds the EFI system partition's files; nil without UEFI.
	ESP map[string]File
	// Entries are the boot entries (isolinux kind).
	Entries []Entry
	// Notes say what the medium cannot do, for the log.
	Notes []string
}

// On the medium.
const (
	isolinuxDir = "isolinux"
	grubConfig  = "boot/grub/grub.cfg"
	espImage    = "boot/efi.img"
	espLoader   = "EFI/BOOT"
)

// loaders are the boot loader files a medium needs, found in a root.
type loaders struct {
	isolinux, ldlinux, ipxe, grub string
	// mbr is isohdpfx.bin's boot code; nil when the root has none.
	mbr []byte
}

// findLoaders looks for the boot loaders of m in root.
func findLoaders(m *recipes.Media, root string) (*loaders, error) {
	l := &loaders{isolinux: netboot.FirstFile(root, isolinuxPaths), ldlinux: netboot.FirstFile(root, netboot.LdlinuxPaths)}
	if l.isolinux == "" {
		return nil, fmt.Errorf("%w: no isolinux.bin in %s: install isolinux and syslinux-common (or syslinux on lenny)", ErrNoLoader, root)
	}
	// Syslinux 5 and newer load ldlinux.c32 first; lenny's 3.71 has none.
	if l.ldlinux == "" && strings.Contains(l.isolinux, "ISOLINUX") {
		return nil, fmt.Errorf("%w: %s is syslinux 5 or newer and needs ldlinux.c32 (package syslinux-common)", ErrNoLoader, l.isolinux)
	}
	if code := netboot.FirstFile(root, mbrPaths); code != "" {
		b, err := os.ReadFile(code)
		if err != nil {
			return nil, err
		}
		l.mbr = b
	}
	if m.Kind == "ipxe" {
		if l.ipxe = netboot.FirstFile(root, ipxePaths); l.ipxe == "" {
			return nil, fmt.Errorf("%w: no ipxe.lkrn in %s: install ipxe", ErrNoLoader, root)
		}
	}
	if m.UEFI {
		if l.grub = netboot.FirstFile(root, grubPaths); l.grub == "" {
			return nil, fmt.Errorf("%w: no gcdx64.efi.signed in %s: install grub-efi-amd64-signed", ErrNoLoader, root)
		}
	}
	return l, nil
}

// hybridCapable says whether an isolinux.bin has the entry point the
// hybrid MBR's code jumps to.
func hybridCapable(isolinux string) bool {
	f, err := os.Open(isolinux)
	if err != nil {
		return false
	}
	defer f.Close()
	sig := make([]byte, len(hybridSignature))
	_, err = f.ReadAt(sig, 0x40)
	return err == nil && string(sig) == hybridSignature
}

// loaderRoot is where a recipe's boot loaders come from: the host's or
// the image's, as pxelinux.syslinux says.
func loaderRoot(o Options) string {
	return netboot.SyslinuxRoot(o.Recipe, o.HostRoot, o.ImageRoot)
}

// Preflight checks, before a build, that the host has the boot loaders
// the recipe's medium needs (when they are to come from the host).
func Preflight(r *recipes.Recipe, hostRoot string) error {
	if r.Netboot == nil || r.Netboot.Media == nil || r.Netboot.PXE.Syslinux == "image" {
		return nil
	}
	_, err := findLoaders(r.Netboot.Media, loaderRoot(Options{Options: netboot.Options{Recipe: r, HostRoot: hostRoot}}))
	return err
}

// Plan decides what goes on the medium, checking that every file exists.
func Plan(o Options) (*Medium, error) {
	r := o.Recipe
	if r.Netboot == nil || r.Netboot.Media == nil || r.Cluster == nil || r.NFSRoot == nil {
		return nil, errors.New("boot media need the recipe's netboot.media, cluster and nfsroot sections")
	}
	m := r.Netboot.Media
	root := loaderRoot(o)
	l, err := findLoaders(m, root)
	if err != nil {
		return nil, err
	}
	iso := &ISO{Files: map[string]File{}, VolumeID: volumeID(r.Name), Time: o.Time, HybridMBR: l.mbr,
		BIOSBoot: isolinuxDir + "/isolinux.bin", BootCatalog: isolinuxDir + "/boot.cat"}
	med := &Medium{ISO: iso}
	iso.Files[iso.BIOSBoot] = File{Src: l.isolinux, Mode: 0o644}
	if l.ldlinux != "" {
		iso.Files[isolinuxDir+"/ldlinux.c32"] = File{Src: l.ldlinux, Mode: 0o644}
	}
	switch {
	case l.mbr == nil:
		med.Notes = append(med.Notes, fmt.Sprintf("no isohdpfx.bin in %s: the ISO boots from CD only, not from a USB stick", root))
	case !hybridCapable(l.isolinux):
		iso.HybridMBR = nil
		med.Notes = append(med.Notes, fmt.Sprintf("%s has no entry point for a hybrid MBR: the ISO boots from CD only, not from a USB stick", l.isolinux))
	}

	if m.Kind == "ipxe" {
		iso.Files[ipxeKernel] = File{Src: l.ipxe, Mode: 0o644}
		iso.Files[ipxeScript] = File{Data: []byte(IPXEScript(r)), Mode: 0o644}
		iso.Files[isolinuxDir+"/isolinux.cfg"] = File{Data: []byte(IPXEConfig(r)), Mode: 0o644}
		return med, nil
	}

	initrd := o.Initramfs
	if initrd == "" {
		initrd = "/boot/initrd.img-" + o.Kernel
	}
	med.Entries = Entries(r, "/boot/vmlinuz-"+o.Kernel, initrd)
	iso.Files[isolinuxDir+"/isolinux.cfg"] = File{Data: []byte(IsolinuxConfig(r, med.Entries)), Mode: 0o644}
	for _, e := range med.Entries {
		for _, p := range []string{e.Kernel, e.Initrd} {
			src := filepath.Join(o.ImageRoot, p)
			if fi, err := os.Stat(src); err != nil || !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("%w: the image has no %s", netboot.ErrNoKernel, p)
			}
			dst := mediaPath(p)
			if prev, ok := iso.Files[dst]; ok && prev.Src != src {
				return nil, fmt.Errorf("%s and %s would both be /%s on the medium", prev.Src, src, dst)
			}
			iso.Files[dst] = File{Src: src, Mode: 0o644}
		}
	}
	if m.UEFI {
		// Debian's GRUB for CDs: syslinux.efi 6.04 dies with an invalid
		// opcode on current UEFI firmware (OVMF). Its built-in
		// configuration looks for /.disk/info, which the medium lacks
		// (go-diskfs gives ".disk" an empty ISO 9660 name), and then
		// reads grub.cfg next to itself: that one finds the ISO 9660
		// filesystem by its label and reads /boot/grub/grub.cfg there, so
		// the kernel and initramfs are read from the ISO and the ESP holds
		// GRUB alone.
		med.ESP = map[string]File{
			espLoader + "/BOOTX64.EFI": {Src: l.grub},
			espLoader + "/grub.cfg":    {Data: []byte(GrubLoaderConfig(r, iso.VolumeID))},
		}
		iso.Files[grubConfig] = File{Data: []byte(GrubConfig(r, med.Entries)), Mode: 0o644}
		iso.EFIBoot = espImage
	}
	return med, nil
}

// volumeID makes a volume label of ISO 9660's d-characters from a name.
func volumeID(name string) string {
	b := []byte(strings.ToUpper(name))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	if len(b) > 32 {
		b = b[:32]
	}
	if len(b) == 0 {
		return "KRGIMAGE"
	}
	return string(b)
}

// Write plans the medium and writes it to dst.
func Write(ctx context.Context, o Options, dst string) (*Medium, *Result, error) {
	med, err := Plan(o)
	if err != nil {
		return nil, nil, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, n := range med.Notes {
		log.Warn(n)
	}
	if med.ESP != nil {
		dir, err := os.MkdirTemp(filepath.Dir(dst), ".krgimage-esp-")
		if err != nil {
			return nil, nil, err
		}
		defer os.RemoveAll(dir)
		img := filepath.Join(dir, "efi.img")
		if err := esp.Write(img, espFiles(med.ESP), o.Time); err != nil {
			return nil, nil, fmt.Errorf("writing the EFI system partition: %w", err)
		}
		switch err := esp.Check(ctx, img); {
		case errors.Is(err, esp.ErrNoFsck):
			log.Warn("the EFI system partition is not checked", "err", err)
		case err != nil:
			return nil, nil, err
		}
		med.ISO.Files[espImage] = File{Src: img, Mode: 0o644}
	}
	res, err := med.ISO.WriteFile(dst)
	if err != nil {
		return nil, nil, fmt.Errorf("writing %s: %w", dst, err)
	}
	return med, res, nil
}

// espFiles are the ESP's files as package esp takes them: FAT has no
// modes.
func espFiles(files map[string]File) map[string]esp.File {
	out := make(map[string]esp.File, len(files))
	for p, f := range files {
		out[p] = esp.File{Data: f.Data, Src: f.Src}
	}
	return out
}
