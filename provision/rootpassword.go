package provision

import (
	"context"
	"fmt"
	"os"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// RootPassword sets root's password in the image. Give exactly one of:
//
//   - root-password: {hash: '$6$...'}       # a crypt(3) hash
//   - root-password: {file: root.hash}      # a file holding the hash
//   - root-password: {env: ROOT_HASH}       # an environment variable
//   - root-password: {lock: true}           # no password login for root
//
// A plain-text password is refused, and the hash is never logged.
type RootPassword struct {
	Hash recipes.Secret `yaml:"hash,omitempty"`
	File string         `yaml:"file,omitempty"`
	Env  string         `yaml:"env,omitempty"`
	Lock bool           `yaml:"lock,omitempty"`
}

var rootPasswordType = typeOf(func() *RootPassword { return &RootPassword{} }, func(c *RootPassword, img *Image) Step { return rootPassword{c, img} })

func (p *RootPassword) Validate(v *recipes.Validator, keyPath string) {
	n := 0
	for _, set := range []bool{p.Hash != "", p.File != "", p.Env != "", p.Lock} {
		if set {
			n++
		}
	}
	if n != 1 {
		v.Errorf(keyPath, recipes.ErrConflict, "give exactly one of hash, file, env or lock: true")
	}
	if p.Hash != "" && !recipes.ValidHash(p.Hash.Reveal()) {
		v.Errorf(keyPath+".hash", recipes.ErrInvalid, "not a crypt(3) hash (such as $6$... or $y$..., made with mkpasswd); plain-text passwords are refused")
	}
	if p.Env != "" && !recipes.ValidVarName(p.Env) {
		v.Errorf(keyPath+".env", recipes.ErrInvalid, "invalid variable name %q", p.Env)
	}
}

// rootPassword sets or locks root's password (RootPassword). The
// hash goes to chpasswd on stdin and is never logged.
type rootPassword struct {
	cfg *RootPassword
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
