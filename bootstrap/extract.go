package bootstrap

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
)

// ErrUnsafePath: a package's data archive names a path outside the root.
var ErrUnsafePath = errors.New("path escapes the target")

// Privileged holds the calls extraction makes that need root (and Linux
// for some). Tests run unprivileged against a fake that records them.
type Privileged interface {
	Lchown(root *os.Root, name string, uid, gid int) error
	// Mknod creates a device or FIFO; mode carries the file type.
	Mknod(root *os.Root, name string, mode fs.FileMode, major, minor uint32) error
	// Setxattr sets an extended attribute on an open file or directory.
	Setxattr(f *os.File, attr string, value []byte) error
}

// usrAliases are the top-level directories a merged /usr turns into
// symbolic links into /usr: debootstrap's list, every multilib directory
// an architecture may use.
var usrAliases = []string{"bin", "lib", "lib32", "lib64", "libo32", "libx32", "sbin"}

// extractor unpacks data archives into a root the way dpkg would, without
// dpkg: it makes the essential packages' files exist so that dpkg, the
// shell and the maintainer scripts can run inside the root.
type extractor struct {
	root *os.Root
	priv Privileged
	// merged rewrites /bin, /lib, /sbin... to /usr/bin... as a
	// merged-/usr system has them.
	merged bool
	// skip leaves out the paths it returns true for.
	skip func(name string) bool
}

// unusedWhileInstalling are directories whose files no program reads while
// packages are installed: documentation and translations. Leaving them to
// dpkg halves what the essential set's extraction writes, and dpkg then
// creates those files instead of replacing them.
var unusedWhileInstalling = []string{"usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info", "usr/share/lintian"}

func skipUnused(name string) bool {
	for _, d := range unusedWhileInstalling {
		if name == d || strings.HasPrefix(name, d+"/") {
			return true
		}
	}
	return false
}

// extract unpacks one package's data archive. Existing files are replaced
// (dpkg unpacks every package again afterwards and owns the result).
func (x *extractor) extract(tr *tar.Reader, pkg string) error {
	_, err := x.extractCounting(tr, pkg)
	return err
}

// extractCounting is extract, reporting how many entries it read.
func (x *extractor) extractCounting(tr *tar.Reader, pkg string) (entries int, err error) {
	for ; ; entries++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries, nil
		}
		if err != nil {
			return entries, fmt.Errorf("%w: %s data archive: %v", ErrMalformed, pkg, err)
		}
		name, skip, err := x.name(hdr.Name)
		if err != nil {
			return entries, fmt.Errorf("%s: %w", pkg, err)
		}
		if skip || x.skip != nil && x.skip(name) || x.merged && hdr.Typeflag == tar.TypeSymlink && isUsrAlias(hdr.Name) {
			// Packages of suites past bookworm ship the /bin -> usr/bin
			// links themselves; linkUsrAliases makes them.
			continue
		}
		if err := x.entry(tr, hdr, name); err != nil {
			return entries, fmt.Errorf("%s: extracting /%s: %w", pkg, name, err)
		}
	}
}

// name cleans an archive path into one relative to the root. It refuses
// absolute paths and .., and with a merged /usr maps /bin/x to /usr/bin/x;
// the alias directories themselves are skipped, as the links are made once
// everything is unpacked.
func (x *extractor) name(raw string) (string, bool, error) {
	n := strings.TrimPrefix(raw, "./")
	if strings.HasPrefix(n, "/") || hasDotDot(n) {
		return "", false, fmt.Errorf("%w: %q", ErrUnsafePath, raw)
	}
	n = path.Clean("/" + n)[1:]
	if n == "" {
		return "", true, nil
	}
	if x.merged {
		top, rest, _ := strings.Cut(n, "/")
		for _, a := range usrAliases {
			if top == a {
				if rest == "" {
					return "usr/" + a, false, nil
				}
				return "usr/" + a + "/" + rest, false, nil
			}
		}
	}
	return n, false, nil
}

func isUsrAlias(raw string) bool {
	n := strings.Trim(strings.TrimPrefix(raw, "./"), "/")
	for _, a := range usrAliases {
		if n == a {
			return true
		}
	}
	return false
}

func hasDotDot(p string) bool {
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return true
		}
	}
	return false
}

func (x *extractor) entry(tr *tar.Reader, hdr *tar.Header, name string) error {
	r := x.root
	mode := fs.FileMode(hdr.Mode) & fs.ModePerm
	if hdr.Mode&04000 != 0 {
		mode |= fs.ModeSetuid
	}
	if hdr.Mode&02000 != 0 {
		mode |= fs.ModeSetgid
	}
	if hdr.Mode&01000 != 0 {
		mode |= fs.ModeSticky
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		fi, err := r.Lstat(name)
		switch {
		case err == nil && fi.Mode()&fs.ModeSymlink != 0:
			// A link where a directory is expected (/var/run -> /run)
			// is kept, as dpkg keeps it.
			return nil
		case err == nil && !fi.IsDir():
			if err := r.Remove(name); err != nil {
				return err
			}
			fallthrough
		case errors.Is(err, fs.ErrNotExist):
			if err := r.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		if err := x.owner(name, hdr); err != nil {
			return err
		}
		return r.Chmod(name, mode)
	case tar.TypeReg:
		if err := x.clear(name); err != nil {
			return err
		}
		f, err := r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		if err := x.owner(name, hdr); err != nil {
			f.Close()
			return err
		}
		// After the owner: chown clears setuid bits.
		if err := f.Chmod(mode); err != nil {
			f.Close()
			return err
		}
		if err := x.xattrs(f, hdr); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return r.Chtimes(name, time.Time{}, hdr.ModTime)
	case tar.TypeSymlink:
		if err := x.clear(name); err != nil {
			return err
		}
		if err := r.Symlink(hdr.Linkname, name); err != nil {
			return err
		}
		return x.owner(name, hdr)
	case tar.TypeLink:
		target, skip, err := x.name(hdr.Linkname)
		if err != nil || skip {
			return fmt.Errorf("%w: hard link to %q", ErrUnsafePath, hdr.Linkname)
		}
		if x.skip != nil && x.skip(target) {
			return nil
		}
		if err := x.clear(name); err != nil {
			return err
		}
		return r.Link(target, name)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if err := x.clear(name); err != nil {
			return err
		}
		t := fs.ModeDevice | fs.ModeCharDevice
		switch hdr.Typeflag {
		case tar.TypeBlock:
			t = fs.ModeDevice
		case tar.TypeFifo:
			t = fs.ModeNamedPipe
		}
		if err := x.priv.Mknod(r, name, t|mode, uint32(hdr.Devmajor), uint32(hdr.Devminor)); err != nil {
			return err
		}
		if err := x.owner(name, hdr); err != nil {
			return err
		}
		return r.Chmod(name, mode)
	}
	// Other entry types (PAX globals, GNU long names) are consumed by the
	// tar reader itself; anything else has no place in a package.
	return fmt.Errorf("%w: entry of type %q", ErrMalformed, hdr.Typeflag)
}

// clear makes room for a new non-directory entry, creating its parent.
func (x *extractor) clear(name string) error {
	if dir := path.Dir(name); dir != "." {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	fi, err := x.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("a directory is in the way")
	}
	return x.root.Remove(name)
}

// owner sets the numeric owner the archive records; names are not looked
// up, neither on the host nor (not yet populated) in the target.
func (x *extractor) owner(name string, hdr *tar.Header) error {
	return x.priv.Lchown(x.root, name, hdr.Uid, hdr.Gid)
}

// xattrs restores extended attributes (security.capability, say) that the
// archive records as PAX SCHILY.xattr records.
func (x *extractor) xattrs(f *os.File, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		if attr, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if err := x.priv.Setxattr(f, attr, []byte(v)); err != nil {
				return fmt.Errorf("setting %s: %w", attr, err)
			}
		}
	}
	return nil
}

// linkUsrAliases makes /bin, /lib, /sbin... symbolic links into /usr for
// every alias whose /usr directory exists, as debootstrap's merge does.
func linkUsrAliases(r *os.Root) error {
	for _, a := range usrAliases {
		if fi, err := r.Stat("usr/" + a); err != nil || !fi.IsDir() {
			continue
		}
		if fi, err := r.Lstat(a); err == nil {
			if fi.Mode()&fs.ModeSymlink != 0 {
				continue
			}
			return fmt.Errorf("/%s exists and is not a link into /usr", a)
		}
		if err := r.Symlink("usr/"+a, a); err != nil {
			return err
		}
	}
	return nil
}
