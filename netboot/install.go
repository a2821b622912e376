package netboot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"github.com/krgimage/krgimage/recipes"
)

// Errors of Install callers branch on.
var (
	// ErrSymlink: a directory on the way to a file, or the file itself, is
	// a symlink. Install writes through none: on a server, a link in
	// /etc/dhcp could aim dhcpd.conf at /etc/shadow.
	ErrSymlink = errors.New("refusing to write through a symlink")
	// ErrUndeclared: the tree holds a path that is none of the server
	// files and not below its TFTP root.
	ErrUndeclared = errors.New("not a file netboot installs")
)

// BackupSuffix ends the name of the copy Install keeps of a file it
// replaces: FILE.krgimage-bak, then FILE.krgimage-bak.1, .2... so that an
// earlier backup, perhaps the admin's only copy of the original, is never
// overwritten.
const BackupSuffix = ".krgimage-bak"

// maxBackups bounds the search for a free backup name.
const maxBackups = 1000

// Installed is one file Install wrote: its path on the server and, when it
// replaced a file with other content, the backup of that file.
type Installed struct {
	Path   string
	Backup string
}

// InstallReport is what Install did, in path order.
type InstallReport struct {
	Installed []Installed
	// Unchanged are the files that already had the content.
	Unchanged []string
}

// Backups are the backups Install made.
func (r *InstallReport) Backups() []string {
	var out []string
	for _, f := range r.Installed {
		if f.Backup != "" {
			out = append(out, f.Backup)
		}
	}
	return out
}

// Install writes the tree into root's real paths (root is usually "/").
// Every path is resolved below root without following a symlink; each file
// is written to a temporary file in its directory, synced and renamed over
// the old one, so an error or Ctrl-C leaves each file old or new, never
// half-written. A file with other content is first copied to a backup
// with its mode and owner. Install stops at the first error and reports
// what it did until then.
func (t *Tree) Install(ctx context.Context, root string) (*InstallReport, error) {
	rep := &InstallReport{}
	if err := t.checkInstall(); err != nil {
		return rep, err
	}
	dir, err := openInstallRoot(root)
	if err != nil {
		return rep, err
	}
	defer dir.close()
	for _, p := range t.Paths() {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		f := t.Files[p]
		want, err := f.content()
		if err != nil {
			return rep, fmt.Errorf("installing /%s: %w", p, err)
		}
		res, err := dir.install(p, want, f.Mode.Perm())
		switch {
		case res.changed:
			in := Installed{Path: hostPath(root, p)}
			if res.backup != "" {
				in.Backup = hostPath(root, path.Join(path.Dir(p), res.backup))
			}
			rep.Installed = append(rep.Installed, in)
		case err == nil:
			rep.Unchanged = append(rep.Unchanged, hostPath(root, p))
		}
		if err != nil {
			return rep, fmt.Errorf("installing /%s: %w", p, err)
		}
	}
	return rep, nil
}

// installResult is what installing one file did: changed once the new
// content is in place (an error after the rename, syncing the directory,
// still reports it), backup the backup's name in the file's directory.
type installResult struct {
	changed bool
	backup  string
}

// hostPath is rel's path on the server, for messages.
func hostPath(root, rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }

// checkInstall refuses, before anything is written, a tree whose TFTP root
// is a system directory (the recipe may not have been validated) and any
// path that is not one the tree declares: the three server files and the
// TFTP tree.
func (t *Tree) checkInstall() error {
	if err := recipes.CheckTFTPRoot(t.TFTPRoot); err != nil {
		return fmt.Errorf("refusing to install: tftp.root: %w", err)
	}
	tftp := strings.TrimPrefix(path.Clean(t.TFTPRoot), "/")
	for _, p := range t.Paths() {
		if !fs.ValidPath(p) || p == "." {
			return fmt.Errorf("refusing to install %q: %w", p, ErrUndeclared)
		}
		if !serverFiles[p] && !strings.HasPrefix(p, tftp+"/") {
			return fmt.Errorf("refusing to install /%s (TFTP root /%s): %w", p, tftp, ErrUndeclared)
		}
	}
	return nil
}

// serverFiles are the files outside the TFTP root a tree may hold: both
// of DHCPPath's, TFTPDefaultsPath and ExportsPath.
var serverFiles = map[string]bool{
	"etc/dhcp/dhcpd.conf":  true,
	"etc/dhcp3/dhcpd.conf": true,
	KeaPath:                true,
	DnsmasqPath:            true,
	NginxPath:              true,
	TFTPDefaultsPath:       true,
	ExportsPath:            true,
}

// backupName is the i-th candidate name for base's backup.
func backupName(base string, i int) string {
	if i == 0 {
		return base + BackupSuffix
	}
	return fmt.Sprintf("%s%s.%d", base, BackupSuffix, i)
}

// tempPrefix starts the temporary files Install writes before renaming:
// hidden, and named after the file, so that one left by a power cut says
// what it was.
func tempPrefix(base string) string { return "." + base + ".krgimage-tmp-" }
