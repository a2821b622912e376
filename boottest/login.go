package boottest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/krgimage/krgimage/internal/fsutil"
	"github.com/krgimage/krgimage/internal/nfsserver"
	"github.com/krgimage/krgimage/internal/sha512crypt"
	"github.com/krgimage/krgimage/recipes"
)

// consoleLogin is who the boot test logs in as on a node's console.
type consoleLogin struct {
	User, Password string
	// OneTime says the password is the boot test's own (see oneTimeLogin).
	OneTime bool
}

// loginFor is the recipe's login when it gives a password, else a
// one-time one for its user (root by default), or none when there is
// nothing to run on the node.
func loginFor(bt *recipes.BootTest) (consoleLogin, bool) {
	if bt.Login != nil && bt.Login.Password.Reveal() != "" {
		return consoleLogin{User: bt.Login.User, Password: bt.Login.Password.Reveal()}, true
	}
	if bt.Login == nil && len(bt.Checks) == 0 {
		return consoleLogin{}, false
	}
	user := "root"
	if bt.Login != nil {
		user = bt.Login.User
	}
	return consoleLogin{User: user, Password: sha512crypt.Random(32), OneTime: true}, true
}

// oneTimeLogin lets the boot test, and nothing else, log in as l.User:
// the image's /etc/shadow with that user's hash replaced by one of
// l.Password is written to a scratch file, which the NFS server alone
// shows in place of the original (a bind mount in its private mount
// namespace). The image, its snapshot and netboot/ never hold it, the
// password lives only in this process, and a node booted from the same
// files by the real server gets the image's own /etc/shadow. The scratch
// file goes with the returned cleanup.
func oneTimeLogin(root, work string, l consoleLogin) (nfsserver.Bind, func(), error) {
	target := filepath.Join(root, "etc", "shadow")
	shadow, st, err := readShadow(root, l.User)
	if err != nil {
		return nfsserver.Bind{}, nil, err
	}
	changed, err := withPassword(shadow, l.User, sha512crypt.Hash(l.Password, sha512crypt.Salt()))
	if err != nil {
		return nfsserver.Bind{}, nil, err
	}
	dir, err := scratchDir(root, work)
	if err != nil {
		return nfsserver.Bind{}, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	src := filepath.Join(dir, "shadow")
	// The nodes see the scratch file's owner and mode: the original's.
	if err := writeLike(src, changed, st); err != nil {
		cleanup()
		return nfsserver.Bind{}, nil, err
	}
	return nfsserver.Bind{Source: src, Target: target}, cleanup, nil
}

// readShadow reads the image's /etc/shadow after checking that user's
// password is there: a passwd entry with an x. etc and shadow must be
// what they say, not links: the bind mount follows a link on the host.
func readShadow(root, user string) ([]byte, *syscall.Stat_t, error) {
	for _, p := range []struct {
		rel  string
		mode fs.FileMode
	}{{"etc", fs.ModeDir}, {"etc/shadow", 0}, {"etc/passwd", 0}} {
		fi, err := os.Lstat(filepath.Join(root, p.rel))
		if err != nil {
			return nil, nil, fmt.Errorf("one-time login: %w", err)
		}
		if fi.Mode().Type() != p.mode {
			return nil, nil, fmt.Errorf("one-time login: /%s in the image is not a plain %s", p.rel, map[bool]string{true: "directory", false: "file"}[p.mode == fs.ModeDir])
		}
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if err != nil {
		return nil, nil, err
	}
	fields, ok := entry(passwd, user)
	if !ok {
		return nil, nil, fmt.Errorf("one-time login: the image has no user %q (boot_test.login.user)", user)
	}
	if len(fields) < 2 || fields[1] != "x" {
		return nil, nil, fmt.Errorf("one-time login: %q's password is not in /etc/shadow; give boot_test.login.password", user)
	}
	p := filepath.Join(root, "etc", "shadow")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, nil, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	return b, fi.Sys().(*syscall.Stat_t), nil
}

// entry returns the fields of name's line in a passwd-like file.
func entry(file []byte, name string) ([]string, bool) {
	for _, l := range strings.Split(string(file), "\n") {
		if f := strings.Split(l, ":"); f[0] == name {
			return f, true
		}
	}
	return nil, false
}

// withPassword returns shadow with user's hash replaced. A last change of
// 0, which would have login demand a new password first, is cleared;
// every other field and line stays as it is.
func withPassword(shadow []byte, user, hash string) ([]byte, error) {
	lines := bytes.Split(shadow, []byte("\n"))
	for i, l := range lines {
		f := bytes.Split(l, []byte(":"))
		if string(f[0]) != user {
			continue
		}
		if len(f) < 3 {
			return nil, fmt.Errorf("one-time login: /etc/shadow's entry for %q has %d fields", user, len(f))
		}
		f[1] = []byte(hash)
		if string(f[2]) == "0" {
			f[2] = nil
		}
		lines[i] = bytes.Join(f, []byte(":"))
		return bytes.Join(lines, []byte("\n")), nil
	}
	return nil, fmt.Errorf("one-time login: /etc/shadow has no entry for %q", user)
}

// scratchDir is a new directory on root's filesystem, outside root: the
// NFS server serves a bind-mounted file by its handle on the export's
// filesystem. The boot test's directory when it is there, else beside
// root.
func scratchDir(root, work string) (string, error) {
	dev := func(p string) (uint64, error) {
		fi, err := os.Stat(p)
		if err != nil {
			return 0, err
		}
		return uint64(fi.Sys().(*syscall.Stat_t).Dev), nil
	}
	want, err := dev(root)
	if err != nil {
		return "", err
	}
	for _, parent := range []string{work, filepath.Dir(root)} {
		if d, err := dev(parent); err != nil || d != want {
			continue
		}
		sweepScratch(parent)
		return os.MkdirTemp(parent, fmt.Sprintf(".login-%d-", os.Getpid()))
	}
	return "", errors.New("one-time login: no directory outside the image root on its filesystem (is it a mount point?); give boot_test.login.password")
}

// sweepScratch removes the scratch directories of boot tests that were
// killed before their cleanup: their process is gone.
func sweepScratch(parent string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, ".login-*-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.Split(filepath.Base(d), "-")[1])
		if err == nil && pid > 0 && syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(d)
		}
	}
}

// writeLike writes b to a new file p with the owner and mode of st.
func writeLike(p string, b []byte, st *syscall.Stat_t) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chown(int(st.Uid), int(st.Gid))
	}
	if err == nil {
		err = f.Chmod(fs.FileMode(st.Mode & 0o777))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// redact removes secret from every file the boot test leaves in work:
// login turns the echo off, but a console that echoed the password
// anyway must not keep it. Secrets shorter than 8 bytes would match too
// much of a log to be told apart, and are left.
func redact(work, secret string, log *slog.Logger) {
	if len(secret) < 8 {
		return
	}
	err := filepath.WalkDir(work, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != work && (d.Name() == "root" || d.Name() == "writable" || strings.HasPrefix(d.Name(), ".login-")) {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(secret)) {
			return err
		}
		log.Warn("a log held the login password: redacted", "path", p)
		return fsutil.WriteFileAtomic(p, bytes.ReplaceAll(b, []byte(secret), []byte("[redacted]")), 0o644)
	})
	if err != nil {
		log.Warn("redacting the login password from the boot test's logs", "err", err)
	}
}
