package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/krgimage/krgimage/media"
	"github.com/krgimage/krgimage/netboot"
	"github.com/krgimage/krgimage/recipes"
)

// mediaStep writes the boot medium the recipe's netboot.media asks for
// into the output directory: see media and recipes.Media.
type mediaStep struct{}

// mediaSteps is the media step when the recipe asks for a medium.
func mediaSteps(r *recipes.Recipe) []BuildStep {
	if r.Netboot == nil || r.Netboot.Media == nil {
		return nil
	}
	return []BuildStep{&mediaStep{}}
}

func (*mediaStep) Name() string { return "media" }

// It reads the image root and writes only to the output directory.
func (*mediaStep) outputOnly() {}

func (*mediaStep) Describe(env *Env) []string {
	r := env.Recipe
	m := r.Netboot.Media
	out := "write " + env.finalLayout().Media() + " (ISO 9660, Rock Ridge, Joliet; hybrid MBR for USB sticks"
	if m.UEFI {
		out += "; UEFI: GRUB in an EFI system partition"
	}
	out += "):"
	what := "  isolinux with the PXE nodes' kernel, initramfs and append line, an entry per node with its own arguments"
	if m.Kind == "ipxe" {
		what = "  isolinux starting iPXE, which asks DHCP and boots the boot server's pxelinux.0"
	}
	return []string{out, what, "  boot loaders from the " + r.Netboot.PXE.Syslinux + "'s packages"}
}

func (*mediaStep) Validate(context.Context, *Env) error { return nil }

// Preflight finds the host's boot loaders before the build spends its
// time: a missing package is found now, not at the end.
func (*mediaStep) Preflight(_ context.Context, env *Env) error {
	return media.Preflight(env.Recipe, "/")
}

func (*mediaStep) Run(ctx context.Context, env *Env) error {
	version, err := env.kernelVersion()
	if err != nil {
		return fmt.Errorf("finding the kernel for the boot medium: %w", err)
	}
	o := MediaOptions(env.Recipe, env.Root, version, env.BuildTime, env.Log)
	if env.State.Initramfs != "" {
		o.Initramfs = env.State.Initramfs
	}
	_, res, err := media.Write(ctx, o, env.layout().Media())
	if err != nil {
		return err
	}
	m := env.Recipe.Netboot.Media
	env.Log.Info("boot medium written", "path", env.finalLayout().Media(), "kind", m.Kind, "uefi", m.UEFI, "bytes", res.Bytes, "sha256", res.SHA256, "usb", res.Hybrid)
	return nil
}

// MediaOptions are the options of the medium of an image root built from
// r: its kernel version, the initramfs where the initramfs step puts it,
// and t, the build time, as every date on the medium.
func MediaOptions(r *recipes.Recipe, root, version string, t time.Time, log *slog.Logger) media.Options {
	o := media.Options{Options: netboot.Options{Recipe: r, ImageRoot: root, Kernel: version}, Time: t, Log: log}
	if r.Initramfs != nil {
		o.Initramfs = (&initramfsStep{}).output(&Env{Recipe: r}, version)
	}
	return o
}
