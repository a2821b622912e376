package provision

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// Image is the image and the build a step works on: the session
// package's, since Apply runs in a session opened on it.
type Image = chroot.Image

// ErrClash: a user or group conflicts with one in the image. The session's
// errors (chroot.ErrMissing, chroot.ErrUnsafePath, chroot.ErrNoSuchGroup,
// chroot.ErrNoSuchPackage) come through unchanged.
var ErrClash = errors.New("conflicts with the image")

// Step is one provisioning step, built from a recipe's provision entry.
type Step interface {
	// Describe says what Apply will do, for the plan.
	Describe() []string
	// Check validates what can be checked before anything runs (sources
	// named by the recipe exist), without side effects.
	Check() error
	// Apply does the work in an open session. Running it twice gives the
	// same tree.
	Apply(ctx context.Context, s *chroot.Session) error
	// Reads lists what Apply reads beyond the step's configuration and
	// the recipe context every provisioning stage is keyed by (the
	// recipe's top-level keys and the build's mirror): files, variables
	// and archives. The stage cache keys the step by their content, in
	// this order; one left out gives stale cache hits.
	Reads() ([]Input, error)
	// ChangesKernel says whether the step can change how a packaged
	// kernel installs: APT sources or packages, or configuration its
	// maintainer scripts, hooks or depmod read. The kernel is installed
	// after the last step that can, so that editing a later one does not
	// install it again.
	ChangesKernel() bool
}

// Input is one thing a step reads: exactly one of File, Env and Archive
// is set.
type Input struct {
	// Key names the input in the cache key.
	Key string
	// File is a file or directory, relative to the recipe's directory.
	File string
	// Env is a variable read through the image's LookupEnv.
	Env string
	// Archive is an APT archive whose package indices the step installs
	// from.
	Archive *Archive
}

// Archive is one APT archive: a mirror, a suite and its components.
type Archive struct {
	URI, Suite string
	Components []string
}

// inputs collects a step's inputs, leaving out what the recipe left empty.
type inputs []Input

func (in *inputs) file(key, p string) {
	if p != "" {
		*in = append(*in, Input{Key: key, File: p})
	}
}

func (in *inputs) env(name string) {
	if name != "" {
		*in = append(*in, Input{Key: "env", Env: name})
	}
}

// constructor builds a step from its configuration; false means the
// configuration is of another type.
type constructor func(c recipes.ProvisionConfig, img *Image) (Step, bool)

// of adapts a step's constructor to the registry's signature.
func of[C recipes.ProvisionConfig](build func(c C, img *Image) Step) constructor {
	return func(c recipes.ProvisionConfig, img *Image) (Step, bool) {
		cfg, ok := c.(C)
		if !ok {
			return nil, false
		}
		return build(cfg, img), true
	}
}

// steps is the registry: one line per step type, keyed as recipes'
// registry is.
var steps = map[string]constructor{
	"root-password":   of(func(c *recipes.RootPassword, img *Image) Step { return rootPassword{c, img} }),
	"users":           of(func(c *recipes.Users, img *Image) Step { return users{c, img} }),
	"apt-sources":     of(func(c *recipes.AptSources, img *Image) Step { return aptSources{c, img} }),
	"packages":        of(func(c *recipes.Packages, _ *Image) Step { return packages{c} }),
	"hosts":           of(func(c *recipes.Hosts, img *Image) Step { return hosts{c, img} }),
	"nfsbooted":       of(func(c *recipes.Nfsbooted, img *Image) Step { return nfsbooted{c, img} }),
	"mtab":            of(func(*recipes.Mtab, *Image) Step { return mtab{} }),
	"fstab":           of(func(c *recipes.Fstab, img *Image) Step { return fstab{c, img} }),
	"rcs":             of(func(_ *recipes.RcS, img *Image) Step { return rcs{img} }),
	"initramfs-tools": of(func(c *recipes.InitramfsTools, _ *Image) Step { return initramfsTools{c} }),
	"locale":          of(func(c *recipes.Locale, _ *Image) Step { return locale{c} }),
	"ssh":             of(func(c *recipes.SSH, img *Image) Step { return ssh{c, img} }),
	"run":             of(func(c *recipes.Run, img *Image) Step { return runScript{c, img} }),
	"files":           of(func(c *recipes.Files, img *Image) Step { return files{c, img} }),
	"write":           of(func(c *recipes.Write, _ *Image) Step { return write{c} }),
}

// Types lists the registered step types, sorted.
func Types() []string {
	out := make([]string, 0, len(steps))
	for k := range steps {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// New returns the step for a provision entry. Whether it can change the
// kernel depends on its configuration alone, so an Image holding only the
// recipe answers ChangesKernel.
func New(e recipes.ProvisionEntry, img *Image) (Step, error) {
	if build, ok := steps[e.Type]; ok {
		if s, ok := build(e.Config, img); ok {
			return s, nil
		}
	}
	return nil, fmt.Errorf("no provisioning step for %q (%T)", e.Type, e.Config)
}

// kernelPaths hold what a kernel package's installation reads: APT's and
// dpkg's configuration, kernel and initramfs hooks and settings, depmod's
// and modprobe's configuration, and where the kernel goes.
var kernelPaths = []string{"/etc/apt", "/etc/dpkg", "/etc/kernel", "/etc/kernel-img.conf", "/etc/initramfs-tools",
	"/usr/share/initramfs-tools", "/etc/depmod.d", "/etc/modprobe.d", "/etc/modules", "/boot", "/lib/modules", "/usr/lib/modules"}

// touchesKernel says whether writing dst can change a kernel package's
// installation: dst is, holds or lies under one of kernelPaths.
func touchesKernel(dst string) bool {
	dst = path.Clean(dst)
	for _, p := range kernelPaths {
		if dst == "/" || dst == p || strings.HasPrefix(dst, p+"/") || strings.HasPrefix(p, dst+"/") {
			return true
		}
	}
	return false
}
