package provision

import (
	"context"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// RcS makes lenny's boot scripts really mount the NFS filesystems
// (ASYNCMOUNTNFS=no in /etc/default/rcS). On systemd suites it does
// nothing, and the plan says so.
type RcS struct{}

var rcsType = typeOf(func() *RcS { return &RcS{} }, func(_ *RcS, img *Image) Step { return rcs{img} })

func (*RcS) Validate(*recipes.Validator, string) {}

// rcs sets ASYNCMOUNTNFS=no in lenny's /etc/default/rcS (RcS);
// systemd suites need nothing.
type rcs struct{ img *Image }

func (r rcs) Describe() []string {
	if recipes.Systemd(r.img.Recipe.Suite) {
		return []string{"nothing to do: " + r.img.Recipe.Suite + " boots with systemd, which mounts fstab's NFS filesystems itself (no /etc/default/rcS)"}
	}
	return []string{"set ASYNCMOUNTNFS=no in /etc/default/rcS so NFS mounts really happen at boot"}
}

func (rcs) Check() error { return nil }

// Reads nothing beyond the recipe context, which holds the suite.
func (rcs) Reads() ([]Input, error) { return nil, nil }

// ChangesKernel: rcS is read at boot, not by a kernel package.
func (rcs) ChangesKernel() bool { return false }

func (r rcs) Apply(_ context.Context, s *chroot.Session) error {
	if recipes.Systemd(r.img.Recipe.Suite) {
		return nil
	}
	return s.SetShellVars("/etc/default/rcS", map[string]string{"ASYNCMOUNTNFS": "no"})
}
