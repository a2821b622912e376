package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/krgimage/krgimage/internal/fsutil"
	"github.com/krgimage/krgimage/snapshot"
)

type snapshotOptions struct {
	root        string
	out         string
	compression string
	level       int
	threads     int
	epoch       string
}

func (a *app) newSnapshotCmd() *cobra.Command {
	o := &snapshotOptions{}
	cmd := &cobra.Command{
		Use:   "snapshot ROOT -o FILE",
		Short: "Write a lossless, reproducible tarball of a root filesystem",
		Long: `Write a snapshot of the tree at ROOT: a PAX tar with numeric owners, every
file type (sockets are skipped with a warning), setuid/setgid/sticky bits,
extended attributes (file capabilities, POSIX ACLs, user.*), nanosecond
mtimes, hardlinks and sparse files. Its first entry, .krgimage-manifest,
lists every path with its type, mode, owner, size, SHA-256, link target,
device numbers and xattr digests; FILE.sha256 holds the archive's SHA-256.

The compression comes from FILE's extension (.zst, .gz, .xz, .tar) or
--compression. With --source-date-epoch or $SOURCE_DATE_EPOCH, newer mtimes
are clamped to it, and two snapshots of the same tree are byte-identical
whatever --threads is.

FILE is written through a temporary file renamed into place; on any error
nothing is left behind. GNU tar and bsdtar extract the archive too:
  tar --xattrs --xattrs-include='*' --acls -xpf FILE -C DIR`,
		Example: `  krgimage snapshot out/rootfs -o node.tar.zst
  SOURCE_DATE_EPOCH=1700000000 krgimage snapshot out/rootfs -o node.tar.xz --level 9`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("snapshot takes one ROOT directory, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.root = args[0]
			return a.runSnapshot(cmd.Context(), cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.out, "output", "o", "", "archive to write (required)")
	f.StringVar(&o.compression, "compression", "", "zstd, gzip, xz or none (default: from the file name, else zstd)")
	f.IntVar(&o.level, "level", 0, "compression level (default: zstd 3, gzip 6, xz 6); zstd's 1-22 map to four encoder speeds: 1-2, 3-5, 6-9, 10-22")
	f.IntVar(&o.threads, "threads", 0, "hashing and compression threads (default: the number of CPUs); never changes the output")
	f.StringVar(&o.epoch, "source-date-epoch", "", "clamp mtimes to these seconds since 1970 (default: $SOURCE_DATE_EPOCH)")
	return cmd
}

func (a *app) runSnapshot(ctx context.Context, cmd *cobra.Command, o *snapshotOptions) error {
	if o.out == "" {
		return usagef("snapshot needs -o FILE")
	}
	comp, named, err := snapshot.CompressionFromName(o.out)
	if err != nil {
		return usagef("-o %s: %v", o.out, err)
	}
	if o.compression != "" {
		c, err := snapshot.ParseCompression(o.compression)
		if err != nil {
			return usagef("--compression: %v", err)
		}
		if named && c != comp {
			return usagef("-o %s names %s compression, but --compression is %s", o.out, comp, c)
		}
		comp = c
	}
	if o.threads < 0 {
		return usagef("--threads %d: must not be negative", o.threads)
	}
	epoch, err := a.sourceDateEpoch(o.epoch, cmd.Flags().Changed("source-date-epoch"))
	if err != nil {
		return err
	}
	fi, err := os.Stat(o.root)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return usagef("%s is not a directory", o.root)
	}
	if inside(o.root, o.out) {
		return usagef("the archive %s would be inside the tree %s", o.out, o.root)
	}
	opts := snapshot.Options{Compression: comp, Level: o.level, Threads: o.threads, SourceDateEpoch: epoch, Log: a.log}
	if opts.Level == 0 {
		opts.Level = snapshot.DefaultLevel[comp]
	}
	if err := opts.Validate(); err != nil {
		return usagef("--level: %v", err) // the compression was parsed above
	}
	task := a.progress.Task("snapshot", 0)
	opts.Progress = task
	start := a.now()
	res, err := snapshot.WriteFile(ctx, o.root, o.out, opts)
	task.Done(err != nil)
	if err != nil {
		return err
	}
	a.log.Info("snapshot written", "path", o.out, "entries", res.Entries, "bytes", res.Bytes, "size", res.Size,
		"compression", fmt.Sprintf("%s-%d", res.Compression, res.Level), "elapsed", a.now().Sub(start).Round(time.Millisecond))
	fmt.Fprintf(a.stdout, "%s  %s\n", res.SHA256, o.out)
	return nil
}

// sourceDateEpoch is the flag when given, else $SOURCE_DATE_EPOCH, else
// nil (no clamping).
func (a *app) sourceDateEpoch(flag string, set bool) (*time.Time, error) {
	s, what := flag, "--source-date-epoch"
	if !set {
		s, what = a.getenv("SOURCE_DATE_EPOCH"), "SOURCE_DATE_EPOCH"
	}
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return nil, usagef("%s=%q: expected seconds since 1970", what, s)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

// inside reports whether p is within dir, symlinks resolved: an archive
// written into the tree through a link would archive itself.
func inside(dir, p string) bool {
	d, err1 := fsutil.RealPath(dir)
	q, err2 := fsutil.RealPath(filepath.Dir(p))
	if err1 != nil || err2 != nil {
		return false
	}
	q = filepath.Join(q, filepath.Base(p))
	rel, err := filepath.Rel(d, q)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func (a *app) newRestoreCmd() *cobra.Command {
	var o snapshot.RestoreOptions
	cmd := &cobra.Command{
		Use:   "restore ARCHIVE ROOT",
		Short: "Restore a snapshot exactly, atomically and safely",
		Long: `Restore ARCHIVE (a krgimage snapshot, or a tar made by GNU tar or bsdtar) into
ROOT: owners before modes (setuid survives), xattrs and ACLs, times last,
hardlinks as hardlinks, devices with mknod, sparse files with their holes.

The tree is built in a staging directory next to ROOT and renamed into place
only once every entry was extracted and checked. With ARCHIVE.sha256, the
archive must match it, and every entry's metadata the manifest: the checksum
already vouches for the bytes snapshot wrote, so the files are not hashed
again. Without it, the files' contents are checked against the manifest too
(krgimage verify does both). An interrupted or failed restore leaves ROOT as
it was. ROOT must be missing or empty unless --force is given, which
replaces it as a whole; it cannot be a mount point (restore into a directory
inside it).

Entries that would write outside ROOT are refused: "..", absolute names,
paths through a symlink (even one pointing inside ROOT), hardlinks to names
outside it. Symlinks are data, restored verbatim whatever their target
(absolute, above ROOT, dangling) and never followed: every directory written
into is resolved inside ROOT (openat2 RESOLVE_IN_ROOT, or a walk that follows
no symlink on kernels before 5.6).`,
		Example: `  krgimage restore node.tar.zst /srv/nfsroot/node
  krgimage restore node.tar.zst /srv/nfsroot/node --force`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usagef("restore takes ARCHIVE and ROOT, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Log = a.log
			task := a.progress.Task("restore", 0)
			o.Progress = task
			start := a.now()
			res, err := snapshot.Restore(cmd.Context(), args[0], args[1], o)
			task.Done(err != nil)
			if err != nil {
				return err
			}
			a.log.Info("restored", "path", args[1], "entries", res.Entries, "manifest", res.Manifest,
				"sidecar", res.Sidecar, "elapsed", a.now().Sub(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.Force, "force", false, "replace an existing, non-empty ROOT")
	cmd.Flags().BoolVar(&o.NoSync, "no-sync", false, "do not sync the filesystem before renaming the tree into place")
	cmd.Flags().IntVar(&o.Threads, "threads", 0, "decompression threads (default: the number of CPUs)")
	return cmd
}

func (a *app) newVerifyCmd() *cobra.Command {
	var o snapshot.VerifyOptions
	cmd := &cobra.Command{
		Use:   "verify ARCHIVE [--against ROOT]",
		Short: "Check a snapshot against its checksum and manifest, or a tree against a snapshot",
		Long: `Check ARCHIVE: its SHA-256 against ARCHIVE.sha256, the compressed stream to the
end, and every entry, content included, against the manifest inside it.

With --against ROOT, check the tree at ROOT (restored, or live) against the
manifest instead, and list every path added, removed or changed, with what
changed: type, content, size, mode, owner, link, device, xattrs, mtime.

Exit status: 0 when everything matches, 1 otherwise.`,
		Example: `  krgimage verify node.tar.zst
  krgimage verify node.tar.zst --against /srv/nfsroot/node --ignore-mtime`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("verify takes one ARCHIVE, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Log = a.log
			task := a.progress.Task("verify", 0)
			o.Progress = task
			rep, err := snapshot.Verify(cmd.Context(), args[0], o)
			task.Done(err != nil)
			if rep != nil {
				for _, d := range rep.Differences {
					fmt.Fprintln(a.stdout, d)
				}
			}
			if err != nil {
				return err
			}
			what := args[0]
			if o.Against != "" {
				what = o.Against
			}
			fmt.Fprintf(a.stdout, "%s: ok, %d entries match\n", what, rep.Entries)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Against, "against", "", "check this tree against the archive's manifest")
	cmd.Flags().BoolVar(&o.IgnoreMtime, "ignore-mtime", false, "with --against, do not compare modification times")
	cmd.Flags().IntVar(&o.Threads, "threads", 0, "hashing threads (default: the number of CPUs)")
	return cmd
}

func (a *app) newDiffCmd() *cobra.Command {
	var o snapshot.DiffOptions
	var exitCode bool
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Compare two snapshots, or a snapshot and a tree",
		Long: `Compare A and B, each a snapshot archive or a directory: the paths added,
removed and changed from A to B, with what changed (content, mode, owner,
xattrs...), then the Debian packages whose installed version differs, read
from each side's /var/lib/dpkg/status.

Modification times are left out unless --mtime is given: two builds of one
recipe differ there everywhere.`,
		Example: `  krgimage diff yesterday.tar.zst today.tar.zst
  krgimage diff node.tar.zst /srv/nfsroot/node --exit-code`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usagef("diff takes A and B, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Log = a.log
			rep, err := snapshot.Diff(cmd.Context(), args[0], args[1], o)
			if err != nil {
				return err
			}
			for _, d := range rep.Differences {
				fmt.Fprintln(a.stdout, d)
			}
			if len(rep.Packages) > 0 {
				fmt.Fprintf(a.stdout, "packages:\n")
				for _, p := range rep.Packages {
					fmt.Fprintf(a.stdout, "  %s\n", p)
				}
			}
			if exitCode && (len(rep.Differences) > 0 || len(rep.Packages) > 0) {
				return errDiffers
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.Mtime, "mtime", false, "also report modification times that differ")
	cmd.Flags().BoolVar(&exitCode, "exit-code", false, "exit with status 1 when A and B differ")
	cmd.Flags().IntVar(&o.Threads, "threads", 0, "hashing threads (default: the number of CPUs)")
	return cmd
}

var errDiffers = errors.New("the two sides differ")
