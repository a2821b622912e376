package chroot

import (
	"context"
	"fmt"

	"github.com/krgimage/krgimage/recipes"
)

// Step is one provisioning step, built from a recipe's provision entry.
type Step interface {
	// Describe says what Apply will do, for the plan.
	Describe() []string
	// Check validates what can be checked before anything runs (sources
	// named by the recipe exist), without side effects.
	Check() error
	// Apply does the work in an open session. Running it twice gives the
	// same tree.
	Apply(ctx context.Context, s *Session) error
}

// New returns the step for a provision entry.
func New(e recipes.StepEntry, img *Image) (Step, error) {
	switch c := e.Config.(type) {
	case *recipes.RootPassword:
		return rootPassword{cfg: c, img: img}, nil
	case *recipes.Users:
		return users{cfg: c, img: img}, nil
	case *recipes.AptSources:
		return aptSources{cfg: c, img: img}, nil
	case *recipes.Packages:
		return packages{cfg: c}, nil
	case *recipes.Hosts:
		return hosts{cfg: c, img: img}, nil
	case *recipes.Nfsbooted:
		return nfsbooted{cfg: c, img: img}, nil
	case *recipes.Mtab:
		return mtab{}, nil
	case *recipes.Fstab:
		return fstab{cfg: c, img: img}, nil
	case *recipes.RcS:
		return rcs{img: img}, nil
	case *recipes.InitramfsTools:
		return initramfsTools{cfg: c}, nil
	case *recipes.Locale:
		return locale{cfg: c}, nil
	case *recipes.SSH:
		return ssh{cfg: c, img: img}, nil
	case *recipes.Run:
		return runScript{cfg: c, img: img}, nil
	case *recipes.Files:
		return files{cfg: c, img: img}, nil
	case *recipes.Write:
		return write{cfg: c}, nil
	}
	return nil, fmt.Errorf("no provisioning step for %q (%T)", e.Type, e.Config)
}
