package provision

import (
	"context"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// packages installs packages with apt-get (recipes.Packages).
type packages struct {
	cfg *recipes.Packages
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
