package provision

import (
	"context"
	"fmt"
	"os"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// rootPassword sets or locks root's password (recipes.RootPassword). The
// hash goes to chpasswd on stdin and is never logged.
type rootPassword struct {
	cfg *recipes.RootPassword
	img *Image
}

func (p rootPassword) Describe() []string {
	switch {
	case p.cfg.Lock:
		return []string{"lock root's password (passwd -l root)"}
	case p.cfg.File != "":
		return []string{"set root's password from the hash in " + p.cfg.File + " (chpasswd -e; never logged)"}
	case p.cfg.Env != "":
		return []string{"set root's password from the hash in $" + p.cfg.Env + " (chpasswd -e; never logged)"}
	}
	return []string{"set root's password from the recipe's hash (chpasswd -e; never logged)"}
}

func (p rootPassword) Check() error {
	if p.cfg.File != "" {
		if _, err := os.Stat(p.img.Recipe.Path(p.cfg.File)); err != nil {
			return fmt.Errorf("%w: password file: %v", chroot.ErrMissing, err)
		}
	}
	return nil
}

// Reads: the hash's variable or file.
func (p rootPassword) Reads() ([]Input, error) {
	var in inputs
	in.env(p.cfg.Env)
	in.file("file", p.cfg.File)
	return in, nil
}

// ChangesKernel: a password is nothing a kernel package reads.
func (rootPassword) ChangesKernel() bool { return false }

func (p rootPassword) Apply(ctx context.Context, s *chroot.Session) error {
	if p.cfg.Lock {
		return s.Run(ctx, "passwd", "-l", "root")
	}
	hash, err := secret(s.Image, string(p.cfg.Hash), p.cfg.File, p.cfg.Env)
	if err != nil {
		return fmt.Errorf("root password: %w", err)
	}
	return setHash(ctx, s, "root", hash)
}
