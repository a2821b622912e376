package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/krgimage/krgimage/internal/layout"
	"github.com/krgimage/krgimage/netboot"
	"github.com/krgimage/krgimage/pipeline"
)

type netbootOptions struct {
	out, diff, install, image, kernel string
	flags                             recipeFlags
}

func (a *app) newNetbootCmd() *cobra.Command {
	o := &netbootOptions{}
	cmd := &cobra.Command{
		Use:   "netboot [recipe] (--out DIR | --diff ROOT | --install ROOT)",
		Short: "Generate the boot server's DHCP, TFTP and NFS files from a recipe",
		Long: `Generate what the seed's server needs, from the recipe's inventory: dhcpd.conf
(the four parts, a host entry per node), /etc/default/tftpd-hpa, the NFS
exports, and the TFTP tree with pxelinux, the image's kernel and initramfs,
pxelinux.cfg/default and a file per node that boots differently (named by
its address in hexadecimal).

--out DIR writes the tree (etc/..., srv/tftp/...) into DIR. --diff ROOT shows
what would change on the server whose root is ROOT (usually /). --install
ROOT writes the files into place and prints the commands that reload the
services. It writes through no symlink (a link anywhere on a file's path
is refused), replaces each file whole (a temporary file renamed over it),
keeps each file whose content it changes as FILE.krgimage-bak (or .1, .2...
next to an earlier backup, never over it) with its mode and owner, and
refuses a tftp.root that is a system directory such as / or /etc.

The kernel and initramfs come from --image (default: OUT/rootfs of the
build, or the recipe's outputs.rootfs). When that default root does not
exist yet, the server comes first, as in the seed: every configuration file
and the host's pxelinux are written, and the command lists the image's files
still to come (the kernel and initramfs, named by --kernel or the recipe's
kernel.version when given, else by the image's /vmlinuz and /initrd.img).`,
		Example: `  krgimage netboot recipes/kerrighed-lenny.yaml --image /NFSROOT/kerrighed --out /tmp/server
  krgimage netboot --diff /
  krgimage netboot --install /`,
		Args: oneOptionalArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runNetboot(cmd.Context(), firstArg(args), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "", "write the tree into this directory")
	f.StringVar(&o.diff, "diff", "", "show what would change under this root")
	f.StringVar(&o.install, "install", "", "install into this root, backing up replaced files")
	f.StringVar(&o.image, "image", "", "the built image root (default out/rootfs or the recipe's outputs.rootfs)")
	f.StringVar(&o.kernel, "kernel", "", "kernel version to serve (default: the only one in the image)")
	o.flags.add(cmd)
	return cmd
}

func (a *app) runNetboot(ctx context.Context, recipe string, o *netbootOptions) error {
	modes := 0
	for _, m := range []string{o.out, o.diff, o.install} {
		if m != "" {
			modes++
		}
	}
	if modes != 1 {
		return usagef("netboot needs exactly one of --out, --diff and --install")
	}
	r, err := a.loadRecipe(recipe, &o.flags)
	if err != nil {
		return err
	}
	if r.Netboot == nil {
		return fmt.Errorf("%s has no netboot section", r.Source)
	}
	lay := layout.New("out", r)
	if o.image != "" {
		lay = lay.At(lay.Out(), o.image)
	}
	if _, err := os.Stat(lay.Rootfs()); err != nil && (o.image != "" || !errors.Is(err, fs.ErrNotExist)) {
		// A root given by hand that is not there is a mistake, not a
		// server set up before its image.
		return fmt.Errorf("image root: %w", err)
	}
	t, err := pipeline.NetbootTree(ctx, pipeline.OutputOptions{Recipe: r, Layout: lay, Kernel: o.kernel, Log: a.log})
	if err != nil {
		return err
	}
	if len(t.Pending) > 0 {
		a.log.Warn("no image yet: writing the server's configuration and loaders; the image's files are still to come", "image", lay.Rootfs())
	}
	defer a.reportPending(t)
	switch {
	case o.out != "":
		if err := t.Write(o.out); err != nil {
			return err
		}
		a.log.Info("boot server files written", "path", o.out, "files", len(t.Files))
		fmt.Fprintln(a.stdout, o.out)
	case o.diff != "":
		n, err := t.Diff(o.diff, a.stdout)
		if err != nil {
			return err
		}
		a.log.Info("compared with the server", "path", o.diff, "changed", n, "files", len(t.Files))
	default:
		return a.installNetboot(ctx, t, o.install)
	}
	return nil
}

// reportPending says which files the configuration names that the image
// will give, and how they will come.
func (a *app) reportPending(t *netboot.Tree) {
	for _, p := range t.Pending {
		fmt.Fprintf(a.stdout, "still to come: /%s (%s)\n", p.Path, p.From)
	}
	if len(t.Pending) > 0 {
		fmt.Fprintln(a.stdout, "once the image is built, run the same command again: it copies them in, and names the kernel by its version")
	}
}

// installNetboot installs the tree and says what it wrote and what it kept,
// also when it stopped halfway: the admin needs to know which files are
// new and where the old ones went.
func (a *app) installNetboot(ctx context.Context, t *netboot.Tree, root string) error {
	rep, err := t.Install(ctx, root)
	for _, f := range rep.Installed {
		if f.Backup == "" {
			fmt.Fprintf(a.stdout, "installed %s\n", f.Path)
			continue
		}
		fmt.Fprintf(a.stdout, "installed %s (the old one is kept as %s)\n", f.Path, f.Backup)
		a.log.Info("kept the replaced file", "path", f.Backup)
	}
	switch n := len(rep.Unchanged); n {
	case 0:
	case 1:
		fmt.Fprintln(a.stdout, "1 file already up to date")
	default:
		fmt.Fprintf(a.stdout, "%d files already up to date\n", n)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "Installed. Reload the services:")
	for _, c := range t.Services {
		fmt.Fprintln(a.stdout, "  "+c)
	}
	return nil
}
