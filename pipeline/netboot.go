package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/krgimage/krgimage/kernel"
	"github.com/krgimage/krgimage/netboot"
	"github.com/krgimage/krgimage/recipes"
)

// netbootStep writes the boot server's files into OUT/netboot: dhcpd.conf,
// tftpd-hpa's defaults, the NFS exports and the TFTP tree with the image's
// kernel and initramfs.
type netbootStep struct{}

func (*netbootStep) Name() string { return "netboot" }

// It reads the image root and writes only to the output directory.
func (*netbootStep) outputOnly() {}

func (*netbootStep) Describe(env *Env) []string {
	r := env.Recipe
	out := env.finalLayout().Netboot()
	tftp := netboot.TFTPRoot(r)
	lines := []string{
		"write " + out + ":",
		"  " + netboot.DHCPPath(r) + " (" + dhcpKind(r) + ", " + fmt.Sprint(len(r.Nodes())) + " nodes)",
		"  " + netboot.TFTPDefaultsPath + " (" + r.Netboot.TFTP.Form + " form), " + netboot.ExportsPath,
		"  " + tftp + "/: pxelinux.0 (" + r.Netboot.PXE.Syslinux + "'s syslinux), the kernel and initramfs, pxelinux.cfg/default",
		"  kernel arguments: " + strings.Join(netboot.KernelArgs(r, nil), " "),
	}
	if r.Netboot.HTTP != nil {
		lines = append(lines, "  "+netboot.NginxPath+": the TFTP tree over HTTP, where lpxelinux.0 fetches the kernel and initramfs")
	}
	return lines
}

// dhcpKind says which server the DHCP configuration is for.
func dhcpKind(r *recipes.Recipe) string {
	switch {
	case netboot.DnsmasqProxy(r):
		return "dnsmasq, proxy DHCP beside the site's server"
	case r.Netboot.DHCP.Server == "isc":
		return r.Netboot.DHCP.Flavor + " syntax"
	}
	return r.Netboot.DHCP.Server
}

func (*netbootStep) Validate(context.Context, *Env) error { return nil }

// kernelVersion is the kernel the build installed, or, when the recipe has
// no kernel step, the one the image has (kernel.version picks one of
// several).
func (env *Env) kernelVersion() (string, error) {
	if v := env.State.KernelVersion; v != "" {
		return v, nil
	}
	want := ""
	if k := env.Recipe.Kernel; k != nil {
		want = k.Version
	}
	return kernel.Resolve(env.Root, want)
}

// Preflight finds the host's pxelinux before the build starts, rather
// than after it; an image's pxelinux can only be looked for once built.
func (*netbootStep) Preflight(_ context.Context, env *Env) error {
	if env.Recipe.Netboot.PXE.Syslinux == "image" {
		return nil
	}
	_, _, err := netboot.FindPXELinux(netboot.SyslinuxRoot(env.Recipe, "", ""))
	return err
}

func (s *netbootStep) Run(_ context.Context, env *Env) error {
	t, err := s.tree(env)
	if err != nil {
		return err
	}
	if err := t.Write(env.layout().Netboot()); err != nil {
		return err
	}
	env.Log.Info("boot server files written", "path", env.finalLayout().Netboot(), "files", len(t.Files))
	return nil
}

// tree is the boot server's files for the image in env.
func (*netbootStep) tree(env *Env) (*netboot.Tree, error) {
	version, err := env.kernelVersion()
	if err != nil {
		return nil, fmt.Errorf("finding the kernel to serve: %w", err)
	}
	return netboot.Generate(netboot.Options{Recipe: env.Recipe, ImageRoot: env.Root, Kernel: version, Initramfs: env.State.Initramfs})
}
