package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krgimage/krgimage/internal/fsutil"
)

type scanner struct {
	root  string
	dev   uint64
	o     scanOptions
	nodes []*node
	links map[[2]uint64]string
	files []*node
	bytes int64
	jobs  chan *node
	// workerHashed counts the files the workers hashed.
	workerHashed atomic.Int64
}

func scanTree(ctx context.Context, root string, o scanOptions) ([]*node, error) {
	var st unix.Stat_t
	if err := unix.Lstat(root, &st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: root, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("%s: not a directory", root)
	}
	// Files are hashed while the walk goes on: the walk is syscalls on one
	// thread, the hashing CPU on the others. When the work is shared with
	// a data pass, which follows the walk, the workers start once it is
	// over, from the last file back, until they meet the data pass.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &scanner{root: root, dev: st.Dev, o: o, links: map[[2]uint64]string{}, jobs: make(chan *node, 1024)}
	wait := s.startDigests(ctx, cancel)
	n, err := s.node(".", root, unix.AT_FDCWD, root, &st)
	if err == nil {
		s.add(n)
		err = s.walk(ctx, unix.AT_FDCWD, root, ".", root)
	}
	if err == nil && o.total != nil {
		o.total(len(s.files), s.bytes)
	}
	if err == nil && o.share != nil {
		err = s.feedBackward(ctx)
	}
	close(s.jobs)
	if err != nil {
		cancel()
		if derr := wait(); derr != nil && !errors.Is(derr, context.Canceled) {
			return nil, derr // the walk stopped because hashing failed
		}
		return nil, err
	}
	if err := wait(); err != nil {
		return nil, err
	}
	if o.share != nil {
		if err := s.waitShare(ctx); err != nil {
			return nil, err
		}
	}
	return s.nodes, nil
}

// feedBackward hands the files to the workers from the last one back,
// leaving out those the data pass has already claimed.
func (s *scanner) feedBackward(ctx context.Context) error {
	for i := len(s.files) - 1; i >= 0; i-- {
		n := s.files[i]
		if n.claimed.Load() {
			continue
		}
		select {
		case s.jobs <- n:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// waitShare waits until the data pass has hashed the files it claimed:
// the workers hashed all the others.
func (s *scanner) waitShare(ctx context.Context) error {
	for s.o.share.hashed.Load()+s.workerHashed.Load() < int64(len(s.files)) {
		select {
		case <-s.o.share.notify:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// walk lists the directory name in the directory at, which the walk has
// open: rel and abs are its path in the tree and on the host. Opening it
// from its parent's descriptor, never by its whole path, keeps the walk in
// the tree even if a live tree's directory becomes a symlink meanwhile.
func (s *scanner) walk(ctx context.Context, at int, name, rel, abs string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fd, err := unix.Openat(at, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if s.o.live && errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: abs, Err: err}
	}
	d := os.NewFile(uintptr(fd), abs)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("reading %s: %w", abs, err)
	}
	slices.Sort(names)
	for _, name := range names {
		var st unix.Stat_t
		err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if s.o.live && errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "lstat", Path: filepath.Join(abs, name), Err: err}
		}
		r, a := joinRel(rel, name), abs+"/"+name
		if rel == "." && name == ManifestName {
			if s.o.warnManifest {
				s.o.log.Warn("skipping a file named like the snapshot manifest", "path", a)
			}
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFSOCK {
			s.o.log.Warn("skipping socket", "path", a)
			continue
		}
		n, err := s.node(r, a, fd, name, &st)
		if s.o.live && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		s.add(n)
		if n.Type != TypeDir {
			continue
		}
		if st.Dev != s.dev {
			s.o.log.Warn("not descending into a mount point", "path", a)
			continue
		}
		if err := s.walk(ctx, fd, name, r, a); err != nil {
			return err
		}
	}
	return nil
}

func (s *scanner) add(n *node) {
	s.nodes = append(s.nodes, n)
	if s.o.emit != nil {
		s.o.emit(n)
	}
}

// node describes the entry name in the directory dirfd, at rel in the tree
// and abs on the host; st is its lstat.
func (s *scanner) node(rel, abs string, dirfd int, name string, st *unix.Stat_t) (*node, error) {
	n := &node{
		Entry: Entry{
			Path: rel, Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid,
			ModTime: time.Unix(st.Mtim.Unix()),
		},
		dev:   st.Dev,
		ino:   st.Ino,
		mtime: time.Unix(st.Mtim.Unix()),
		ctime: time.Unix(st.Ctim.Unix()),
	}
	ft := st.Mode & unix.S_IFMT
	var target string
	if ft == unix.S_IFLNK {
		t, err := readlinkat(dirfd, name)
		if err != nil {
			return nil, &os.PathError{Op: "readlink", Path: abs, Err: err}
		}
		target = t
	}
	if ft != unix.S_IFDIR && st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := s.links[key]; ok {
			n.Type, n.Link = TypeHardlink, first
			return n, nil
		}
		s.links[key] = rel
	}
	switch ft {
	case unix.S_IFDIR:
		n.Type = TypeDir
	case unix.S_IFREG:
		n.Type, n.Size = TypeFile, st.Size
		s.files = append(s.files, n)
		if s.o.share == nil {
			s.jobs <- n
		}
		s.bytes += st.Size
	case unix.S_IFLNK:
		n.Type, n.Link = TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		n.Type = TypeChar
		if ft == unix.S_IFBLK {
			n.Type = TypeBlock
		}
		n.DevMajor, n.DevMinor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFIFO:
		n.Type = TypeFifo
	default:
		return nil, fmt.Errorf("%s: unsupported file type %#o", abs, ft)
	}
	// By path: naming the entry through /proc/self/fd/N/name would be
	// immune to a directory renamed meanwhile, but costs 1-2 µs a call,
	// some percent of a snapshot. A live tree rearranged mid-walk can
	// therefore lend an entry another file's xattrs; its content cannot
	// (stillSame), nor its listing (walk).
	xs, err := listXattrs(abs)
	if err != nil {
		return nil, err
	}
	n.xattrs = xs
	n.Xattrs = xattrDigests(xs)
	return n, nil
}

// readlinkat returns the target of the symlink name in dirfd.
func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, b)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

// listXattrs reads every extended attribute of path, not following a
// symlink, sorted by name.
func listXattrs(path string) ([]xattr, error) {
	fxs, err := fsutil.Xattrs(path)
	if err != nil || len(fxs) == 0 {
		return nil, err
	}
	xs := make([]xattr, len(fxs))
	for i, x := range fxs {
		xs[i] = xattr{name: x.Name, value: x.Value}
	}
	return xs, nil
}

// startDigests hashes the files sent on s.jobs on o.threads goroutines.
// The returned function waits for them and reports the first error.
func (s *scanner) startDigests(ctx context.Context, cancel func()) func() error {
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, max(1, s.o.threads))
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for n := range s.jobs {
				if ctx.Err() != nil {
					continue // drain
				}
				if s.o.share != nil && !n.claim() {
					continue // the data pass has it
				}
				if s.o.beforeDigest != nil {
					s.o.beforeDigest(n)
				}
				err := digestFile(s.root, n, buf)
				if s.o.live && (errors.Is(err, ErrChanged) || errors.Is(err, fs.ErrNotExist)) {
					n.Changing, err = true, nil
				}
				if err != nil {
					errs[w] = err
					cancel()
					continue
				}
				d := done.Add(n.Size)
				f := s.workerHashed.Add(1)
				if s.o.progress != nil {
					s.o.progress(int(f), d)
				}
			}
		}()
	}
	return func() error {
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return ctx.Err()
	}
}

// openFile opens n for reading without following a symlink or touching
// its atime, and checks it is still the file the walk saw. It also
// returns the bytes allocated to the file, which dataSegments needs.
func openFile(root string, n *node) (*os.File, int64, error) {
	p := filepath.Join(root, n.Path)
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NOATIME
	fd, err := unix.Open(p, flags, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Open(p, flags&^unix.O_NOATIME, 0)
	}
	if err != nil {
		return nil, 0, &os.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	alloc, err := stillSame(f, n)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, alloc, nil
}

// stillSame checks that the open file f is still the file the walk saw,
// unwritten since: called once it is open, and again once it is read, as
// a write while it is read changes its mtime and ctime. It returns the
// bytes allocated to the file.
func stillSame(f *os.File, n *node) (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	if st.Dev != n.dev || st.Ino != n.ino || st.Size != n.Size || !time.Unix(st.Mtim.Unix()).Equal(n.mtime) || !time.Unix(st.Ctim.Unix()).Equal(n.ctime) {
		return 0, fmt.Errorf("%s: %w", f.Name(), ErrChanged)
	}
	return st.Blocks * 512, nil
}

// openData opens n for archiving and maps its data. sparse is nil for a
// file without holes and lists the data segments otherwise (empty, not
// nil, for a file that is all hole).
func openData(root string, n *node) (f *os.File, sparse []segment, err error) {
	f, alloc, err := openFile(root, n)
	if err != nil {
		return nil, nil, err
	}
	segs, holes, err := dataSegments(f, n.Size, alloc)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if holes {
		sparse = append([]segment{}, segs...)
	}
	return f, sparse, nil
}

func digestFile(root string, n *node, buf []byte) error {
	f, alloc, err := openFile(root, n)
	if err != nil {
		return err
	}
	defer f.Close()
	segs, _, err := dataSegments(f, n.Size, alloc)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	d := newDigester(n.Size)
	var pos int64
	for _, sg := range segs {
		d.Hole(sg.Off - pos)
		if sg.Off != pos {
			if _, err := f.Seek(sg.Off, io.SeekStart); err != nil {
				return err
			}
		}
		m, err := io.CopyBuffer(d, io.LimitReader(f, sg.Len), buf)
		if err != nil {
			return fmt.Errorf("reading %s: %w", f.Name(), err)
		}
		if m != sg.Len {
			return fmt.Errorf("%s: %w", f.Name(), ErrChanged)
		}
		pos = sg.Off + sg.Len
	}
	d.Hole(n.Size - pos)
	kind, sum, ok := d.Sum()
	if !ok {
		return fmt.Errorf("%s: %w", f.Name(), ErrChanged)
	}
	if _, err := stillSame(f, n); err != nil {
		return err
	}
	n.DigestKind, n.Digest = kind, sum
	return nil
}

// dataSegments maps a file's data with SEEK_DATA and SEEK_HOLE, and
// leaves the file offset at 0. A file without holes is one segment; asking
// costs two lseeks, so only files whose allocation (alloc bytes) is
// smaller than their size are asked.
func dataSegments(f *os.File, size, alloc int64) (segs []segment, holes bool, err error) {
	whole := []segment{{0, size}}
	if size == 0 {
		return nil, false, nil
	}
	if alloc >= size {
		return whole, false, nil
	}
	// The readers start at offset 0 unless they seek; probing moves it.
	defer func() {
		if _, serr := unix.Seek(int(f.Fd()), 0, io.SeekStart); serr != nil && err == nil {
			segs, holes, err = nil, false, serr
		}
	}()
	var off int64
	for off < size {
		data, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return whole, false, nil // the filesystem cannot tell
		}
		if err != nil {
			return nil, false, err
		}
		hole, err := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			return nil, false, err
		}
		hole = min(hole, size)
		if hole > data {
			segs = append(segs, segment{data, hole - data})
		}
		off = hole
	}
	if len(segs) == 1 && segs[0] == whole[0] {
		return whole, false, nil
	}
	return segs, true, nil
}
