package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/krgimage/krgimage/initramfs"
	"github.com/krgimage/krgimage/kernel"
	"github.com/krgimage/krgimage/stagecache"
)

// initramfsStep writes the nodes' initramfs: krgimage's own, or
// initramfs-tools' mkinitramfs run inside the image as the seed does.
type initramfsStep struct{}

func (*initramfsStep) Name() string { return "initramfs" }

// output is where the initramfs goes inside the image.
func (*initramfsStep) output(env *Env, version string) string {
	if o := env.Recipe.Initramfs.Output; o != "" {
		return strings.ReplaceAll(o, "VERSION", version)
	}
	return "/boot/initrd.img-" + version
}

func (s *initramfsStep) options(env *Env, version string) initramfs.Options {
	r := env.Recipe
	c := r.Initramfs
	o := initramfs.Options{
		Root: env.Root, Kernel: version, Compression: c.Compression, NICs: c.NICs, DefaultNICs: !r.Written("initramfs.nics"),
		Modules: c.Modules, Busybox: r.Path(c.Busybox), BuildTime: env.BuildTime, Log: env.Log,
	}
	if n := r.NFSRoot; n != nil {
		o.NFSVersion, o.Mode, o.NFSOptions = n.Version, n.Mode, n.Options
	}
	for _, f := range c.Files {
		o.Files = append(o.Files, initramfs.FileCopy{Src: r.Path(f.Src), Dst: f.Dst})
	}
	return o
}

func (s *initramfsStep) Describe(env *Env) []string {
	c := env.Recipe.Initramfs
	out := s.output(env, "VERSION")
	if c.Generator == "initramfs-tools" {
		return []string{"mkinitramfs inside the image with BOOT=nfs MODULES=netboot COMPRESS=" + c.Compression + " -> " + out}
	}
	nics := strings.Join(c.NICs, " ")
	if !env.Recipe.Written("initramfs.nics") {
		nics += " (those this kernel has)"
	}
	lines := []string{
		"write " + out + " (" + c.Compression + ", reproducible):",
		"  busybox (the image's busybox-static, else initramfs.busybox)",
		"  network drivers: " + nics,
		"  NFS client: " + strings.Join(initramfs.NFSModules, " ") + ", with everything modules.dep says they need",
		"  /init: DHCP or ip=, NFS root from nfsroot= or DHCP's root-path, then switch_root to the image's /sbin/init",
	}
	if len(c.Modules) > 0 {
		lines = append(lines, "  more modules: "+strings.Join(c.Modules, " "))
	}
	return lines
}

func (*initramfsStep) Validate(context.Context, *Env) error { return nil }

func (s *initramfsStep) Run(ctx context.Context, env *Env) error {
	version := env.State.KernelVersion
	if version == "" {
		v, err := kernel.Resolve(env.Root, "")
		if err != nil {
			return fmt.Errorf("finding the kernel to make an initramfs for: %w", err)
		}
		version = v
	}
	out := s.output(env, version)
	c := env.Recipe.Initramfs
	if err := initramfs.CheckCompression(env.Root, version, c.Compression); err != nil {
		return err
	}
	if c.Generator == "initramfs-tools" {
		if err := s.mkinitramfs(ctx, env, version, out); err != nil {
			return err
		}
	} else {
		res, err := initramfs.WriteFile(ctx, s.options(env, version), filepath.Join(env.Root, out))
		if err != nil {
			return err
		}
		env.Log.Info("initramfs written", "path", out, "bytes", res.Size, "modules", len(res.Modules), "entries", res.Entries)
		if len(res.Absent) > 0 {
			env.Log.Info("network drivers this kernel does not have", "modules", strings.Join(res.Absent, " "))
		}
	}
	env.State.Initramfs = out
	return nil
}

// mkinitramfs runs initramfs-tools inside the image, configured for a
// network boot as the seed asks ("the ramdisk image must be created with
// network support").
func (s *initramfsStep) mkinitramfs(ctx context.Context, env *Env, version, out string) (err error) {
	compress := env.Recipe.Initramfs.Compression
	if compress == "none" {
		return errors.New("initramfs-tools cannot write an uncompressed initramfs; choose gzip, xz, zstd or lzma")
	}
	sess, err := (&kernelStep{}).session(ctx, env)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, sess.Close()) }()
	if !sess.Exists("/usr/sbin/mkinitramfs") {
		if err := sess.Install(ctx, []string{"initramfs-tools"}, false); err != nil {
			return err
		}
	}
	if err := sess.SetShellVars("/etc/initramfs-tools/initramfs.conf", map[string]string{"BOOT": "nfs", "MODULES": "netboot", "COMPRESS": compress}); err != nil {
		return err
	}
	return sess.Run(ctx, "mkinitramfs", "-o", out, version)
}

func (s *initramfsStep) addKey(_ context.Context, env *Env, k *stagecache.Key, _ *releases) error {
	r := env.Recipe
	k.AddBytes("initramfs", canonical(r.Initramfs))
	k.Add("default-nics", strconv.FormatBool(!r.Written("initramfs.nics")))
	k.AddBytes("context", recipeContext(env))
	if b := r.Initramfs.Busybox; b != "" {
		if err := k.AddPath("busybox", r.Path(b)); err != nil {
			return err
		}
	}
	for _, f := range r.Initramfs.Files {
		if err := k.AddPath("file", r.Path(f.Src)); err != nil {
			return err
		}
	}
	return nil
}
