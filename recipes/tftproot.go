package recipes

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// ErrUnsafeTFTPRoot is what CheckTFTPRoot wraps: netboot --install would
// write the TFTP tree (boot/vmlinuz-*, boot/initrd.img-*, pxelinux.cfg/)
// into a directory the host itself lives on.
var ErrUnsafeTFTPRoot = errors.New("unsafe tftp.root")

// systemDirs are directories of the host a TFTP tree must not be: with
// tftp.root: / the image's kernel would replace the host's own
// /boot/vmlinuz-*, and tftpd serves everything below its root to anyone
// who asks, without a password (/srv would serve the NFS roots, their
// /etc/shadow included). Their subdirectories are allowed (/var/lib/tftpboot is
// Fedora's TFTP root), except the standard ones listed here and anything
// below systemTrees.
var systemDirs = map[string]bool{
	"/": true, "/bin": true, "/boot": true, "/home": true, "/lost+found": true,
	"/media": true, "/mnt": true, "/opt": true, "/root": true, "/sbin": true,
	"/srv": true, "/tmp": true, "/usr": true, "/var": true,
	"/usr/bin": true, "/usr/sbin": true, "/usr/include": true, "/usr/libexec": true,
	"/usr/local": true, "/usr/local/bin": true, "/usr/local/sbin": true,
	"/usr/local/lib": true, "/usr/share": true, "/usr/src": true,
	"/var/backups": true, "/var/cache": true, "/var/lib": true, "/var/local": true,
	"/var/lock": true, "/var/log": true, "/var/mail": true, "/var/opt": true,
	"/var/run": true, "/var/spool": true, "/var/tmp": true,
}

// systemTrees hold nothing a TFTP tree may go into: kernel filesystems,
// runtime state (tmpfs, gone at reboot) and the host's configuration.
var systemTrees = []string{"/dev", "/etc", "/proc", "/run", "/sys"}

// CheckTFTPRoot returns an error wrapping ErrUnsafeTFTPRoot when dir
// cannot be the TFTP root netboot --install writes into. Validation calls
// it on every recipe, and netboot again before it installs, so that a
// recipe that skipped validation cannot aim the install at the host.
func CheckTFTPRoot(dir string) error {
	if msg := tftpRootProblem(dir); msg != "" {
		return fmt.Errorf("%w %q: %s", ErrUnsafeTFTPRoot, dir, msg)
	}
	return nil
}

func tftpRootProblem(dir string) string {
	if !strings.HasPrefix(dir, "/") {
		return "expected an absolute path such as /srv/tftp"
	}
	if hasDotDot(dir) {
		return "expected a path without .. components"
	}
	const own = "the TFTP tree needs a directory of its own such as /srv/tftp"
	clean := path.Clean(dir)
	if systemDirs[clean] || isLibDir(clean) || slices.Contains(systemTrees, clean) {
		return fmt.Sprintf("%s is a system directory; %s", clean, own)
	}
	for _, t := range systemTrees {
		if strings.HasPrefix(clean, t+"/") {
			return fmt.Sprintf("%s is inside %s, a system directory; %s", clean, t, own)
		}
	}
	return ""
}

// isLibDir matches /lib, /lib64, /libx32, /usr/lib32...: the library
// directories, whatever the multilib layout calls them.
func isLibDir(clean string) bool {
	for _, parent := range []string{"/", "/usr/"} {
		if rest, ok := strings.CutPrefix(clean, parent); ok && strings.HasPrefix(rest, "lib") && !strings.Contains(rest, "/") {
			return true
		}
	}
	return false
}

// validateTFTPRoot reports an unsafe tftp.root at its line and column.
// Relative paths and ".." are the confpath check's to report, once; an
// empty root is not, and would put the tree at the top of the server.
func (r *Recipe) validateTFTPRoot(v *Validator) {
	root := r.Netboot.TFTP.Root
	if root != "" && (!strings.HasPrefix(root, "/") || hasDotDot(root)) {
		return
	}
	if msg := tftpRootProblem(root); msg != "" {
		v.Errorf("netboot.tftp.root", ErrInvalid, "invalid tftp root %q: %s", root, msg)
		return
	}
	// tftpd serves its whole tree to anyone: an image below it would give
	// away its /etc/shadow and SSH host keys, and a TFTP tree inside the
	// export would be written into what nodes mount as their root.
	if r.NFSRoot != nil && r.NFSRoot.Path != "" && nested(path.Clean(root), path.Clean(r.NFSRoot.Path)) {
		v.Errorf("netboot.tftp.root", ErrInvalid, "invalid tftp root %q: it overlaps nfsroot.path %s; tftpd would serve the image's files, /etc/shadow included, to anyone", root, r.NFSRoot.Path)
	}
}

// nested reports whether one of two clean absolute paths is the other or
// below it.
func nested(a, b string) bool {
	below := func(x, y string) bool { return x == y || strings.HasPrefix(x, strings.TrimSuffix(y, "/")+"/") }
	return below(a, b) || below(b, a)
}
