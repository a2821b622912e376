package snapshot

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/krgimage/krgimage/internal/fsutil"
	"github.com/krgimage/krgimage/internal/progress"
)

// Options configure Write.
type Options struct {
	// Compression defaults to Zstd.
	Compression Compression
	// Level is the compression level; 0 means DefaultLevel.
	Level int
	// Threads bounds the goroutines that hash and compress; 0 means
	// runtime.NumCPU(). It never changes the archive's bytes.
	Threads int
	// SourceDateEpoch, when set, clamps every newer mtime to it, and is
	// the manifest's mtime; otherwise that is the newest mtime in the tree.
	SourceDateEpoch *time.Time
	// Log receives warnings (skipped sockets, mount points); nil discards.
	Log *slog.Logger
	// Progress, when set, shows bytes and files as they are processed.
	Progress *progress.Task
}

// Validate checks the compression and its level.
func (o Options) Validate() error {
	c := o.Compression
	if c == "" {
		c = Zstd
	}
	if _, err := ParseCompression(string(c)); err != nil {
		return err
	}
	if o.Level == 0 {
		return nil
	}
	return checkLevel(c, o.Level)
}

func (o *Options) normalize() error {
	if err := o.Validate(); err != nil {
		return err
	}
	if o.Compression == "" {
		o.Compression = Zstd
	}
	if o.Level == 0 {
		o.Level = DefaultLevel[o.Compression]
	}
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Result describes a written archive.
type Result struct {
	// SHA256 is the hex digest of the archive's bytes, as in the sidecar.
	SHA256 string
	// Size is the archive's size in bytes.
	Size int64
	// Entries counts the tree's entries (the manifest not included).
	Entries int
	// Bytes is the total size of the files.
	Bytes       int64
	Compression Compression
	Level       int
}

// Write writes a snapshot of the tree at root to w: a PAX tar whose first
// entry is the manifest, compressed as o says. It reads every file twice:
// once to hash it for the manifest, which comes first, and once to archive
// it; a file that changes in between is an error wrapping ErrChanged.
func Write(ctx context.Context, root string, w io.Writer, o Options) (Result, error) {
	if err := o.normalize(); err != nil {
		return Result{}, err
	}
	res := Result{Compression: o.Compression, Level: o.Level}
	task := o.Progress
	var totalBytes int64
	setLabel(task, "scanning")
	nodes, err := scan(ctx, root, scanOptions{
		log: o.Log, threads: o.Threads, warnManifest: true,
		total: func(files int, bytes int64) {
			totalBytes = bytes
			if task != nil {
				task.SetTotal(2 * max(bytes, 1))
			}
		},
		progress: func(files int, bytes int64) {
			if task != nil {
				task.SetCurrent(bytes)
				task.SetLabel(fmt.Sprintf("hashing: %d files", files))
			}
		},
	})
	if err != nil {
		return res, err
	}
	m := &Manifest{Entries: make([]Entry, len(nodes))}
	var newest time.Time
	for i, n := range nodes {
		n.ModTime = clamp(n.ModTime, o.SourceDateEpoch)
		m.Entries[i] = n.Entry
		if n.ModTime.After(newest) {
			newest = n.ModTime
		}
		if n.Type == TypeFile {
			res.Bytes += n.Size
		}
	}
	if o.SourceDateEpoch != nil {
		newest = *o.SourceDateEpoch
	}
	mdata, _ := m.MarshalText()

	out := &hashWriter{w: w, h: sha256.New()}
	comp, err := newCompressor(out, o.Compression, o.Level, o.Threads)
	if err != nil {
		return res, err
	}
	// The zstd writer buffers whole frames itself; a bufio in front of it
	// would only copy every byte once more.
	var bw interface {
		io.Writer
		Flush() error
	} = nopFlusher{comp}
	if o.Compression != Zstd {
		bw = bufio.NewWriterSize(comp, 1<<20)
	}
	tw := newTarWriter(bw)
	if err := writeTree(ctx, tw, root, newest, mdata, nodes, totalBytes, task); err != nil {
		comp.Close()
		return res, err
	}
	if err := tw.Close(); err != nil {
		comp.Close()
		return res, err
	}
	if err := bw.Flush(); err != nil {
		comp.Close()
		return res, err
	}
	if err := comp.Close(); err != nil {
		return res, err
	}
	res.SHA256, res.Size, res.Entries = hex.EncodeToString(out.h.Sum(nil)), out.n, len(nodes)
	return res, nil
}

func writeTree(ctx context.Context, tw *tarWriter, root string, mtime time.Time, mdata []byte, nodes []*node, total int64, task *progress.Task) error {
	mh := &tarHeader{Name: "./" + ManifestName, Typeflag: typeReg, Mode: 0o444, Size: int64(len(mdata)), ModTime: mtime}
	if err := tw.WriteHeader(mh); err != nil {
		return err
	}
	if _, err := tw.Write(mdata); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	var done int64
	for i, n := range nodes {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if task != nil {
				task.SetCurrent(total + done)
				task.SetLabel(fmt.Sprintf("archiving: %d/%d entries", i, len(nodes)))
			}
		}
		if err := tw.WriteHeader(n.header(n.ModTime)); err != nil {
			return fmt.Errorf("archiving %s: %w", n.Path, err)
		}
		if n.Type != TypeFile || n.Size == 0 {
			continue
		}
		if err := copyFile(tw, root, n, buf); err != nil {
			return fmt.Errorf("archiving %s: %w", n.Path, err)
		}
		done += n.Size
	}
	return nil
}

func copyFile(tw *tarWriter, root string, n *node, buf []byte) error {
	f, err := openFile(root, n)
	if err != nil {
		return err
	}
	defer f.Close()
	segs := n.sparse
	if segs == nil {
		segs = []segment{{0, n.Size}}
	}
	for _, s := range segs {
		if _, err := f.Seek(s.Off, io.SeekStart); err != nil {
			return err
		}
		m, err := io.CopyBuffer(tw, io.LimitReader(f, s.Len), buf)
		if err != nil {
			return err
		}
		if m != s.Len {
			return ErrChanged
		}
	}
	return nil
}

func clamp(t time.Time, epoch *time.Time) time.Time {
	if epoch != nil && t.After(*epoch) {
		return *epoch
	}
	return t
}

func setLabel(t *progress.Task, s string) {
	if t != nil {
		t.SetLabel(s)
	}
}

type nopFlusher struct{ io.Writer }

func (nopFlusher) Flush() error { return nil }

type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// SidecarPath is where the SHA-256 of an archive is kept.
func SidecarPath(archive string) string { return archive + ".sha256" }

// WriteFile writes a snapshot of root to path atomically (a temporary
// file, synced, renamed into place; removed on any error), then the
// sidecar path.sha256 in sha256sum's format.
func WriteFile(ctx context.Context, root, path string, o Options) (Result, error) {
	var res Result
	err := fsutil.WriteAtomic(path, 0o644, func(f *os.File) error {
		var err error
		res, err = Write(ctx, root, f, o)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("writing %s: %w", path, err)
	}
	line := res.SHA256 + "  " + filepath.Base(path) + "\n"
	if err := fsutil.WriteFileAtomic(SidecarPath(path), []byte(line), 0o644); err != nil {
		return res, fmt.Errorf("writing %s: %w", SidecarPath(path), err)
	}
	return res, nil
}
