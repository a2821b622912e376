package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// Users creates the seed's "default user to be used during program
// executions on the nodes", and any others:
//
//   - users:
//   - name: krg
//     uid: 1000
//     groups: [sudo]
//     password_hash: '$6$...'
//     ssh_keys: ["ssh-ed25519 AAAA... admin@server"]
//
// Defaults: shell /bin/bash, home /home/NAME, a primary group named like
// the user, uid and gid chosen by the image when 0.
type Users struct {
	Users []User `yaml:"users"`
}

var usersType = typeOf(func() *Users { return &Users{} }, func(c *Users, img *Image) Step { return users{c, img} })

func (*Users) ShorthandField() string { return "users" }

// Accounts lets validate refuse a name or uid another users entry gives.
func (u *Users) Accounts() []recipes.Account {
	out := make([]recipes.Account, len(u.Users))
	for i, user := range u.Users {
		out[i] = recipes.Account{Name: user.Name, UID: user.UID}
	}
	return out
}

func (u *Users) Validate(v *recipes.Validator, keyPath string) {
	if len(u.Users) == 0 {
		v.Errorf(keyPath, recipes.ErrMissing, "list at least one user")
	}
	for i, user := range u.Users {
		p := fmt.Sprintf("%s[%d]", keyPath, i)
		if user.Name == "" {
			v.Errorf(p, recipes.ErrMissing, "a user needs a name")
		}
		n := 0
		for _, set := range []bool{user.PasswordHash != "", user.PasswordFile != "", user.PasswordEnv != ""} {
			if set {
				n++
			}
		}
		if n > 1 {
			v.Errorf(p, recipes.ErrConflict, "give at most one of password_hash, password_file and password_env")
		}
		if user.PasswordHash != "" && !recipes.ValidHash(user.PasswordHash.Reveal()) {
			v.Errorf(p+".password_hash", recipes.ErrInvalid, "not a crypt(3) hash (such as $6$... or $y$..., made with mkpasswd); plain-text passwords are refused")
		}
		if user.PasswordEnv != "" && !recipes.ValidVarName(user.PasswordEnv) {
			v.Errorf(p+".password_env", recipes.ErrInvalid, "invalid variable name %q", user.PasswordEnv)
		}
		for j, k := range user.SSHKeys {
			if f := strings.Fields(k); len(f) < 2 {
				v.Errorf(fmt.Sprintf("%s.ssh_keys[%d]", p, j), recipes.ErrInvalid, "not an authorized_keys line (TYPE KEY [COMMENT])")
			}
		}
	}
}

// User is one account.
type User struct {
	Name         string         `yaml:"name" check:"username"`
	UID          int            `yaml:"uid,omitempty" check:"nonnegative"`
	GID          int            `yaml:"gid,omitempty" check:"nonnegative"`
	Group        string         `yaml:"group,omitempty" check:"username"`
	Groups       []string       `yaml:"groups,omitempty" check:"username"`
	Shell        string         `yaml:"shell" check:"confpath"`
	Home         string         `yaml:"home,omitempty" check:"confpath"`
	Comment      string         `yaml:"comment,omitempty" check:"gecos"`
	System       bool           `yaml:"system,omitempty"`
	PasswordHash recipes.Secret `yaml:"password_hash,omitempty"`
	PasswordFile string         `yaml:"password_file,omitempty"`
	PasswordEnv  string         `yaml:"password_env,omitempty"`
	SSHKeys      []string       `yaml:"ssh_keys,omitempty"`
	SSHKeysFile  string         `yaml:"ssh_keys_file,omitempty"`
}

func (u *User) SetDefaults() { u.Shell = "/bin/bash" }

// users creates or updates accounts (Users), in the image's own
// account database.
type users struct {
	cfg *Users
	img *Image
}

func (u users) Describe() []string {
	var out []string
	for _, user := range u.cfg.Users {
		line := "user " + user.Name
		if user.UID != 0 {
			line += fmt.Sprintf(" (uid %d)", user.UID)
		}
		if len(user.Groups) > 0 {
			line += ", groups " + strings.Join(user.Groups, ",")
		}
		if len(user.SSHKeys) > 0 || user.SSHKeysFile != "" {
			line += ", authorized SSH keys"
		}
		out = append(out, line)
	}
	return out
}

func (u users) Check() error {
	var errs []error
	for _, user := range u.cfg.Users {
		for _, f := range []string{user.PasswordFile, user.SSHKeysFile} {
			if f == "" {
				continue
			}
			if _, err := os.Stat(u.img.Recipe.Path(f)); err != nil {
				errs = append(errs, fmt.Errorf("%w: user %s: %v", chroot.ErrMissing, user.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Reads: each user's password variable or file and authorized keys file.
func (u users) Reads() ([]Input, error) {
	var in inputs
	for _, user := range u.cfg.Users {
		in.env(user.PasswordEnv)
		in.file("password_file", user.PasswordFile)
		in.file("ssh_keys_file", user.SSHKeysFile)
	}
	return in, nil
}

// ChangesKernel: accounts are nothing a kernel package reads.
func (users) ChangesKernel() bool { return false }

func (u users) Apply(ctx context.Context, s *chroot.Session) error {
	for _, user := range u.cfg.Users {
		if err := applyUser(ctx, s, user); err != nil {
			return fmt.Errorf("user %s: %w", user.Name, err)
		}
	}
	return nil
}

func applyUser(ctx context.Context, s *chroot.Session, u User) error {
	users, groups, err := s.Accounts()
	if err != nil {
		return err
	}
	existing, exists := users.Find(u.Name)
	if u.UID != 0 {
		if other, ok := users.FindID(u.UID); ok && other.Name != u.Name {
			return fmt.Errorf("%w: uid %d already belongs to %s", ErrClash, u.UID, other.Name)
		}
		if exists && existing.ID != u.UID {
			return fmt.Errorf("%w: %s already exists with uid %d, not %d", ErrClash, u.Name, existing.ID, u.UID)
		}
	}
	if err := requireGroups(groups, u.Groups); err != nil {
		return err
	}
	primary := u.Group
	if primary == "" {
		primary = u.Name
	}
	if err := primaryGroup(ctx, s, groups, u, primary); err != nil {
		return err
	}
	home := u.Home
	if home == "" {
		home = "/home/" + u.Name
	}
	if err := account(ctx, s, u, exists, primary, home); err != nil {
		return err
	}
	hash, err := secret(s.Image, string(u.PasswordHash), u.PasswordFile, u.PasswordEnv)
	if err != nil {
		return fmt.Errorf("password: %w", err)
	}
	if hash != "" {
		if err := setHash(ctx, s, u.Name, hash); err != nil {
			return err
		}
	}
	return authorizedKeys(s, u, home, primary)
}

// requireGroups refuses supplementary groups the image lacks, naming
// those it has.
func requireGroups(groups chroot.Accounts, want []string) error {
	var missing []string
	for _, g := range want {
		if _, ok := groups.Find(g); !ok {
			missing = append(missing, g)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var have []string
	for _, g := range groups {
		have = append(have, g.Name)
	}
	return fmt.Errorf("%w: %s (the image has: %s)", chroot.ErrNoSuchGroup, strings.Join(missing, ", "), strings.Join(have, " "))
}

// primaryGroup creates the user's primary group unless it exists with
// the asked gid; it takes the uid as its gid when that is free.
func primaryGroup(ctx context.Context, s *chroot.Session, groups chroot.Accounts, u User, primary string) error {
	pg, ok := groups.Find(primary)
	switch {
	case ok && u.GID != 0 && pg.ID != u.GID:
		return fmt.Errorf("%w: group %s already exists with gid %d, not %d", ErrClash, primary, pg.ID, u.GID)
	case ok:
		return nil
	}
	if u.GID != 0 {
		if other, taken := groups.FindID(u.GID); taken {
			return fmt.Errorf("%w: gid %d already belongs to group %s", ErrClash, u.GID, other.Name)
		}
	}
	args := []string{"groupadd"}
	if u.GID != 0 {
		args = append(args, "-g", strconv.Itoa(u.GID))
	} else if u.UID != 0 {
		if _, taken := groups.FindID(u.UID); !taken {
			args = append(args, "-g", strconv.Itoa(u.UID))
		}
	}
	if u.System {
		args = append(args, "-r")
	}
	return s.Run(ctx, append(args, primary)...)
}

// account runs useradd, or usermod for a user the image has: running
// provisioning twice gives the same account.
func account(ctx context.Context, s *chroot.Session, u User, exists bool, primary, home string) error {
	args := []string{"-g", primary, "-s", u.Shell, "-d", home, "-c", u.Comment}
	if len(u.Groups) > 0 {
		args = append(args, "-G", strings.Join(u.Groups, ","))
	}
	if exists {
		return s.Run(ctx, append([]string{"usermod"}, append(args, u.Name)...)...)
	}
	args = append(args, "-m")
	if u.UID != 0 {
		args = append(args, "-u", strconv.Itoa(u.UID))
	}
	if u.System {
		args = append(args, "-r")
	}
	return s.Run(ctx, append([]string{"useradd"}, append(args, u.Name)...)...)
}

func authorizedKeys(s *chroot.Session, u User, home, group string) error {
	keys := slices.Clone(u.SSHKeys)
	if u.SSHKeysFile != "" {
		b, err := os.ReadFile(s.Recipe.Path(u.SSHKeysFile))
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				keys = append(keys, l)
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	dir := filepath.Join(home, ".ssh")
	if err := s.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := s.SetOwnerMode(dir, 0o700, u.Name, group); err != nil {
		return err
	}
	return s.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(strings.Join(keys, "\n")+"\n"), 0o600, u.Name, group)
}
