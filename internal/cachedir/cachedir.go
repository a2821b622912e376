package cachedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Errors callers branch on.
var (
	// ErrUntrusted: someone other than the user (and root) could have
	// written the directory or put another in its place. The error is an
	// *UntrustedError that says who and how to fix it.
	ErrUntrusted = errors.New("untrusted cache directory")
	// ErrNoDefault: there is no cache directory to default to.
	ErrNoDefault = errors.New("no cache directory")
)

// SystemDir is root's cache directory when it has no home.
const SystemDir = "/var/cache/krgimage"

// UntrustedError says why a cache directory was refused.
type UntrustedError struct {
	// Dir is the cache directory; Path the directory or link at fault,
	// Dir itself or one above it.
	Dir, Path string
	// Reason completes "PATH ...": "is writable by others (mode 0777)".
	Reason string
	// Fix is a command that makes Path safe.
	Fix string
}

func (e *UntrustedError) Error() string {
	what := "cache directory " + e.Dir
	if e.Path != e.Dir {
		what += ": " + e.Path
	}
	return fmt.Sprintf("%s %s: refusing it; fix with %s or use --cache-dir", what, e.Reason, e.Fix)
}

// Is makes errors.Is(err, ErrUntrusted) hold.
func (e *UntrustedError) Is(target error) bool { return target == ErrUntrusted }

// Default is the cache directory when none is given: the XDG base
// directory convention's, else root's system one. Without a home, a user
// other than root has nowhere safe to default to: a shared one such as
// /tmp's would let anyone prepare it for them.
func Default(getenv func(string) string, euid int) (string, error) {
	if d := getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "krgimage"), nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "krgimage"), nil
	}
	if euid == 0 {
		return SystemDir, nil
	}
	return "", fmt.Errorf("%w: HOME and XDG_CACHE_HOME are unset, and only root defaults to %s: give one with --cache-dir or set XDG_CACHE_HOME", ErrNoDefault, SystemDir)
}

// Open makes sure dir exists, creating it and the directories above it
// private to the user (0700), and that it can be trusted (see the package
// documentation). It returns dir as an absolute path.
func Open(dir string) (string, error) {
	abs, err := absDir(dir)
	if err != nil {
		return "", err
	}
	// Before creating anything: a refused place is left as it was.
	if err := check(abs, true); err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", fmt.Errorf("creating the cache directory: %w", err)
	}
	// Again now that it exists: in a shared directory someone else may
	// have made it first.
	if err := check(abs, false); err != nil {
		return "", err
	}
	return abs, nil
}

// Check is Open without creating anything: the part of dir that exists
// must be trustworthy.
func Check(dir string) error {
	abs, err := absDir(dir)
	if err != nil {
		return err
	}
	return check(abs, true)
}

func absDir(dir string) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("%w given", ErrNoDefault)
	}
	return filepath.Abs(dir)
}

func check(abs string, allowMissing bool) error {
	w := &walker{dir: abs, euid: os.Geteuid()}
	return w.walk(allowMissing)
}

// maxLinks bounds the symbolic links a path goes through, as the
// kernel's ELOOP does.
const maxLinks = 40

// walker resolves the cache directory's path one name at a time, as the
// kernel does, checking each directory and link it goes through: the
// lexical path could hide a link in a directory anyone can write.
type walker struct {
	dir   string
	euid  int
	links int
	// shared is the sticky, world-writable directory the path is in, when
	// no directory only its owner writes came after it.
	shared string
}

func (w *walker) walk(allowMissing bool) error {
	fi, err := os.Lstat("/")
	if err != nil {
		return err
	}
	if err := w.checkAbove("/", fi); err != nil {
		return err
	}
	cur, names := "/", splitPath(w.dir)
	if len(names) == 0 {
		return w.checkDir("/", fi)
	}
	for len(names) > 0 {
		name := names[0]
		names = names[1:]
		if name == ".." {
			// cur has no links left in it: its parent is its lexical one.
			cur = filepath.Dir(cur)
			continue
		}
		last := len(names) == 0
		p := filepath.Join(cur, name)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) && allowMissing {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cache directory %s: %w", w.dir, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := w.follow(p, fi, last)
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			names = append(splitPath(target), names...)
			continue
		}
		if !fi.IsDir() {
			return fmt.Errorf("cache directory %s: %s is not a directory", w.dir, p)
		}
		if last {
			return w.checkDir(p, fi)
		}
		if err := w.checkAbove(p, fi); err != nil {
			return err
		}
		cur = p
	}
	return nil
}

func splitPath(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" && s != "." {
			out = append(out, s)
		}
	}
	return out
}

// follow checks the link at p and returns its target. Whoever owns a link
// decides where it points; the directory it is in was checked already.
func (w *walker) follow(p string, fi fs.FileInfo, last bool) (string, error) {
	w.links++
	if w.links > maxLinks {
		return "", fmt.Errorf("cache directory %s: too many levels of symbolic links", w.dir)
	}
	uid, err := ownerOf(fi)
	if err != nil {
		return "", err
	}
	if uid != w.euid && (last || uid != 0) {
		return "", w.refuse(p, fmt.Sprintf("is a symbolic link owned by uid %d, not by this user (uid %d)", uid, w.euid), "rm "+p)
	}
	return os.Readlink(p)
}

// checkAbove checks a directory above the cache directory: whoever can
// write it can rename the cache away and put another in its place.
func (w *walker) checkAbove(p string, fi fs.FileInfo) error {
	uid, err := ownerOf(fi)
	if err != nil {
		return err
	}
	if uid != 0 && uid != w.euid {
		return w.refuse(p, fmt.Sprintf("is owned by uid %d, who could replace what is in it", uid), fmt.Sprintf("chown %d %s", w.euid, p))
	}
	if fi.Mode().Perm()&0o022 == 0 {
		// Only its owner names what is in it: no longer shared.
		w.shared = ""
		return nil
	}
	// In a sticky directory others may add names, but not rename ours.
	if fi.Mode()&fs.ModeSticky != 0 {
		w.shared = p
		return nil
	}
	return w.refuse(p, writable(fi)+" and not sticky", "chmod go-w "+p)
}

// checkDir checks the cache directory itself.
func (w *walker) checkDir(p string, fi fs.FileInfo) error {
	uid, err := ownerOf(fi)
	if err != nil {
		return err
	}
	if uid != w.euid {
		return w.refuse(p, fmt.Sprintf("is owned by uid %d, not by this user (uid %d)", uid, w.euid), fmt.Sprintf("chown -R %d %s", w.euid, p))
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return w.refuse(p, writable(fi), "chmod go-w "+p)
	}
	if w.shared != "" && fi.Mode().Perm()&0o077 != 0 {
		return w.refuse(p, fmt.Sprintf("is open to others (mode %s) inside the shared directory %s", modeString(fi), w.shared), "chmod 700 "+p)
	}
	return nil
}

func (w *walker) refuse(p, reason, fix string) error {
	return &UntrustedError{Dir: w.dir, Path: p, Reason: reason, Fix: fix}
}

func writable(fi fs.FileInfo) string {
	who := "others"
	if fi.Mode().Perm()&0o002 == 0 {
		who = "its group"
	}
	return fmt.Sprintf("is writable by %s (mode %s)", who, modeString(fi))
}

// modeString is the mode as chmod takes it: 0755, 1777.
func modeString(fi fs.FileInfo) string {
	m := uint32(fi.Mode().Perm())
	for bit, v := range map[fs.FileMode]uint32{fs.ModeSticky: 0o1000, fs.ModeSetgid: 0o2000, fs.ModeSetuid: 0o4000} {
		if fi.Mode()&bit != 0 {
			m |= v
		}
	}
	return fmt.Sprintf("%04o", m)
}
