package provision

import (
	"context"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// Packages installs packages with apt-get inside the image, without
// recommended packages unless recommends is true:
//
//   - packages: [dhcp3-common, nfs-common, nfsbooted, openssh-server]
type Packages struct {
	Install    []string `yaml:"install" check:"package"`
	Recommends bool     `yaml:"recommends,omitempty"`
}

var packagesType = typeOf(func() *Packages { return &Packages{} }, func(c *Packages, _ *Image) Step { return packages{c} })

func (*Packages) ShorthandField() string { return "install" }

func (p *Packages) Validate(v *recipes.Validator, keyPath string) {
	if len(p.Install) == 0 {
		v.Errorf(keyPath, recipes.ErrMissing, "list at least one package to install")
	}
}

// packages installs packages with apt-get (Packages).
type packages struct {
	cfg *Packages
}

func (p packages) Describe() []string {
	return []string{strings.Join(chroot.InstallArgs(p.cfg.Install, p.cfg.Recommends), " "), "apt-get clean"}
}

func (packages) Check() error { return nil }

// Reads nothing beyond the recipe context: the indices it installs from
// key the bootstrap or an apt-sources step before it.
func (packages) Reads() ([]Input, error) { return nil, nil }

// ChangesKernel: a package may bring kernel hooks, or the kernel itself.
func (packages) ChangesKernel() bool { return true }

func (p packages) Apply(ctx context.Context, s *chroot.Session) error {
	return s.Install(ctx, p.cfg.Install, p.cfg.Recommends)
}
