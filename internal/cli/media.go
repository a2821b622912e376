package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/krgimage/krgimage/internal/layout"
	"github.com/krgimage/krgimage/pipeline"
)

type mediaOptions struct {
	out, recipe, image, kernel, kind string
	uefi                             bool
	flags                            recipeFlags
}

func (a *app) newMediaCmd() *cobra.Command {
	o := &mediaOptions{}
	cmd := &cobra.Command{
		Use:   "media [OUTPUT_DIR] [-o FILE.iso]",
		Short: "Write a bootable ISO for nodes that cannot boot over the network",
		Long: `Write boot media for nodes whose card or BIOS cannot PXE: an ISO 9660 image
(Rock Ridge and Joliet) that boots from a CD or, written to a USB stick with
dd, from the stick (hybrid MBR, as isohybrid makes).

--kind isolinux (the default) carries isolinux, the image's kernel and
krgimage's initramfs, booted with the append line the PXE nodes get, and an
entry per node that has its own arguments (type its name at the boot:
prompt). The node then mounts its NFS root like any other.
--kind ipxe carries iPXE alone: it asks DHCP and boots what the boot server
serves (pxelinux.0), so nodes take every setting from the server.
--uefi adds an EFI system partition with Debian's GRUB and the same
entries (isolinux kind).

The recipe is the one build.json in OUTPUT_DIR names, or --recipe; its
netboot.media section gives the defaults. The image is OUTPUT_DIR/rootfs,
or the recipe's outputs.rootfs.
Every date on the medium is SOURCE_DATE_EPOCH, else the build's time, so
the same build gives the same bytes.`,
		Example: `  krgimage media out -o node.iso
  krgimage media out --kind ipxe -o /srv/iso/pxe.iso
  krgimage media out --uefi`,
		Args: oneOptionalArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runMedia(cmd.Context(), firstArg(args), cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.out, "output", "o", "", "ISO file to write (default OUTPUT_DIR/ and the recipe's netboot.media.output or NAME.iso)")
	f.StringVar(&o.recipe, "recipe", "", "the recipe the image was built from (default: the one build.json names)")
	f.StringVar(&o.image, "image", "", "the image root (default OUTPUT_DIR/rootfs or the recipe's outputs.rootfs)")
	f.StringVar(&o.kernel, "kernel", "", "kernel version to boot (default: the only one in the image)")
	f.StringVar(&o.kind, "kind", "", "isolinux or ipxe (default: the recipe's, else isolinux)")
	f.BoolVar(&o.uefi, "uefi", false, "add a UEFI boot entry (default: the recipe's)")
	o.flags.add(cmd)
	return cmd
}

func (a *app) runMedia(ctx context.Context, out string, cmd *cobra.Command, o *mediaOptions) error {
	if out == "" {
		out = "out"
	}
	if o.kind != "" && o.kind != "isolinux" && o.kind != "ipxe" {
		return usagef("--kind %q: expected isolinux or ipxe", o.kind)
	}
	r, err := a.recipeOf(out, &bootTestOptions{recipe: o.recipe, flags: o.flags})
	if err != nil {
		return err
	}
	if r.Netboot == nil || r.Cluster == nil || r.NFSRoot == nil {
		return fmt.Errorf("%s has no netboot, cluster or nfsroot section: nodes booted from a medium need the boot server", r.Source)
	}
	m := r.Medium()
	if o.kind != "" {
		m.Kind = o.kind
	}
	if cmd.Flags().Changed("uefi") {
		m.UEFI = o.uefi
	}
	if err := m.Conflict(); err != nil {
		return usageError{err}
	}
	if errs := r.CheckMedia(m); len(errs) > 0 {
		return errs[0]
	}
	r.Netboot.Media = &m
	lay := layout.New(out, r)
	image := lay.Rootfs()
	if o.image != "" {
		image = o.image
	}
	if image, err = filepath.EvalSymlinks(image); err != nil {
		return fmt.Errorf("image root: %w (build the image first, or give --image)", err)
	}
	dst := lay.Media()
	if o.out != "" {
		dst = o.out
	}
	// The media step writes the recipe's file name in the output
	// directory: -o moves both.
	m.Output = filepath.Base(dst)
	t, err := a.mediaTime(out)
	if err != nil {
		return err
	}
	err = pipeline.RunOutputStep(ctx, "media", pipeline.OutputOptions{Recipe: r, Layout: lay.At(filepath.Dir(dst), image),
		Kernel: o.kernel, BuildTime: t, Log: a.log, Progress: a.progress})
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, dst)
	return nil
}

// mediaTime is the date on the medium: SOURCE_DATE_EPOCH, else the time
// of the build in out (so that the same build gives the same medium),
// else now.
func (a *app) mediaTime(out string) (time.Time, error) {
	if a.getenv("SOURCE_DATE_EPOCH") != "" {
		return a.buildTime()
	}
	if b, err := layout.ReadBuilt(out); err == nil && !b.BuildTime.IsZero() {
		return b.BuildTime.UTC(), nil
	}
	return a.buildTime()
}
