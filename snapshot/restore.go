package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/krgimage/krgimage/internal/fsutil"
	"github.com/krgimage/krgimage/internal/mounts"
	"github.com/krgimage/krgimage/internal/progress"
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// Force restores over an existing, non-empty directory, which is
	// replaced as a whole once the restore succeeded.
	Force bool
	// NoSync skips the syncfs before the staging directory is renamed
	// into place. Without the sync, a power cut shortly after a restore
	// can leave files empty under the final name.
	NoSync bool
	// Threads bounds decompression goroutines; 0 means runtime.NumCPU().
	Threads int
	// Log receives warnings; nil discards.
	Log *slog.Logger
	// Progress, when set, shows bytes read and entries restored.
	Progress *progress.Task

	// noOpenat2 resolves paths as on kernels without openat2(2), for
	// tests.
	noOpenat2 bool
}

// RestoreResult describes a restore.
type RestoreResult struct {
	Entries int
	// Manifest reports that the archive had a manifest and every entry
	// matched it.
	Manifest bool
	// Sidecar reports that the archive's .sha256 sidecar was checked.
	Sidecar bool
}

// Restore extracts the archive at path into root, exactly: owners, modes
// (setuid included), xattrs, ACLs, nanosecond mtimes, hardlinks, devices,
// sparse files.
//
// The tree is built in a staging directory next to root and renamed into
// place only when every entry was extracted and checked against the
// manifest and the archive against its .sha256 sidecar, when they exist;
// on any error the staging directory is removed and root is untouched.
// root must be missing or empty unless o.Force is set.
//
// Nothing is ever written outside the staging directory: entries with
// "..", absolute names, hardlinks to names outside the root or paths
// through symlinks are refused with ErrUnsafePath, and every directory
// written into is resolved in the root (see restoreResolve). Symlinks are
// restored verbatim whatever their target: absolute, above the root or
// dangling, they are data, never followed.
func Restore(ctx context.Context, archive, root string, o RestoreOptions) (RestoreResult, error) {
	f, err := os.Open(archive)
	if err != nil {
		return RestoreResult{}, err
	}
	defer f.Close()
	want, err := readSidecar(archive, os.ReadFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return RestoreResult{}, err
	}
	var r io.Reader = f
	var hr *hashReader
	if want != "" {
		hr = newHashReader(f)
		r = hr
	}
	if o.Progress != nil {
		if fi, err := f.Stat(); err == nil {
			o.Progress.SetTotal(fi.Size())
		}
		r = &progressReader{r: r, t: o.Progress}
	}
	res, err := restore(ctx, r, root, o, hr != nil, func() error {
		if hr == nil {
			return nil
		}
		got, err := hr.finish()
		if err != nil {
			return fmt.Errorf("reading %s: %w", archive, err)
		}
		if got != want {
			return fmt.Errorf("%s: %w: sha256 %s, %s says %s", archive, ErrChecksum, got, SidecarPath(archive), want)
		}
		return nil
	})
	res.Sidecar = hr != nil && err == nil
	if err != nil {
		return res, fmt.Errorf("restoring %s: %w", archive, err)
	}
	return res, nil
}

// RestoreReader is Restore for an archive read from r, which has no
// sidecar.
func RestoreReader(ctx context.Context, r io.Reader, root string, o RestoreOptions) (RestoreResult, error) {
	res, err := restore(ctx, r, root, o, false, func() error { return nil })
	if err != nil {
		return res, fmt.Errorf("restoring: %w", err)
	}
	return res, nil
}

func restore(ctx context.Context, r io.Reader, root string, o RestoreOptions, sidecar bool, checkSum func() error) (res RestoreResult, err error) {
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	root = filepath.Clean(root)
	exists := false
	switch fi, err := os.Lstat(root); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return res, err
	case !fi.IsDir():
		return res, fmt.Errorf("%s: not a directory", root)
	default:
		exists = true
		empty, err := fsutil.IsEmptyDir(root)
		if err != nil {
			return res, err
		}
		if !empty && !o.Force {
			return res, fmt.Errorf("%s: %w (use --force to replace it)", root, ErrNotEmpty)
		}
		// Said now rather than when the tree is built: the staging
		// directory cannot be swapped with a mount point, and the old tree
		// must not be deleted through one.
		under, err := mounts.Under(root)
		if err != nil {
			// No /proc, as in a minimal chroot: the swap would still
			// fail on a mount point, only later.
			o.Log.Warn("cannot check for mounts at the target", "path", root, "err", err)
			under = nil
		}
		real, err := fsutil.RealPath(root)
		if err != nil {
			return res, err
		}
		switch {
		case slices.Contains(under, real):
			return res, fmt.Errorf("%s is a mount point: restore builds the tree beside it and swaps them, which a mount point cannot be; restore into a directory inside it", root)
		case len(under) > 0:
			return res, fmt.Errorf("%s has filesystems mounted inside it (%s): unmount them first", root, strings.Join(under, ", "))
		}
	}
	parent, base := filepath.Split(root)
	if parent == "" {
		parent = "."
	}
	if base == "" || base == "." || base == ".." {
		return res, fmt.Errorf("%s: cannot restore onto this path", root)
	}
	staging, err := os.MkdirTemp(parent, "."+base+".restore-")
	if err != nil {
		return res, err
	}
	committed := false
	defer func() {
		if !committed {
			if rerr := fsutil.RemoveAll(staging); rerr != nil {
				o.Log.Error("removing the staging directory", "path", staging, "err", rerr)
			}
		}
	}()
	x, err := newExtractor(staging, o.Log, o.Threads, o.noOpenat2)
	if err != nil {
		return res, err
	}
	defer x.close()
	rr, err := readArchive(ctx, r, readOptions{threads: o.Threads, noDigest: sidecar, progress: func(n int) {
		if o.Progress != nil {
			o.Progress.SetLabel(fmt.Sprintf("%d entries", n))
		}
	}}, x.extract)
	if err != nil {
		return res, err
	}
	res.Entries = len(rr.entries)
	if rr.manifest == nil {
		o.Log.Warn("the archive has no manifest: its completeness cannot be checked")
	} else if len(rr.diffs) > 0 {
		return res, fmt.Errorf("%w: %d differences from the manifest: %s", ErrCorrupt, len(rr.diffs), firstDiffs(rr.diffs, 5))
	}
	if err := checkSum(); err != nil {
		return res, err
	}
	if err := x.finish(!o.NoSync); err != nil {
		return res, err
	}
	res.Manifest = rr.manifest != nil
	// The point of no return: an interrupted restore changes nothing.
	if err := ctx.Err(); err != nil {
		return res, err
	}
	old, err := commit(staging, root, exists)
	if err != nil {
		return res, err
	}
	committed = true
	if err := fsutil.SyncDir(parent); err != nil {
		return res, err
	}
	if old != "" {
		if err := fsutil.RemoveAll(old); err != nil {
			return res, fmt.Errorf("removing the previous tree (now at %s): %w", old, err)
		}
	}
	return res, nil
}

// commit moves the staging directory to root. An existing root is
// exchanged with it atomically, so root's name always holds a complete
// tree; the previous tree is then at old, for the caller to remove.
func commit(staging, root string, exists bool) (old string, err error) {
	if !exists {
		return "", os.Rename(staging, root)
	}
	if empty, _ := fsutil.IsEmptyDir(root); empty {
		// rename(2) replaces an empty directory.
		if err := os.Rename(staging, root); err == nil {
			return "", nil
		}
	}
	if err := fsutil.Exchange(staging, root); err != nil {
		return "", err
	}
	return staging, nil
}

type progressReader struct {
	r io.Reader
	t *progress.Task
	n int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	p.t.SetCurrent(p.n)
	return n, err
}
