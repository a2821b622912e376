package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"slices"

	"pault.ag/go/debian/version"

	"github.com/krgimage/krgimage/internal/dpkg"
)

// dpkgStatus is where dpkg keeps the installed packages.
const dpkgStatus = dpkg.StatusFile

// maxStatusSize bounds the dpkg status file read into memory.
const maxStatusSize = 256 << 20

// DiffOptions configure Diff.
type DiffOptions struct {
	// Mtime reports modification times that differ; off by default, as
	// two builds of the same recipe differ there everywhere.
	Mtime   bool
	Threads int
	Log     *slog.Logger
}

// DiffReport is what changed from A to B.
type DiffReport struct {
	Differences []Difference
	// Packages lists the Debian packages whose installed version differs.
	Packages []PackageChange
}

// PackageChange is a package added (Old empty), removed (New empty),
// upgraded or downgraded.
type PackageChange struct {
	Name, Old, New string
}

func (p PackageChange) String() string {
	switch {
	case p.Old == "":
		return fmt.Sprintf("%s: (none) -> %s", p.Name, p.New)
	case p.New == "":
		return fmt.Sprintf("%s: %s -> (none)", p.Name, p.Old)
	}
	return fmt.Sprintf("%s: %s -> %s", p.Name, p.Old, p.New)
}

// Diff compares a and b, each an archive or a directory: the paths added,
// removed and changed, with what changed (content, mode, owner, xattrs...),
// and the Debian packages whose versions differ, read from each side's
// /var/lib/dpkg/status. Archives are read whole and their content hashed,
// so an archive without a manifest (GNU tar's) compares too.
func Diff(ctx context.Context, a, b string, o DiffOptions) (*DiffReport, error) {
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	ea, sa, err := diffSide(ctx, a, o)
	if err != nil {
		return nil, err
	}
	eb, sb, err := diffSide(ctx, b, o)
	if err != nil {
		return nil, err
	}
	rep := &DiffReport{Differences: compare(ea, eb, compareOptions{mtime: o.Mtime})}
	pa, err := parseDpkgStatus(sa)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a, err)
	}
	pb, err := parseDpkgStatus(sb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b, err)
	}
	rep.Packages = comparePackages(pa, pb)
	return rep, nil
}

// diffSide returns the entries of an archive or a tree, and its dpkg
// status file (nil when it has none).
func diffSide(ctx context.Context, p string, o DiffOptions) ([]Entry, []byte, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	if fi.IsDir() {
		nodes, err := scan(ctx, p, scanOptions{log: o.Log, threads: o.Threads, live: true})
		if err != nil {
			return nil, nil, err
		}
		status, err := readTreeFile(p, dpkgStatus)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
		return nodeEntries(nodes), status, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var status []byte
	rr, err := readArchive(ctx, f, readOptions{threads: o.Threads}, func(m *member) error {
		if m.rel != dpkgStatus || m.content == nil || m.entry.Size > maxStatusSize {
			return nil
		}
		var b bytes.Buffer
		err := m.content.each(func(_ int64, r io.Reader) error {
			_, err := io.Copy(&b, r)
			return err
		})
		status = b.Bytes()
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", p, err)
	}
	return rr.entries, status, nil
}

// readTreeFile reads a file of a tree without following symlinks out of
// it: a live root's files may point anywhere on the host, and resolve in
// the root instead (see openTreeFile).
func readTreeFile(root, rel string) ([]byte, error) {
	f, err := openTreeFile(root, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxStatusSize))
}

// openTreeFileRoot opens a file of a tree through os.Root, which follows
// a symlink only while it stays in the root and refuses one leading out.
func openTreeFileRoot(root, rel string) (*os.File, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Open(rel)
}

// parseDpkgStatus maps each installed package (with its architecture when
// not the only one) to its version.
func parseDpkgStatus(b []byte) (map[string]string, error) {
	out := map[string]string{}
	if b == nil {
		return out, nil
	}
	installed, err := dpkg.ParseStatus(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	for _, p := range installed {
		out[p.Key()] = p.Version
	}
	return out, nil
}

func comparePackages(a, b map[string]string) []PackageChange {
	var out []PackageChange
	names := slices.Sorted(mapsKeys(a))
	for n := range b {
		if _, ok := a[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		va, vb := a[n], b[n]
		if va == vb {
			continue
		}
		if va != "" && vb != "" {
			x, err1 := version.Parse(va)
			y, err2 := version.Parse(vb)
			if err1 == nil && err2 == nil && version.Compare(x, y) == 0 {
				continue // the same version spelled differently
			}
		}
		out = append(out, PackageChange{Name: n, Old: va, New: vb})
	}
	return out
}
