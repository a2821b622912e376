package chroot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/krgimage/krgimage/internal/nosync"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/recipes"
)

// Errors callers branch on.
var (
	// ErrUnsafePath: a path would leave the image root (.., an absolute
	// or escaping symlink inside the image).
	ErrUnsafePath = errors.New("path escapes the image root")
	// ErrNotDebian: the directory is not a bootstrapped root.
	ErrNotDebian = errors.New("not a Debian root")
	// ErrNoSuchPackage: apt does not know a package.
	ErrNoSuchPackage = errors.New("no such package")
	// ErrNoSuchGroup: a user names a group the image lacks.
	ErrNoSuchGroup = errors.New("no such group")
	// ErrMissing: something a command or a step needs is not there.
	ErrMissing = errors.New("missing")
)

// DefaultTimeout bounds one command inside the image.
const DefaultTimeout = time.Hour

// Image is what provisioning needs to know about the image and the build.
type Image struct {
	// Root is the image root on the host.
	Root   string
	Recipe *recipes.Recipe
	// Mirror and SecurityMirror are the build's Debian mirrors.
	Mirror         string
	SecurityMirror string
	Log            *slog.Logger
	Runner         *run.Runner
	// LookupEnv reads secrets a recipe names by variable (password hashes).
	LookupEnv func(string) (string, bool)
	// BuildTime is passed to commands as SOURCE_DATE_EPOCH.
	BuildTime time.Time
	// Timeout bounds each command; zero means DefaultTimeout.
	Timeout time.Duration
	// HostResolvConf is the resolver configuration copied in while steps
	// run (/etc/resolv.conf).
	HostResolvConf string
	// SuppressSync turns the commands' fsyncs into no-ops (package
	// nosync): the caller syncs the finished root once instead.
	SuppressSync bool
	// Exec runs commands inside the image; nil means the real chroot in a
	// private mount namespace. Tests substitute a fake.
	Exec Executor
}

// Command is one command to run inside the image.
type Command struct {
	Argv    []string
	Env     []string
	Dir     string
	Stdin   io.Reader
	Stdout  io.Writer
	Timeout time.Duration
	Line    func(string)
}

// Executor runs commands inside an image root.
type Executor interface {
	Exec(ctx context.Context, img *Image, c Command) error
}

// namespaceExec is the real Executor: krgimage re-executed in a private
// mount namespace, chrooted into the image.
type namespaceExec struct{}

func (namespaceExec) Exec(ctx context.Context, img *Image, c Command) error {
	root, err := filepath.EvalSymlinks(img.Root)
	if err != nil {
		return err
	}
	spec, err := json.Marshal(helperSpec{Root: root, Argv: c.Argv, Env: c.Env, Dir: c.Dir})
	if err != nil {
		return err
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = img.Timeout
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	cmd := run.Cmd{
		Path:        "/proc/self/exe",
		Display:     "chroot " + img.Root + " " + run.Quote(c.Argv),
		Env:         []string{helperEnv + "=" + string(spec)},
		Stdin:       c.Stdin,
		Stdout:      c.Stdout,
		Timeout:     timeout,
		Line:        c.Line,
		SysProcAttr: helperAttr(),
	}
	if img.SuppressSync {
		return nosync.Run(func() error { return img.Runner.Run(ctx, cmd) })
	}
	return img.Runner.Run(ctx, cmd)
}

// Session is an image prepared for running package scripts: no service
// may start (policy-rc.d exits 101), and the host's resolver is in place.
// Close puts the image's own files back.
type Session struct {
	*Image
	root     *os.Root
	restores []func() error
	closed   bool
}

const savedSuffix = ".krgimage-saved"

// Open prepares the image. It first recovers from a session a crash left
// open, so the image never keeps krgimage's temporary files.
func Open(ctx context.Context, img *Image) (s *Session, err error) {
	if img.Exec == nil {
		img.Exec = namespaceExec{}
	}
	if img.HostResolvConf == "" {
		img.HostResolvConf = "/etc/resolv.conf"
	}
	fi, err := os.Stat(img.Root)
	if err != nil {
		return nil, fmt.Errorf("image root: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("image root %s: %w", img.Root, ErrNotDebian)
	}
	root, err := os.OpenRoot(img.Root)
	if err != nil {
		return nil, err
	}
	s = &Session{Image: img, root: root}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if _, err := root.Lstat("bin/sh"); err != nil {
		return nil, fmt.Errorf("%s has no /bin/sh: %w", img.Root, ErrNotDebian)
	}
	for _, p := range []string{"usr/sbin/policy-rc.d", "etc/resolv.conf"} {
		if err := s.recover(p); err != nil {
			return nil, err
		}
	}
	if err := s.replace("usr/sbin/policy-rc.d", []byte("#!/bin/sh\n# krgimage: no service starts while the image is built\nexit 101\n"), 0o755); err != nil {
		return nil, fmt.Errorf("installing policy-rc.d: %w", err)
	}
	if resolv, err := os.ReadFile(img.HostResolvConf); err == nil {
		if err := s.replace("etc/resolv.conf", resolv, 0o644); err != nil {
			return nil, fmt.Errorf("copying the host's resolv.conf: %w", err)
		}
	}
	return s, nil
}

// recover puts back a file a crashed session saved.
func (s *Session) recover(name string) error {
	if _, err := s.root.Lstat(name + savedSuffix); err != nil {
		return nil
	}
	s.Log.Warn("restoring a file an interrupted build left aside", "path", "/"+name)
	if err := s.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return s.root.Rename(name+savedSuffix, name)
}

// replace sets aside the image's file (whatever its type) and writes ours;
// Close restores the original.
func (s *Session) replace(name string, data []byte, perm os.FileMode) error {
	if err := s.root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	had := false
	if _, err := s.root.Lstat(name); err == nil {
		if err := s.root.Rename(name, name+savedSuffix); err != nil {
			return err
		}
		had = true
	}
	s.restores = append(s.restores, func() error {
		if err := s.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if had {
			return s.root.Rename(name+savedSuffix, name)
		}
		return nil
	})
	return s.root.WriteFile(name, data, perm)
}

// Close restores what Open replaced. It is safe to call twice.
func (s *Session) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for i := len(s.restores) - 1; i >= 0; i-- {
		errs = append(errs, s.restores[i]())
	}
	errs = append(errs, s.root.Close())
	return errors.Join(errs...)
}

// Env is the environment of every command: nothing of the host's.
func (s *Session) Env(extra ...string) []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LC_ALL=C", "LANG=C", "LANGUAGE=", "HOME=/root", "TERM=dumb", "SHELL=/bin/sh",
		"DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true",
	}
	if !s.BuildTime.IsZero() {
		env = append(env, "SOURCE_DATE_EPOCH="+strconv.FormatInt(s.BuildTime.Unix(), 10))
	}
	return append(env, extra...)
}

// Run runs argv inside the image.
func (s *Session) Run(ctx context.Context, argv ...string) error {
	return s.Exec.Exec(ctx, s.Image, Command{Argv: argv, Env: s.Env()})
}

// RunCommand runs c inside the image, with the session's environment
// added before c.Env.
func (s *Session) RunCommand(ctx context.Context, c Command) error {
	c.Env = s.Env(c.Env...)
	return s.Exec.Exec(ctx, s.Image, c)
}

// Output runs argv inside the image and returns its standard output.
func (s *Session) Output(ctx context.Context, argv ...string) ([]byte, error) {
	var b strings.Builder
	err := s.Exec.Exec(ctx, s.Image, Command{Argv: argv, Env: s.Env(), Stdout: &b})
	return []byte(b.String()), err
}

// FS is the image root, confined: no path may leave it, whatever the
// image's symlinks say.
func (s *Session) FS() *os.Root { return s.root }

// RelPath turns an absolute image path into one relative to the root, and
// refuses .. components. Steps call it to check a destination before
// anything runs.
func RelPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%w: %q is not absolute", ErrUnsafePath, p)
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return "", fmt.Errorf("%w: %q has a .. component", ErrUnsafePath, p)
		}
	}
	r := strings.TrimLeft(filepath.Clean(p), "/")
	if r == "" {
		r = "."
	}
	return r, nil
}

// confine explains os.Root's refusals in the terms of the recipe.
func confine(p string, err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "path escapes from parent") || strings.Contains(err.Error(), "escapes") {
		return fmt.Errorf("%w: %s goes through a symbolic link that leaves the image (absolute or ..); name the real path", ErrUnsafePath, p)
	}
	return err
}

// WriteFile writes an image file through the confined root, with the given
// mode and owner (names resolved in the image's own passwd and group).
func (s *Session) WriteFile(p string, data []byte, mode os.FileMode, owner, group string) error {
	r, err := RelPath(p)
	if err != nil {
		return err
	}
	if err := confine(p, s.root.MkdirAll(filepath.Dir(r), 0o755)); err != nil {
		return err
	}
	// Replace rather than write through: the path may be a symlink.
	if fi, err := s.root.Lstat(r); err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return fmt.Errorf("%s is a directory in the image", p)
		}
		if err := s.root.Remove(r); err != nil {
			return err
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return confine(p, err)
	}
	f, err := s.root.OpenFile(r, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return confine(p, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return s.setOwnerMode(r, mode, owner, group)
}

// MkdirAll creates an image directory and its parents, confined to the
// root.
func (s *Session) MkdirAll(p string, perm os.FileMode) error {
	r, err := RelPath(p)
	if err != nil {
		return err
	}
	return confine(p, s.root.MkdirAll(r, perm))
}

// SetOwnerMode gives an image path an owner and group (names resolved in
// the image) and then a mode, since chown clears setuid bits.
func (s *Session) SetOwnerMode(p string, mode os.FileMode, owner, group string) error {
	r, err := RelPath(p)
	if err != nil {
		return err
	}
	return s.setOwnerMode(r, mode, owner, group)
}

// Stat describes an image path, following a final symlink inside the
// root.
func (s *Session) Stat(p string) (fs.FileInfo, error) {
	r, err := RelPath(p)
	if err != nil {
		return nil, err
	}
	return s.root.Stat(r)
}

// Lstat describes an image path without following a final symlink.
func (s *Session) Lstat(p string) (fs.FileInfo, error) {
	r, err := RelPath(p)
	if err != nil {
		return nil, err
	}
	return s.root.Lstat(r)
}

func (s *Session) setOwnerMode(r string, mode os.FileMode, owner, group string) error {
	uid, gid, err := s.IDs(owner, group)
	if err != nil {
		return err
	}
	if err := s.root.Lchown(r, uid, gid); err != nil {
		return err
	}
	// After chown, which clears setuid bits.
	return s.root.Chmod(r, mode)
}

// ReadFile reads an image file; a missing file reads as empty.
func (s *Session) ReadFile(p string) ([]byte, error) {
	r, err := RelPath(p)
	if err != nil {
		return nil, err
	}
	b, err := s.root.ReadFile(r)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, confine(p, err)
}

// Exists reports whether an image path exists (without following a final
// symlink).
func (s *Session) Exists(p string) bool {
	r, err := RelPath(p)
	if err != nil {
		return false
	}
	_, err = s.root.Lstat(r)
	return err == nil
}

// Symlink makes p a symbolic link to target, replacing a file there.
func (s *Session) Symlink(target, p string) error {
	r, err := RelPath(p)
	if err != nil {
		return err
	}
	if err := confine(p, s.root.MkdirAll(filepath.Dir(r), 0o755)); err != nil {
		return err
	}
	if fi, err := s.root.Lstat(r); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%s is a directory in the image", p)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if cur, _ := s.root.Readlink(r); cur == target {
				return nil
			}
		}
		if err := s.root.Remove(r); err != nil {
			return err
		}
	}
	return confine(p, s.root.Symlink(target, r))
}

// Remove deletes image paths that exist; missing ones are fine.
func (s *Session) Remove(paths ...string) error {
	for _, p := range paths {
		r, err := RelPath(p)
		if err != nil {
			return err
		}
		if err := s.root.Remove(r); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return confine(p, err)
		}
	}
	return nil
}

// Glob returns the image paths matching an absolute pattern in one
// directory, sorted.
func (s *Session) Glob(dir, pattern string) ([]string, error) {
	r, err := RelPath(dir)
	if err != nil {
		return nil, err
	}
	f, err := s.root.Open(r)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, confine(dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if ok, _ := filepath.Match(pattern, n); ok {
			out = append(out, filepath.Join(dir, n))
		}
	}
	sort.Strings(out)
	return out, nil
}
