package snapshot

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// extractor creates entries under the root. Every system call that
// creates or changes an entry names its last component only, relative to
// the descriptor of its parent, and never follows it: a symlink is created
// as a symlink, a file with O_EXCL|O_NOFOLLOW, a device with mknodat, and
// metadata is set through a descriptor or with AT_SYMLINK_NOFOLLOW. The
// parents are opened with openat2(2), resolved in the root through no
// symlink (restoreResolve), or one component at a time with O_NOFOLLOW
// where the kernel has no openat2. The reader has already refused paths
// through non-directories; this is the second lock on the same door.
type extractor struct {
	rootFD int
	// openat2 is set when the kernel resolves paths in the root itself.
	openat2 bool
	log     *slog.Logger
	dirs    map[string]int // open directory descriptors
	fifo    []string       // their eviction order
	// deferred holds the directories, whose metadata is applied last:
	// their children would change their mtime, and a default ACL set early
	// would leak into every child.
	deferred []*member
	deferIdx map[string]int
	buf      []byte
	chown    bool

	// Small files are written by goroutines, so that their system calls
	// run on every core while the main one decompresses and creates the
	// rest. A barrier waits for them before anything that depends on a
	// file they may still be writing: a hardlink, a replacement, closing
	// a directory descriptor, the final metadata pass.
	jobs    chan fileJob
	bufs    chan []byte
	pending sync.WaitGroup
	workers sync.WaitGroup
	mu      sync.Mutex
	werr    error
	closed  bool
}

// smallFile is the size up to which files are written by the goroutines.
const smallFile = 1 << 20

type fileJob struct {
	pfd  int
	base string
	m    *member
	data []byte
}

const maxOpenDirs = 128

// plainDir makes the directory at fd a plain 0755 one. A directory made
// under a parent with a default ACL inherits it, and so would everything
// restored into it: a group given rwx on the parent could read the
// image's /etc/shadow. The archive's own ACLs are set entry by entry, and
// its root entry, if any, sets the mode.
func plainDir(fd int) error {
	for _, name := range []string{xattrACLDefault, xattrACLAccess} {
		if err := unix.Fremovexattr(fd, name); err != nil && !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("removing the inherited %s: %w", name, err)
		}
	}
	return unix.Fchmod(fd, 0o755)
}

// newExtractor extracts into the empty directory dir. noOpenat2 makes it
// resolve paths as it does on kernels without openat2(2), for tests.
func newExtractor(dir string, log *slog.Logger, threads int, noOpenat2 bool) (*extractor, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	if err := plainDir(fd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	x := &extractor{
		rootFD: fd, openat2: !noOpenat2 && haveOpenat2(fd),
		log: log, dirs: map[string]int{}, deferIdx: map[string]int{},
		buf: make([]byte, 1<<20), chown: os.Geteuid() == 0,
		jobs: make(chan fileJob, 4*threads), bufs: make(chan []byte, 4*threads+1),
	}
	for range cap(x.bufs) {
		x.bufs <- make([]byte, smallFile)
	}
	for range max(1, threads) {
		x.workers.Add(1)
		go x.writer()
	}
	return x, nil
}

func (x *extractor) writer() {
	defer x.workers.Done()
	for j := range x.jobs {
		if x.err() == nil {
			if err := x.writeSmall(j); err != nil {
				x.mu.Lock()
				if x.werr == nil {
					x.werr = err
				}
				x.mu.Unlock()
			}
		}
		x.bufs <- j.data[:cap(j.data)]
		x.pending.Done()
	}
}

func (x *extractor) err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.werr
}

// barrier waits for the files queued so far and reports their first error.
func (x *extractor) barrier() error {
	x.pending.Wait()
	return x.err()
}

func (x *extractor) writeSmall(j fileJob) error {
	fd, err := unix.Openat(j.pfd, j.base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: j.m.rel, Err: err}
	}
	w := &fdWriter{fd: fd}
	if _, err := w.Write(j.data); err != nil {
		unix.Close(fd)
		return &os.PathError{Op: "write", Path: j.m.rel, Err: err}
	}
	if err := x.fileMeta(fd, j.m); err != nil {
		unix.Close(fd)
		return err
	}
	if err := unix.Close(fd); err != nil {
		return &os.PathError{Op: "close", Path: j.m.rel, Err: err}
	}
	return nil
}

func (x *extractor) close() {
	if !x.closed {
		x.closed = true
		close(x.jobs)
		x.workers.Wait()
	}
	for _, fd := range x.dirs {
		unix.Close(fd)
	}
	x.dirs = map[string]int{}
	unix.Close(x.rootFD)
}

// dirFD returns a descriptor of the directory rel, creating it (0755) when
// an entry's parent was not in the archive, as tar does. The descriptor
// keep, when not -1, is one the caller still needs: it stays open.
func (x *extractor) dirFD(rel string, keep int) (int, error) {
	if rel == "." {
		return x.rootFD, nil
	}
	if fd, ok := x.dirs[rel]; ok {
		return fd, nil
	}
	if !isCleanRel(rel) {
		return -1, fmt.Errorf("%w: %q is not a clean relative path", ErrUnsafePath, rel)
	}
	// With openat2 the kernel resolves the whole path from the root; the
	// fallback opens the last component from the parent's descriptor.
	at, name := x.rootFD, rel
	if !x.openat2 {
		pfd, err := x.dirFD(path.Dir(rel), keep)
		if err != nil {
			return -1, err
		}
		at, name = pfd, path.Base(rel)
	}
	fd, err := x.openDir(at, name)
	if errors.Is(err, unix.ENOENT) {
		// A cache hit in the fallback: at stays open.
		pfd, perr := x.dirFD(path.Dir(rel), keep)
		if perr != nil {
			return -1, perr
		}
		if err := unix.Mkdirat(pfd, path.Base(rel), 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, &os.PathError{Op: "mkdir", Path: rel, Err: err}
		}
		fd, err = x.openDir(at, name)
	}
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
		return -1, fmt.Errorf("%w: %s is not a directory inside the root", ErrUnsafePath, rel)
	}
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: rel, Err: err}
	}
	if err := x.cacheDir(rel, fd, keep); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// openDir opens the directory name below at, through no symlink: see
// restoreResolve.
func (x *extractor) openDir(at int, name string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW
	if x.openat2 {
		return openat2(at, name, flags, restoreResolve)
	}
	return unix.Openat(at, name, flags|unix.O_CLOEXEC, 0)
}

// cacheDir keeps fd as rel's descriptor, closing the oldest other than
// keep when too many are open.
func (x *extractor) cacheDir(rel string, fd, keep int) error {
	if len(x.fifo) >= maxOpenDirs {
		// A writer may still use the descriptor about to be closed.
		if err := x.barrier(); err != nil {
			return err
		}
		i := 0
		if x.dirs[x.fifo[0]] == keep {
			i = 1
		}
		old := x.fifo[i]
		x.fifo = slices.Delete(x.fifo, i, i+1)
		unix.Close(x.dirs[old])
		delete(x.dirs, old)
	}
	x.dirs[rel] = fd
	x.fifo = append(x.fifo, rel)
	return nil
}

// parent returns the descriptor of rel's directory and rel's last
// component; keep is as for dirFD.
func (x *extractor) parent(rel string, keep int) (int, string, error) {
	if rel == "." || !isCleanRel(rel) {
		return -1, "", fmt.Errorf("%w: %q is not a clean relative path", ErrUnsafePath, rel)
	}
	fd, err := x.dirFD(path.Dir(rel), keep)
	return fd, path.Base(rel), err
}

func (x *extractor) extract(m *member) error {
	if err := x.err(); err != nil {
		return err
	}
	e := m.entry
	if e.Type == TypeDir {
		if m.rel != "." {
			pfd, base, err := x.parent(m.rel, -1)
			if err != nil {
				return err
			}
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
				return &os.PathError{Op: "mkdir", Path: m.rel, Err: err}
			}
		}
		if i, ok := x.deferIdx[m.rel]; ok {
			x.deferred[i] = m
		} else {
			x.deferIdx[m.rel] = len(x.deferred)
			x.deferred = append(x.deferred, m)
		}
		return nil
	}
	pfd, base, err := x.parent(m.rel, -1)
	if err != nil {
		return err
	}
	if m.replace || e.Type == TypeHardlink {
		// The file replaced or linked to may still be being written.
		if err := x.barrier(); err != nil {
			return err
		}
	}
	if m.replace {
		if err := unix.Unlinkat(pfd, base, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return &os.PathError{Op: "unlink", Path: m.rel, Err: err}
		}
	}
	switch e.Type {
	case TypeFile:
		if m.hdr.Sparse == nil && e.Size <= smallFile {
			data := (<-x.bufs)[:e.Size]
			err := m.content.each(func(_ int64, r io.Reader) error {
				_, err := io.ReadFull(r, data)
				return err
			})
			if err != nil {
				x.bufs <- data
				return fmt.Errorf("reading %s: %w", m.rel, err)
			}
			x.pending.Add(1)
			x.jobs <- fileJob{pfd: pfd, base: base, m: m, data: data}
			return nil
		}
		return x.file(pfd, base, m)
	case TypeHardlink:
		// The target's name is resolved in the root too, and opening its
		// directory must not close pfd.
		tfd, tbase, err := x.parent(e.Link, pfd)
		if err != nil {
			return err
		}
		// Flags 0: link the entry itself, even a symlink, never its target.
		if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
			return &os.LinkError{Op: "link", Old: e.Link, New: m.rel, Err: err}
		}
		return nil
	case TypeSymlink:
		if err := unix.Symlinkat(e.Link, pfd, base); err != nil {
			return &os.LinkError{Op: "symlink", Old: e.Link, New: m.rel, Err: err}
		}
	case TypeChar, TypeBlock, TypeFifo:
		mode := uint32(unix.S_IFIFO)
		switch e.Type {
		case TypeChar:
			mode = unix.S_IFCHR
		case TypeBlock:
			mode = unix.S_IFBLK
		}
		if err := unix.Mknodat(pfd, base, mode|0o600, int(unix.Mkdev(e.DevMajor, e.DevMinor))); err != nil {
			return &os.PathError{Op: "mknod", Path: m.rel, Err: err}
		}
	}
	return x.meta(pfd, base, m)
}

// file writes a regular file and its metadata through its descriptor.
func (x *extractor) file(pfd int, base string, m *member) error {
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: m.rel, Err: err}
	}
	f := os.NewFile(uintptr(fd), m.rel)
	defer f.Close()
	w := &fdWriter{fd: fd}
	err = m.content.each(func(off int64, r io.Reader) error {
		w.off = off
		_, err := io.CopyBuffer(w, r, x.buf)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", m.rel, err)
	}
	if m.hdr.Sparse != nil {
		// The last hole: extend without writing.
		if err := unix.Ftruncate(fd, m.entry.Size); err != nil {
			return &os.PathError{Op: "truncate", Path: m.rel, Err: err}
		}
	}
	if err := x.fileMeta(fd, m); err != nil {
		return err
	}
	return f.Close()
}

// fileMeta applies a regular file's or a directory's owner, mode, xattrs
// and times, in that order, through its descriptor.
func (x *extractor) fileMeta(fd int, m *member) error {
	e := m.entry
	if x.chown {
		if err := unix.Fchown(fd, int(e.UID), int(e.GID)); err != nil {
			return &os.PathError{Op: "chown", Path: m.rel, Err: err}
		}
	}
	// After chown, which clears setuid and setgid.
	if err := unix.Fchmod(fd, e.Mode); err != nil {
		return &os.PathError{Op: "chmod", Path: m.rel, Err: err}
	}
	// After chown too, which clears security.capability.
	for _, xa := range m.xattrs {
		if err := unix.Fsetxattr(fd, xa.name, xa.value, 0); err != nil {
			return &os.PathError{Op: "setxattr " + xa.name, Path: m.rel, Err: err}
		}
	}
	if err := futimens(fd, e.ModTime); err != nil {
		return &os.PathError{Op: "utimes", Path: m.rel, Err: err}
	}
	return nil
}

// fdWriter writes at an offset with pwrite, leaving holes where nothing
// is written.
type fdWriter struct {
	fd  int
	off int64
}

func (w *fdWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := unix.Pwrite(w.fd, p[n:], w.off)
		if err != nil {
			return n, err
		}
		n += k
		w.off += int64(k)
	}
	return n, nil
}

// meta applies owner, mode, xattrs and times, in that order, to the
// non-directory base in pfd, never following it if it is a symlink.
func (x *extractor) meta(pfd int, base string, m *member) error {
	e := m.entry
	if x.chown {
		if err := unix.Fchownat(pfd, base, int(e.UID), int(e.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "chown", Path: m.rel, Err: err}
		}
	}
	if e.Type != TypeSymlink {
		// fchmodat follows symlinks, but base is the device or fifo just
		// created, in a directory only this process writes to.
		if err := unix.Fchmodat(pfd, base, e.Mode, 0); err != nil {
			return &os.PathError{Op: "chmod", Path: m.rel, Err: err}
		}
	}
	if len(m.xattrs) > 0 {
		// No f*xattr call works on a symlink, a device or a fifo: name it
		// through the directory's descriptor, without following it.
		p := "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + base
		for _, xa := range m.xattrs {
			if err := unix.Lsetxattr(p, xa.name, xa.value, 0); err != nil {
				return &os.PathError{Op: "setxattr " + xa.name, Path: m.rel, Err: err}
			}
		}
	}
	if err := unix.UtimesNanoAt(pfd, base, timespecs(e.ModTime), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: m.rel, Err: err}
	}
	return nil
}

// finish applies the directories' metadata, deepest last-created first,
// and syncs the filesystem when asked.
func (x *extractor) finish(sync bool) error {
	if err := x.barrier(); err != nil {
		return err
	}
	for i := len(x.deferred) - 1; i >= 0; i-- {
		m := x.deferred[i]
		fd, err := x.dirFD(m.rel, -1)
		if err != nil {
			return err
		}
		if err := x.fileMeta(fd, m); err != nil {
			return err
		}
	}
	if sync {
		if err := unix.Syncfs(x.rootFD); err != nil {
			return fmt.Errorf("syncing: %w", err)
		}
	}
	return nil
}

// timespecs sets atime to mtime: archives keep no atime worth restoring.
func timespecs(t time.Time) []unix.Timespec {
	ts := unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
	return []unix.Timespec{ts, ts}
}

// futimens is utimensat(fd, NULL, ...), which x/sys does not offer.
func futimens(fd int, t time.Time) error {
	ts := timespecs(t)
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
