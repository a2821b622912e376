package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"

	"github.com/krgimage/krgimage/internal/progress"
)

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Against, when set, is a tree (restored or live) to check against
	// the archive's manifest instead of the archive's own entries.
	Against string
	// IgnoreMtime leaves modification times out of a tree check, for
	// live trees whose directories change.
	IgnoreMtime bool
	Threads     int
	Log         *slog.Logger
	Progress    *progress.Task
}

// Report is what Verify found.
type Report struct {
	// SHA256 is the archive's digest, equal to the sidecar's.
	SHA256 string
	// Entries counts the manifest's entries.
	Entries int
	// Differences lists every path where the archive's entries, or the
	// tree, differ from the manifest.
	Differences []Difference
}

// Verify checks the archive at path: its SHA-256 against the .sha256
// sidecar (ErrChecksum), its stream to the end (ErrCorrupt), and every
// entry, content included, against the manifest. With o.Against it checks
// that tree against the manifest instead of reading the entries. Any
// difference makes the error wrap ErrMismatch; the report lists them all.
func Verify(ctx context.Context, archive string, o VerifyOptions) (*Report, error) {
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	// Say what is wrong with the archive itself before its sidecar.
	if fi, err := os.Stat(archive); err != nil {
		return nil, fmt.Errorf("verifying: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("verifying %s: it is a %s, not an archive", archive, fileKind(fi.Mode()))
	}
	want, err := readSidecar(archive, os.ReadFile)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: reading the checksum: %w", archive, err)
	}
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hr := newHashReader(f)
	rep := &Report{}
	if o.Against != "" {
		// The manifest is the first entry: no need to decompress the rest.
		// The decoder may still be reading ahead when it is closed, so the
		// digest comes from a reader of its own.
		m, err := ReadManifest(ctx, archive)
		if err != nil {
			return nil, fmt.Errorf("verifying %s: %w", archive, err)
		}
		if rep.SHA256, err = hr.finish(); err != nil {
			return nil, fmt.Errorf("verifying %s: %w", archive, err)
		}
		if rep.SHA256 != want {
			return rep, fmt.Errorf("verifying %s: %w: sha256 %s, the sidecar says %s", archive, ErrChecksum, rep.SHA256, want)
		}
		rep.Entries = len(m.Entries)
		nodes, err := scan(ctx, o.Against, scanOptions{log: o.Log, threads: o.Threads, live: true, progress: progressFunc(o.Progress)})
		if err != nil {
			return rep, fmt.Errorf("verifying %s: %w", o.Against, err)
		}
		rep.Differences = compare(m.Entries, nodeEntries(nodes), compareOptions{mtime: !o.IgnoreMtime})
		if len(rep.Differences) > 0 {
			return rep, fmt.Errorf("verifying %s: %w: %d differences", o.Against, ErrMismatch, len(rep.Differences))
		}
		return rep, nil
	}
	rr, err := readArchive(ctx, hr, readOptions{threads: o.Threads}, func(*member) error { return nil })
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", archive, err)
	}
	if rep.SHA256, err = hr.finish(); err != nil {
		return nil, fmt.Errorf("verifying %s: %w", archive, err)
	}
	if rep.SHA256 != want {
		return rep, fmt.Errorf("verifying %s: %w: sha256 %s, the sidecar says %s", archive, ErrChecksum, rep.SHA256, want)
	}
	if rr.manifest == nil {
		return rep, fmt.Errorf("verifying %s: %w: no manifest", archive, ErrCorrupt)
	}
	rep.Entries = len(rr.manifest.Entries)
	rep.Differences = rr.diffs
	if len(rep.Differences) > 0 {
		return rep, fmt.Errorf("verifying %s: %w: %d differences", archive, ErrMismatch, len(rep.Differences))
	}
	return rep, nil
}

// ReadManifest returns the manifest of the archive at path, reading only
// as far as its first entry.
func ReadManifest(ctx context.Context, archive string) (*Manifest, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := ReadManifestFrom(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of %s: %w", archive, err)
	}
	return m, nil
}

// ReadManifestFrom reads the manifest at the start of an archive stream.
func ReadManifestFrom(ctx context.Context, r interface{ Read([]byte) (int, error) }) (*Manifest, error) {
	dr, _, closeDec, err := openDecompressor(r, 1)
	if err != nil {
		return nil, err
	}
	defer closeDec()
	tr := newTarReader(dr)
	h, err := tr.Next()
	if err != nil {
		return nil, err
	}
	if rel, _ := cleanName(h.Name); rel != ManifestName || h.Typeflag != typeReg || h.Sparse != nil {
		return nil, fmt.Errorf("%w: no manifest: the first entry is %q", ErrCorrupt, h.Name)
	}
	if h.Size > maxManifestSize {
		return nil, corruptf("manifest of %d bytes", h.Size)
	}
	return ParseManifest(tr)
}

func nodeEntries(nodes []*node) []Entry {
	es := make([]Entry, len(nodes))
	for i, n := range nodes {
		es[i] = n.Entry
	}
	return es
}

func progressFunc(t *progress.Task) func(int, int64) {
	if t == nil {
		return nil
	}
	return func(files int, bytes int64) {
		t.SetCurrent(bytes)
		t.SetLabel(fmt.Sprintf("%d files", files))
	}
}

// TreeManifest lists the tree at root as a snapshot of it would, content
// digests included, without writing an archive: a baseline for Compare.
func TreeManifest(ctx context.Context, root string, threads int) (*Manifest, error) {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	nodes, err := scan(ctx, root, scanOptions{log: slog.New(slog.DiscardHandler), threads: threads})
	if err != nil {
		return nil, err
	}
	return &Manifest{Entries: nodeEntries(nodes)}, nil
}

// Compare lists what differs from old to new, modification times
// included.
func Compare(old, new *Manifest) []Difference {
	return compare(old.Entries, new.Entries, compareOptions{mtime: true})
}
