package chroot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/krgimage/krgimage/recipes"
)

// account is one line of the image's /etc/passwd or /etc/group.
type account struct {
	name    string
	id      int
	gid     int // passwd only
	home    string
	shell   string
	members []string // group only
}

// parseDB reads passwd (7 fields) or group (4 fields) content.
func parseDB(data []byte, group bool) []account {
	var out []account
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if (group && len(f) < 4) || (!group && len(f) < 7) || strings.HasPrefix(line, "#") {
			continue
		}
		id, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		a := account{name: f[0], id: id}
		if group {
			if f[3] != "" {
				a.members = strings.Split(f[3], ",")
			}
		} else {
			a.gid, _ = strconv.Atoi(f[3])
			a.home, a.shell = f[5], f[6]
		}
		out = append(out, a)
	}
	return out
}

func (s *Session) accounts() (users, groups []account, err error) {
	p, err := s.ReadFile("/etc/passwd")
	if err != nil {
		return nil, nil, err
	}
	g, err := s.ReadFile("/etc/group")
	if err != nil {
		return nil, nil, err
	}
	return parseDB(p, false), parseDB(g, true), nil
}

func find(db []account, name string) (account, bool) {
	for _, a := range db {
		if a.name == name {
			return a, true
		}
	}
	return account{}, false
}

func findID(db []account, id int) (account, bool) {
	for _, a := range db {
		if a.id == id {
			return a, true
		}
	}
	return account{}, false
}

// IDs resolves an owner and group, names or numbers, in the image's own
// account database: the host's users mean nothing inside the image.
func (s *Session) IDs(owner, group string) (uid, gid int, err error) {
	users, groups, err := s.accounts()
	if err != nil {
		return 0, 0, err
	}
	resolve := func(v string, db []account, what string, kind error) (int, error) {
		if v == "" {
			return 0, nil
		}
		if n, err := strconv.Atoi(v); err == nil {
			return n, nil
		}
		if a, ok := find(db, v); ok {
			return a.id, nil
		}
		return 0, fmt.Errorf("%w: the image has no %s %q", kind, what, v)
	}
	if uid, err = resolve(owner, users, "user", ErrMissing); err != nil {
		return 0, 0, err
	}
	gid, err = resolve(group, groups, "group", ErrNoSuchGroup)
	return uid, gid, err
}

// rootPassword sets or locks root's password.
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
			return fmt.Errorf("%w: password file: %v", ErrMissing, err)
		}
	}
	return nil
}

func (p rootPassword) Apply(ctx context.Context, s *Session) error {
	if p.cfg.Lock {
		return s.Run(ctx, "passwd", "-l", "root")
	}
	hash, err := secret(s.Image, string(p.cfg.Hash), p.cfg.File, p.cfg.Env)
	if err != nil {
		return fmt.Errorf("root password: %w", err)
	}
	return setHash(ctx, s, "root", hash)
}

// secret reads a password hash from the recipe, a file or a variable.
func secret(img *Image, inline, file, env string) (string, error) {
	var v string
	switch {
	case inline != "":
		v = inline
	case file != "":
		b, err := os.ReadFile(img.Recipe.Path(file))
		if err != nil {
			return "", err
		}
		v = strings.TrimSpace(string(b))
	case env != "":
		val, ok := img.LookupEnv(env)
		if !ok || val == "" {
			return "", fmt.Errorf("%w: $%s is not set", ErrMissing, env)
		}
		v = strings.TrimSpace(val)
	default:
		return "", nil
	}
	if !recipes.ValidHash(v) {
		// Never echo it: it may be a password typed in the wrong place.
		return "", fmt.Errorf("the value is not a crypt(3) hash (make one with mkpasswd); plain-text passwords are refused")
	}
	return v, nil
}

// setHash gives chpasswd the hash on stdin, so it never appears in a
// command line or a log.
func setHash(ctx context.Context, s *Session, user, hash string) error {
	return s.RunCommand(ctx, Command{Argv: []string{"chpasswd", "-e"}, Stdin: strings.NewReader(user + ":" + hash + "\n")})
}

// users creates or updates accounts.
type users struct {
	cfg *recipes.Users
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
				errs = append(errs, fmt.Errorf("%w: user %s: %v", ErrMissing, user.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (u users) Apply(ctx context.Context, s *Session) error {
	for _, user := range u.cfg.Users {
		if err := applyUser(ctx, s, user); err != nil {
			return fmt.Errorf("user %s: %w", user.Name, err)
		}
	}
	return nil
}

func applyUser(ctx context.Context, s *Session, u recipes.User) error {
	users, groups, err := s.accounts()
	if err != nil {
		return err
	}
	existing, exists := find(users, u.Name)
	if u.UID != 0 {
		if other, ok := findID(users, u.UID); ok && other.name != u.Name {
			return fmt.Errorf("%w: uid %d already belongs to %s", ErrClash, u.UID, other.name)
		}
		if exists && existing.id != u.UID {
			return fmt.Errorf("%w: %s already exists with uid %d, not %d", ErrClash, u.Name, existing.id, u.UID)
		}
	}
	var missing []string
	for _, g := range u.Groups {
		if _, ok := find(groups, g); !ok {
			missing = append(missing, g)
		}
	}
	if len(missing) > 0 {
		var have []string
		for _, g := range groups {
			have = append(have, g.name)
		}
		return fmt.Errorf("%w: %s (the image has: %s)", ErrNoSuchGroup, strings.Join(missing, ", "), strings.Join(have, " "))
	}
	primary := u.Group
	if primary == "" {
		primary = u.Name
	}
	pg, ok := find(groups, primary)
	switch {
	case ok && u.GID != 0 && pg.id != u.GID:
		return fmt.Errorf("%w: group %s already exists with gid %d, not %d", ErrClash, primary, pg.id, u.GID)
	case !ok:
		if u.GID != 0 {
			if other, taken := findID(groups, u.GID); taken {
				return fmt.Errorf("%w: gid %d already belongs to group %s", ErrClash, u.GID, other.name)
			}
		}
		args := []string{"groupadd"}
		if u.GID != 0 {
			args = append(args, "-g", strconv.Itoa(u.GID))
		} else if u.UID != 0 {
			if _, taken := findID(groups, u.UID); !taken {
				args = append(args, "-g", strconv.Itoa(u.UID))
			}
		}
		if u.System {
			args = append(args, "-r")
		}
		if err := s.Run(ctx, append(args, primary)...); err != nil {
			return err
		}
	}
	home := u.Home
	if home == "" {
		home = "/home/" + u.Name
	}
	args := []string{"-g", primary, "-s", u.Shell, "-d", home, "-c", u.Comment}
	if len(u.Groups) > 0 {
		args = append(args, "-G", strings.Join(u.Groups, ","))
	}
	if exists {
		// Running provisioning twice gives the same account.
		if err := s.Run(ctx, append([]string{"usermod"}, append(args, u.Name)...)...); err != nil {
			return err
		}
	} else {
		args = append(args, "-m")
		if u.UID != 0 {
			args = append(args, "-u", strconv.Itoa(u.UID))
		}
		if u.System {
			args = append(args, "-r")
		}
		if err := s.Run(ctx, append([]string{"useradd"}, append(args, u.Name)...)...); err != nil {
			return err
		}
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

func authorizedKeys(s *Session, u recipes.User, home, group string) error {
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
	r, err := rel(dir)
	if err != nil {
		return err
	}
	if err := confine(dir, s.FS().MkdirAll(r, 0o700)); err != nil {
		return err
	}
	if err := s.setOwnerMode(r, 0o700, u.Name, group); err != nil {
		return err
	}
	return s.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(strings.Join(keys, "\n")+"\n"), 0o600, u.Name, group)
}
