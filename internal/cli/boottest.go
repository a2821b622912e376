package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/krgimage/krgimage/boottest"
	"github.com/krgimage/krgimage/internal/layout"
	"github.com/krgimage/krgimage/internal/qemu"
	"github.com/krgimage/krgimage/pipeline"
	"github.com/krgimage/krgimage/recipes"
)

type bootTestOptions struct {
	recipe   string
	media    string
	usb      bool
	uefi     bool
	firmware string
	network  string
	dhcp     string
	http     bool
	nodes    int
	timeout  time.Duration
	flags    recipeFlags
}

func (f *bootTestOptions) add(cmd *cobra.Command, prefix string) {
	cmd.Flags().StringVar(&f.network, prefix+"network", "", "user (QEMU's network poses as the server) or netns (the real dhcpd, tftpd-hpa and NFS server); default the recipe's")
	cmd.Flags().StringVar(&f.dhcp, prefix+"dhcp", "", "with --network netns, the DHCP server to run: isc, kea, dnsmasq, or dnsmasq-proxy (beside a site DHCP server on a machine of its own); default the recipe's netboot.dhcp.server")
	cmd.Flags().BoolVar(&f.http, prefix+"http", false, "with --network netns, load the kernel and initramfs over HTTP (lpxelinux.0, nginx), as netboot.http does")
	cmd.Flags().IntVar(&f.nodes, prefix+"nodes", 0, "boot this many inventory nodes at once (netns); default the recipe's")
	cmd.Flags().DurationVar(&f.timeout, prefix+"timeout", 0, "time each node has to reach the success pattern; default the recipe's")
}

func (a *app) newBootTestCmd() *cobra.Command {
	o := &bootTestOptions{}
	cmd := &cobra.Command{
		Use:   "boot-test [OUTPUT_DIR]",
		Short: "Boot a built image over the network in QEMU and check it",
		Long: `Prove that a build boots: serve its image root over NFS (nfs-ganesha, at the
recipe's NFS path), PXE-boot inventory nodes in QEMU from the build's TFTP
tree, follow each console through pxelinux, kernel, initramfs, network, NFS
root and init to the login prompt, then log in and run the recipe's checks.
Everything runs in a private network namespace and is stopped whatever
happens; the console logs, result.json and a one-line verdict are left in
OUTPUT_DIR/boot-test.

--network user (the default) uses QEMU's own DHCP and TFTP, posing as the
recipe's server address; --network netns runs the seed's real servers (ISC
dhcpd with the generated dhcpd.conf, tftpd-hpa) on a bridge, and can boot
several nodes at once with their inventory MAC addresses. Needs root. The
DHCP server is the recipe's (netboot.dhcp.server), or --dhcp kea, dnsmasq or
dnsmasq-proxy, configured by the same generator as netboot/'s file; --http loads the kernel
and initramfs over HTTP (lpxelinux.0 over TFTP, then nginx), from a tree made
as krgimage netboot makes it with netboot.http; the proxy
runs beside a plain DHCP server on a machine of its own (another namespace on
the bridge) that gives the nodes their addresses and names.

To run the checks, boot-test logs in on the console as boot_test.login.user
(root by default). Without boot_test.login.password it uses a one-time
password of its own: its NFS server alone shows the nodes a copy of the
image's /etc/shadow holding its hash, so neither the image, its snapshot,
netboot/ nor the logs ever hold it, and a node the real server boots from
the same files cannot be logged into with it.

QEMU runs under KVM when a probe machine runs the BIOS under it within two
seconds, else under TCG (software emulation, several times slower); a KVM
guest that dies without output is started again under TCG. Either way
result.json says which and why; KRGIMAGE_QEMU_ACCEL=kvm or tcg decides, and
any other value is refused.

The recipe is the one build.json names, or --recipe; --set fills its
variables (boot_test.login.password, say).`,
		Example: `  krgimage boot-test out
  ROOT_PASSWORD="$(cat root.pw)" krgimage boot-test out   # the recipe's ${ROOT_PASSWORD}
  krgimage boot-test out --network netns --nodes 2
  krgimage boot-test out --network netns --dhcp kea
  krgimage boot-test out --firmware uefi-secureboot   # shim, GRUB, the signed kernel`,
		Args: oneOptionalArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := firstArg(args)
			if out == "" {
				out = "out"
			}
			r, err := a.recipeOf(out, o)
			if err != nil {
				return err
			}
			return a.runBootTest(cmd.Context(), r, out, o)
		},
	}
	cmd.Flags().StringVar(&o.recipe, "recipe", "", "the recipe the image was built from (default: the one build.json names)")
	cmd.Flags().StringVar(&o.media, "media", "", "boot from this ISO (krgimage media) instead of PXE; the NFS root is the same")
	cmd.Flags().BoolVar(&o.usb, "usb", false, "with --media, attach the ISO as a USB stick rather than a CD")
	cmd.Flags().StringVar(&o.firmware, "firmware", "bios", "what the nodes start: bios, uefi or uefi-secureboot (Debian's ovmf; a network boot loads the signed shim of netboot.uefi)")
	cmd.Flags().BoolVar(&o.uefi, "uefi", false, "the same as --firmware uefi")
	o.add(cmd, "")
	o.flags.add(cmd)
	return cmd
}

// recipeOf loads the recipe a build was made from: --recipe, else the
// one its build.json names, read again with the build's variables under
// what --set says now.
func (a *app) recipeOf(out string, o *bootTestOptions) (*recipes.Recipe, error) {
	if o.recipe != "" {
		return a.loadRecipe(o.recipe, &o.flags)
	}
	built, err := layout.ReadBuilt(out)
	if errors.Is(err, layout.ErrNotBuilt) {
		return nil, fmt.Errorf("%w; give --recipe", err)
	}
	if err != nil {
		return nil, err
	}
	r, err := built.Recipe.ReadRecipe(func(src string, set []string) (*recipes.Recipe, error) {
		flags := o.flags
		flags.set = set
		return a.loadRecipe(src, &flags)
	}, o.flags.set)
	if errors.Is(err, layout.ErrWithheld) {
		return nil, usageError{err}
	}
	return r, err
}

func (a *app) runBootTest(ctx context.Context, r *recipes.Recipe, out string, o *bootTestOptions) error {
	a.log.Info("boot test", "recipe", r.Source, "path", out)
	if o.usb && o.media == "" {
		return usagef("--usb needs --media")
	}
	firmware := o.firmware
	if o.uefi {
		if o.firmware != boottest.FirmwareBIOS && o.firmware != boottest.FirmwareUEFI {
			return usagef("--uefi is --firmware uefi, and --firmware says %s", o.firmware)
		}
		firmware = boottest.FirmwareUEFI
	}
	tree := ""
	if o.http && r.Netboot != nil && r.Netboot.HTTP == nil {
		var cleanup func()
		var err error
		if r, tree, cleanup, err = a.httpTree(ctx, r, out); err != nil {
			return err
		}
		defer cleanup()
	}
	res, err := boottest.Run(ctx, boottest.Options{Recipe: r, Out: out, Netboot: tree, Network: o.network, DHCP: o.dhcp, Nodes: o.nodes, Timeout: o.timeout,
		Media: o.media, MediaUSB: o.usb, Firmware: firmware,
		Log: a.log, Progress: a.progress, Clock: a.now})
	if errors.Is(err, qemu.ErrUnknownAccel) || errors.Is(err, boottest.ErrServerChoice) {
		return usageError{err}
	}
	if res != nil {
		a.progress.Wait()
		fmt.Fprintln(a.stdout, res.Verdict)
	}
	return err
}

// httpTree is the boot server's tree of an HTTP boot of the build in out,
// made as krgimage netboot makes it for the recipe with netboot.http, in
// a directory removed once the test is over.
func (a *app) httpTree(ctx context.Context, r *recipes.Recipe, out string) (*recipes.Recipe, string, func(), error) {
	c := r.WithNetboot(func(nb *recipes.Netboot) {
		nb.HTTP = &recipes.HTTP{}
		nb.HTTP.SetDefaults()
	})
	t, err := pipeline.NetbootTree(ctx, pipeline.OutputOptions{Recipe: c, Layout: layout.New(out, c), Log: a.log})
	if err != nil {
		return nil, "", nil, fmt.Errorf("the HTTP boot's server files: %w", err)
	}
	if len(t.Pending) > 0 {
		return nil, "", nil, fmt.Errorf("%w: %s has no image to boot", boottest.ErrNotBuilt, out)
	}
	dir, err := os.MkdirTemp(out, ".boot-test-http-")
	if err != nil {
		return nil, "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	if err := t.Write(filepath.Join(dir, "netboot")); err != nil {
		cleanup()
		return nil, "", nil, err
	}
	return c, filepath.Join(dir, "netboot"), cleanup, nil
}
