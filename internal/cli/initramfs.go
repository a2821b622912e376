package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/krgimage/krgimage/initramfs"
	"github.com/krgimage/krgimage/kernel"
	"github.com/krgimage/krgimage/recipes"
)

type initramfsOptions struct {
	root, kernel, out, compression, busybox, mode, list string
	nics, modules                                       []string
	nfsVersion                                          int
}

func (a *app) newInitramfsCmd() *cobra.Command {
	o := &initramfsOptions{}
	cmd := &cobra.Command{
		Use:   "initramfs --root ROOT -o FILE | --list FILE",
		Short: "Write a network-boot initramfs for an image, or list one",
		Long: `Write the initramfs a diskless node boots with: busybox, the network and NFS
drivers of the image's kernel (closed over modules.dep), and an /init that
gets an address by DHCP (or from ip=), mounts the root over NFS (nfsroot= or
DHCP's root-path) and switches to the image's /sbin/init. The output is
byte-for-byte reproducible (SOURCE_DATE_EPOCH sets the time in it).

--list shows what any initramfs holds, krgimage's or initramfs-tools'.`,
		Example: `  krgimage initramfs --root out/rootfs -o initrd.img
  krgimage initramfs --root /NFSROOT/kerrighed --kernel 2.6.30-krg3.0.0 --compression gzip -o /srv/tftp/initrd.img
  krgimage initramfs --list out/rootfs/boot/initrd.img-6.1.0-50-amd64`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.list != "" {
				return a.listInitramfs(o.list)
			}
			return a.writeInitramfs(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.root, "root", "", "image root holding the kernel's modules and busybox")
	f.StringVar(&o.kernel, "kernel", "", "kernel version (default: the only one in ROOT/boot)")
	f.StringVarP(&o.out, "output", "o", "", "initramfs file to write")
	f.StringVar(&o.compression, "compression", "gzip", "gzip, xz, zstd, lzma or none")
	f.StringSliceVar(&o.nics, "nic", nil, "network driver to include (repeatable; default: common server and virtual NICs this kernel has)")
	f.StringSliceVar(&o.modules, "module", nil, "another kernel module to include (repeatable)")
	f.StringVar(&o.busybox, "busybox", "", "busybox binary to use when the image has none")
	f.IntVar(&o.nfsVersion, "nfs-version", 3, "NFS version /init uses when the command line does not say (3 or 4)")
	f.StringVar(&o.mode, "mode", "ro", "root mount mode when the command line does not say (ro or rw)")
	f.StringVar(&o.list, "list", "", "list the contents of an initramfs instead")
	return cmd
}

func (a *app) writeInitramfs(cmd *cobra.Command, o *initramfsOptions) error {
	if o.root == "" || o.out == "" {
		return usagef("initramfs needs --root and -o (or --list FILE)")
	}
	if o.mode != "ro" && o.mode != "rw" {
		return usagef("--mode %q: expected ro or rw", o.mode)
	}
	if o.nfsVersion != 3 && o.nfsVersion != 4 {
		return usagef("--nfs-version %d: expected 3 or 4", o.nfsVersion)
	}
	version, err := kernel.Resolve(o.root, o.kernel)
	if err != nil {
		return err
	}
	bt, err := a.buildTime()
	if err != nil {
		return err
	}
	opts := initramfs.Options{Root: o.root, Kernel: version, Compression: o.compression, NICs: o.nics, Modules: o.modules,
		Busybox: o.busybox, NFSVersion: o.nfsVersion, Mode: o.mode, BuildTime: bt, Log: a.log}
	if len(opts.NICs) == 0 {
		opts.NICs, opts.DefaultNICs = recipes.DefaultNICs, true
	}
	out, err := filepath.Abs(o.out)
	if err != nil {
		return err
	}
	res, err := initramfs.WriteFile(cmd.Context(), opts, out)
	if err != nil {
		return err
	}
	a.log.Info("initramfs written", "path", out, "kernel", version, "bytes", res.Size, "modules", len(res.Modules))
	if len(res.Absent) > 0 {
		a.log.Info("network drivers this kernel does not have", "modules", strings.Join(res.Absent, " "))
	}
	fmt.Fprintln(a.stdout, out)
	return nil
}

func (a *app) listInitramfs(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	entries, algo, err := initramfs.List(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, e := range entries {
		fmt.Fprintln(a.stdout, e.Format())
	}
	a.log.Info("listed", "path", path, "entries", len(entries), "compression", algo)
	return nil
}
