package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
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
// entry is the manifest, compressed as o says. The manifest holds every
// file's digest, so they must all be known before the first byte of data
// is written.
//
// With gzip, xz or no compression, Write hashes every file, then reads it
// again to archive it. With zstd, the manifest entry is compressed into
// frames of its own, so the frames after it do not depend on it: the data
// is archived and compressed as the walk finds it, while workers hash the
// files from the end of the tree back; the data pass hashes those it gets
// to first (under a frame) as it reads them, so they are read once. The
// compressed frames wait, at most zstdHeld of them, until the manifest is
// written. Either way the tar stream is the same, and the archive's bytes
// depend only on the tree, the compression and its level.
//
// A file that changes between the walk and its reads is an error wrapping
// ErrChanged.
func Write(ctx context.Context, root string, w io.Writer, o Options) (Result, error) {
	if err := o.normalize(); err != nil {
		return Result{}, err
	}
	res := Result{Compression: o.Compression, Level: o.Level}
	out := &hashWriter{w: w, h: sha256.New()}
	a := &archiver{root: root, epoch: o.SourceDateEpoch, task: o.Progress}
	so := scanOptions{log: o.Log, threads: o.Threads, warnManifest: true, total: a.setTotal, progress: a.hashed}
	setLabel(a.task, "scanning")
	var nodes []*node
	var err error
	if o.Compression == Zstd {
		nodes, err = a.writeZstd(ctx, out, so, o.Level, o.Threads)
	} else {
		nodes, err = a.writeSequential(ctx, out, so, o)
	}
	if err != nil {
		return res, err
	}
	for _, n := range nodes {
		if n.Type == TypeFile {
			res.Bytes += n.Size
		}
	}
	res.SHA256, res.Size, res.Entries = hex.EncodeToString(out.h.Sum(nil)), out.n, len(nodes)
	return res, nil
}

// archiver writes a tree's entries after its manifest and reports the
// progress of both passes.
type archiver struct {
	root  string
	epoch *time.Time
	task  *progress.Task
	// share, when set, has the data pass hash the files it claims; z
	// tells whether it can without the risk of waiting for the manifest
	// in the middle of one, which would wait for that very file.
	share *hashShare
	z     *zstdWriter
	// The task counts the files' bytes twice, hashed (by the workers or
	// the data pass) and archived.
	hashedBytes, passHashed, archivedBytes atomic.Int64
}

func (a *archiver) setTotal(files int, bytes int64) {
	if a.task != nil {
		a.task.SetTotal(2 * max(bytes, 1))
	}
}

func (a *archiver) hashed(files int, bytes int64) {
	a.hashedBytes.Store(bytes)
	a.report(fmt.Sprintf("hashing: %d files", files))
}

func (a *archiver) report(label string) {
	if a.task != nil {
		a.task.SetCurrent(a.hashedBytes.Load() + a.passHashed.Load() + a.archivedBytes.Load())
		a.task.SetLabel(label)
	}
}

// writeSequential hashes the whole tree, then writes the archive.
func (a *archiver) writeSequential(ctx context.Context, out io.Writer, so scanOptions, o Options) ([]*node, error) {
	nodes, err := scan(ctx, a.root, so)
	if err != nil {
		return nil, err
	}
	head, err := manifestEntry(nodes, a.epoch)
	if err != nil {
		return nil, err
	}
	comp, err := newCompressor(out, o.Compression, o.Level, o.Threads)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(comp, 1<<20)
	tw := newTarWriter(bw)
	_, err = bw.Write(head)
	if err == nil {
		err = a.writeEntries(ctx, tw, func(i int) (*node, bool) {
			if i < len(nodes) {
				return nodes[i], true
			}
			return nil, false
		})
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := comp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return nodes, nil
}

// writeZstd archives the entries as the walk finds them, while their
// files are hashed, and has the zstd writer hold the compressed frames
// until the manifest is known.
func (a *archiver) writeZstd(ctx context.Context, out io.Writer, so scanOptions, level, threads int) ([]*node, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	z, err := newZstdWriter(out, level, threads, true)
	if err != nil {
		return nil, err
	}
	q := newNodeQueue()
	a.share, a.z = newHashShare(), z
	so.emit, so.share = q.push, a.share
	type scanned struct {
		nodes []*node
		err   error
	}
	done := make(chan scanned, 1)
	go func() {
		nodes, err := scan(ctx, a.root, so)
		var head []byte
		if err == nil {
			head, err = manifestEntry(nodes, a.epoch)
		}
		if err != nil {
			z.fail(err) // before the queue ends, so the data pass sees it
		} else {
			z.writeHead(head)
		}
		q.close()
		done <- scanned{nodes, err}
	}()
	tw := newTarWriter(z)
	err = a.writeEntries(ctx, tw, q.next)
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		cancel()
		z.fail(err)
	}
	s := <-done
	if cerr := z.Close(); err == nil {
		err = cerr
	}
	// A scan canceled because the data pass failed says nothing; any other
	// scan error is the cause of the data pass's, if it failed.
	if s.err != nil && (err == nil || !errors.Is(s.err, context.Canceled)) {
		return nil, s.err
	}
	if err != nil {
		return nil, err
	}
	return s.nodes, nil
}

// manifestEntry renders the manifest of nodes, mtimes clamped to epoch,
// as the archive's first tar entry, padding included.
func manifestEntry(nodes []*node, epoch *time.Time) ([]byte, error) {
	m := &Manifest{Entries: make([]Entry, len(nodes))}
	var newest time.Time
	for i, n := range nodes {
		e := n.Entry
		e.ModTime = clamp(e.ModTime, epoch)
		m.Entries[i] = e
		if e.ModTime.After(newest) {
			newest = e.ModTime
		}
	}
	if epoch != nil {
		newest = *epoch
	}
	mdata, err := m.MarshalText()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	tw := newTarWriter(&b)
	mh := &tarHeader{Name: "./" + ManifestName, Typeflag: typeReg, Mode: 0o444, Size: int64(len(mdata)), ModTime: newest}
	if err := tw.WriteHeader(mh); err != nil {
		return nil, err
	}
	if _, err := tw.Write(mdata); err != nil {
		return nil, err
	}
	if err := tw.flushPad(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeEntries writes the entries next returns, in order, until it
// reports no more.
func (a *archiver) writeEntries(ctx context.Context, tw *tarWriter, next func(int) (*node, bool)) error {
	var buf []byte // for writers that cannot read from a file themselves
	if _, ok := tw.w.(io.ReaderFrom); !ok {
		buf = make([]byte, 1<<20)
	}
	for i := 0; ; i++ {
		n, ok := next(i)
		if !ok {
			return nil
		}
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			a.report(fmt.Sprintf("archiving: %d entries", i))
		}
		if err := a.writeEntry(ctx, tw, n, buf); err != nil {
			return fmt.Errorf("archiving %s: %w", n.Path, err)
		}
		if n.Type == TypeFile {
			a.archivedBytes.Add(n.Size)
		}
	}
}

func (a *archiver) writeEntry(ctx context.Context, tw *tarWriter, n *node, buf []byte) error {
	mtime := clamp(n.ModTime, a.epoch)
	if n.Type == TypeFile && n.Size == 0 && a.share != nil && n.claim() {
		kind, sum, _ := newDigester(0).Sum()
		n.DigestKind, n.Digest = kind, sum
		a.share.done()
	}
	if n.Type != TypeFile || n.Size == 0 {
		return tw.WriteHeader(n.header(mtime, nil))
	}
	// The data pass hashes a file under a frame as it reads it. Its header
	// and data then span at most two frame boundaries: the writer must
	// have room for both frames, lest it wait for the manifest, which
	// would wait for this very file.
	var d *digester
	if a.share != nil && n.Size < zstdFrame && a.z.room() > 1 && n.claim() {
		d = newDigester(n.Size)
	}
	f, sparse, err := openData(a.root, n)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(n.header(mtime, sparse)); err != nil {
		return err
	}
	segs := sparse
	if segs == nil {
		segs = []segment{{0, n.Size}}
	}
	// A file of gigabytes takes minutes to compress with xz: Ctrl-C must
	// not wait for its end.
	r := fsutil.ContextReader(ctx, f)
	if d != nil {
		r = io.TeeReader(r, d)
	}
	var pos int64
	for _, s := range segs {
		if s.Off != pos {
			if _, err := f.Seek(s.Off, io.SeekStart); err != nil {
				return err
			}
			if d != nil {
				d.Hole(s.Off - pos)
			}
		}
		m, err := tw.copyFrom(r, s.Len, buf)
		if err != nil {
			return err
		}
		if m != s.Len {
			return ErrChanged
		}
		pos = s.Off + s.Len
	}
	if _, err := stillSame(f, n); err != nil {
		return err
	}
	if d != nil {
		d.Hole(n.Size - pos)
		kind, sum, ok := d.Sum()
		if !ok {
			return ErrChanged
		}
		n.DigestKind, n.Digest = kind, sum
		a.passHashed.Add(n.Size)
		a.share.done()
	}
	return nil
}

// nodeQueue hands the nodes the walk finds to the data pass, in order,
// without ever blocking the walk.
type nodeQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	nodes  []*node
	closed bool
}

func newNodeQueue() *nodeQueue {
	q := &nodeQueue{}
	q.cond.L = &q.mu
	return q
}

func (q *nodeQueue) push(n *node) {
	q.mu.Lock()
	q.nodes = append(q.nodes, n)
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *nodeQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// next waits for the i-th node; it reports false once the queue is closed
// with fewer.
func (q *nodeQueue) next(i int) (*node, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i >= len(q.nodes) && !q.closed {
		q.cond.Wait()
	}
	if i < len(q.nodes) {
		return q.nodes[i], true
	}
	return nil, false
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
	// The archive replaces a previous one, never a device, a directory or
	// a symlink's name.
	for _, p := range []string{path, SidecarPath(path)} {
		if fi, err := os.Lstat(p); err == nil && !fi.Mode().IsRegular() {
			return res, fmt.Errorf("%s is a %s, not an archive: refusing to replace it", p, fileKind(fi.Mode()))
		}
	}
	err := fsutil.WriteAtomic(path, 0o644, func(f *os.File) error {
		var err error
		res, err = Write(ctx, root, f, o)
		if err == nil {
			err = ctx.Err() // interrupted after the last entry: keep the old archive
		}
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

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeSymlink != 0:
		return "symlink"
	case m&os.ModeDevice != 0:
		return "device"
	case m&os.ModeNamedPipe != 0:
		return "fifo"
	case m&os.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}
