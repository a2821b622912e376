package chroot

import (
	"fmt"
	"strconv"
	"strings"
)

// Account is one line of the image's /etc/passwd or /etc/group.
type Account struct {
	Name    string
	ID      int
	GID     int // passwd only
	Home    string
	Shell   string
	Members []string // group only
}

// Accounts is an account database, in file order.
type Accounts []Account

// parseDB reads passwd (7 fields) or group (4 fields) content.
func parseDB(data []byte, group bool) Accounts {
	var out Accounts
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if (group && len(f) < 4) || (!group && len(f) < 7) || strings.HasPrefix(line, "#") {
			continue
		}
		id, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		a := Account{Name: f[0], ID: id}
		if group {
			if f[3] != "" {
				a.Members = strings.Split(f[3], ",")
			}
		} else {
			a.GID, _ = strconv.Atoi(f[3])
			a.Home, a.Shell = f[5], f[6]
		}
		out = append(out, a)
	}
	return out
}

// Accounts reads the image's own users and groups: the host's mean
// nothing inside the image.
func (s *Session) Accounts() (users, groups Accounts, err error) {
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

// Find returns the account with a name.
func (db Accounts) Find(name string) (Account, bool) {
	for _, a := range db {
		if a.Name == name {
			return a, true
		}
	}
	return Account{}, false
}

// FindID returns the account with a numeric id.
func (db Accounts) FindID(id int) (Account, bool) {
	for _, a := range db {
		if a.ID == id {
			return a, true
		}
	}
	return Account{}, false
}

// IDs resolves an owner and group, names or numbers, in the image's own
// account database.
func (s *Session) IDs(owner, group string) (uid, gid int, err error) {
	users, groups, err := s.Accounts()
	if err != nil {
		return 0, 0, err
	}
	resolve := func(v string, db Accounts, what string, kind error) (int, error) {
		if v == "" {
			return 0, nil
		}
		if n, err := strconv.Atoi(v); err == nil {
			return n, nil
		}
		if a, ok := db.Find(v); ok {
			return a.ID, nil
		}
		return 0, fmt.Errorf("%w: the image has no %s %q", kind, what, v)
	}
	if uid, err = resolve(owner, users, "user", ErrMissing); err != nil {
		return 0, 0, err
	}
	gid, err = resolve(group, groups, "group", ErrNoSuchGroup)
	return uid, gid, err
}
