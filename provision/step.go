package provision

import (
	"context"
	"errors"
	"fmt"
	"path"
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

// stepType is what the registry holds of a step type: its configuration
// with the defaults set, which the recipe's YAML is decoded over, and how
// the step is built from a configuration.
type stepType struct {
	config func() recipes.ProvisionConfig
	build  func(c recipes.ProvisionConfig, img *Image) (Step, bool)
}

// typeOf ties a configuration type to its step; each step type's file
// declares one.
func typeOf[C recipes.ProvisionConfig](config func() C, build func(c C, img *Image) Step) stepType {
	return stepType{
		config: func() recipes.ProvisionConfig { return config() },
		build: func(c recipes.ProvisionConfig, img *Image) (Step, bool) {
			cfg, ok := c.(C)
			if !ok {
				return nil, false
			}
			return build(cfg, img), true
		},
	}
}

// steps is the registry, the one place a step type is listed: its name in
// a recipe's provision entries and its file's stepType.
var steps = map[string]stepType{
	"root-password":   rootPasswordType,
	"users":           usersType,
	"apt-sources":     aptSourcesType,
	"packages":        packagesType,
	"hosts":           hostsType,
	"nfsbooted":       nfsbootedType,
	"mtab":            mtabType,
	"fstab":           fstabType,
	"rcs":             rcsType,
	"initramfs-tools": initramfsToolsType,
	"locale":          localeType,
	"ssh":             sshType,
	"run":             runType,
	"files":           filesType,
	"write":           writeType,
}

func init() {
	for typ, st := range steps {
		recipes.RegisterProvision(typ, st.config)
	}
}

// New returns the step for a provision entry. Whether it can change the
// kernel depends on its configuration alone, so an Image holding only the
// recipe answers ChangesKernel.
func New(e recipes.ProvisionEntry, img *Image) (Step, error) {
	if st, ok := steps[e.Type]; ok {
		if s, ok := st.build(e.Config, img); ok {
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
