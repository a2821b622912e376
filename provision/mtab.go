package provision

import (
	"context"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// Mtab makes /etc/mtab a symbolic link to /proc/mounts. It has no keys.
type Mtab struct{}

var mtabType = typeOf(func() *Mtab { return &Mtab{} }, func(*Mtab, *Image) Step { return mtab{} })

func (*Mtab) Validate(*recipes.Validator, string) {}

// mtab links /etc/mtab to /proc/mounts (Mtab).
type mtab struct{}

func (mtab) Describe() []string { return []string{"ln -sf /proc/mounts /etc/mtab"} }

func (mtab) Check() error { return nil }

// Reads nothing: the link is always the same.
func (mtab) Reads() ([]Input, error) { return nil, nil }

// ChangesKernel: /etc/mtab is nothing a kernel package reads.
func (mtab) ChangesKernel() bool { return false }

func (mtab) Apply(_ context.Context, s *chroot.Session) error {
	return s.Symlink("/proc/mounts", "/etc/mtab")
}
