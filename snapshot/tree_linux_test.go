package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The torture tree holds every kind of entry a root filesystem can have,
// built with plain syscalls and the real setfacl, so that the code under
// test has no say in what the tree is.

// sparseSize is the apparent size of the torture tree's sparse file.
const sparseSize = 1 << 30

var (
	longComponent = strings.Repeat("L", 200)
	nonUTF8       = "bad-\xff\xfe-name"
)

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// buildTorture creates the torture tree at dir (which must not exist).
// The root of the tree has odd metadata too.
func buildTorture(t testing.TB, dir string) {
	t.Helper()
	must(t, os.Mkdir(dir, 0o755))
	p := func(rel string) string { return filepath.Join(dir, rel) }
	// Raw modes: os.Chmod would drop 0o4000 and friends, which os.FileMode
	// spells differently.
	mkdir := func(rel string, mode uint32) {
		must(t, os.MkdirAll(p(rel), 0o755))
		must(t, unix.Chmod(p(rel), mode))
	}
	write := func(rel, content string, mode uint32) {
		must(t, os.WriteFile(p(rel), []byte(content), 0o600))
		must(t, unix.Chmod(p(rel), mode))
	}
	mkdir("empty", 0o755)
	mkdir("tmp", 0o1777)
	mkdir("setgid-dir", 0o2775)
	mkdir("d000", 0)
	mkdir("owned", 0o750)
	must(t, os.Chown(p("owned"), 4321, 8765))
	must(t, unix.Chmod(p("owned"), 0o750))
	mkdir("etc", 0o755)
	write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644)
	write("etc/shadow", "root:*:19000:0:99999:7:::\n", 0o640)
	must(t, os.Chown(p("etc/shadow"), 0, 42))
	write("f000", "no access", 0)
	write("setuid", "#!/bin/sh\n", 0o4755)
	write("setgid", "#!/bin/sh\n", 0o2755)
	// setuid on a file another user owns: a chown after the chmod would
	// clear it.
	write("setuid-alice", "#!/bin/sh\n", 0o600)
	must(t, os.Chown(p("setuid-alice"), 1234, 42))
	must(t, unix.Chmod(p("setuid-alice"), 0o6750))
	write("sticky-file", "", 0o1644)
	write("empty-file", "", 0o644)
	write("owned/alice", "alice's", 0o600)
	must(t, os.Chown(p("owned/alice"), 1234, 5678))
	write("with space\nand newline", "odd name", 0o644)
	write(nonUTF8, "not UTF-8", 0o644)
	write("ping", "\x7fELF pretend", 0o755)
	must(t, unix.Setxattr(p("ping"), "security.capability", capNetRaw, 0))
	write("xattrs", "has user xattrs", 0o644)
	must(t, unix.Setxattr(p("xattrs"), "user.text", []byte("hello"), 0))
	must(t, unix.Setxattr(p("xattrs"), "user.binary", []byte{0, 1, 2, 0xff, 0}, 0))
	must(t, unix.Setxattr(p("xattrs"), "user.empty", nil, 0))
	write("acl-file", "acl", 0o640)
	run(t, "setfacl", "-m", "u:1000:r-x,g:50:rw-", p("acl-file"))
	mkdir("acl-dir", 0o750)
	run(t, "setfacl", "-m", "u:1000:rwx", "-d", "-m", "u:1000:rwx,g:50:r-x", p("acl-dir"))
	write("acl-dir/child", "plain child", 0o644)
	// Hardlink groups, one across directories.
	mkdir("links/a", 0o755)
	mkdir("links/b", 0o755)
	write("links/a/one", "shared content", 0o640)
	must(t, os.Link(p("links/a/one"), p("links/a/two")))
	must(t, os.Link(p("links/a/one"), p("links/b/three")))
	write("links/b/x", "second group", 0o600)
	must(t, os.Link(p("links/b/x"), p("links/y")))
	// Symlinks: relative, absolute (into the image), dangling, odd target.
	must(t, os.Symlink("etc/passwd", p("rel-link")))
	must(t, os.Symlink("/etc/passwd", p("abs-link")))
	must(t, os.Symlink("does/not/exist", p("dangling")))
	must(t, os.Symlink(nonUTF8, p("link-to-bad")))
	must(t, os.Lchown(p("rel-link"), 1001, 1002))
	// Devices and a fifo.
	mkdir("dev", 0o755)
	must(t, unix.Mknod(p("dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(p("dev/loop0"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 0))))
	must(t, unix.Mknod(p("dev/big"), unix.S_IFCHR|0o600, int(unix.Mkdev(259, 70000))))
	must(t, os.Chown(p("dev/loop0"), 0, 6))
	must(t, unix.Mkfifo(p("fifo"), 0o620))
	// Long names: one 200-byte component, a path over 255 bytes.
	deep := filepath.Join("long", longComponent, longComponent)
	mkdir(deep, 0o755)
	write(filepath.Join(deep, longComponent), "deep", 0o644)
	must(t, os.Symlink(strings.Repeat("../", 2)+longComponent, p(filepath.Join(deep, "long-target"))))
	// A sparse file: 1 GiB, two data islands, ending in a hole.
	f, err := os.Create(p("sparse"))
	must(t, err)
	must(t, f.Truncate(sparseSize))
	_, err = f.WriteAt([]byte("start"), 0)
	must(t, err)
	_, err = f.WriteAt([]byte(strings.Repeat("middle", 1000)), sparseSize/2)
	must(t, err)
	must(t, f.Close())
	// A socket, which snapshots skip.
	l, err := net.Listen("unix", p("socket"))
	must(t, err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	// Nanosecond mtimes everywhere, directories last, the root included.
	i := int64(0)
	var dirs []string
	must(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, path)
			return nil
		}
		i++
		ts := unix.NsecToTimespec(time.Date(2023, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano() + i*1_000_000_123)
		return unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	}))
	slices.Reverse(dirs)
	for _, d := range dirs {
		i++
		ts := unix.NsecToTimespec(time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC).UnixNano() + i*777)
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, d, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	}
}

// fileState is what the test's own walker records of a path.
type fileState struct {
	typ    fs.FileMode
	mode   uint32
	uid    uint32
	gid    uint32
	size   int64
	mtime  int64
	rdev   uint64
	link   string
	xattrs map[string]string
	sum    string
	group  string // the other paths sharing the inode
}

func (s fileState) String() string {
	return fmt.Sprintf("%v %04o %d:%d size=%d mtime=%d rdev=%d link=%q xattrs=%v sum=%.12s links=%s",
		s.typ, s.mode, s.uid, s.gid, s.size, s.mtime, s.rdev, s.link, s.xattrs, s.sum, s.group)
}

// treeState walks dir with lstat, llistxattr, readlink and SHA-256, and
// no code from the package. Sockets and a top-level manifest (what tar
// tools extract) are left out; directory sizes mean nothing.
func treeState(t testing.TB, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	inodes := map[uint64][]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == ManifestName {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		s := fileState{typ: d.Type(), mode: st.Mode & 0o7777, uid: st.Uid, gid: st.Gid, mtime: st.Mtim.Nano()}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFSOCK:
			return nil
		case unix.S_IFREG:
			s.size = st.Size
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			s.sum = hex.EncodeToString(h.Sum(nil))
			if st.Nlink > 1 {
				inodes[st.Ino] = append(inodes[st.Ino], rel)
			}
		case unix.S_IFLNK:
			if s.link, err = os.Readlink(path); err != nil {
				return err
			}
		case unix.S_IFCHR, unix.S_IFBLK:
			s.rdev = st.Rdev
		}
		s.xattrs = map[string]string{}
		buf := make([]byte, 64<<10)
		n, err := unix.Llistxattr(path, buf)
		if err != nil {
			return err
		}
		for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
			if name == "" {
				continue
			}
			v := make([]byte, 64<<10)
			m, err := unix.Lgetxattr(path, name, v)
			if err != nil {
				return err
			}
			s.xattrs[name] = hex.EncodeToString(v[:m])
		}
		out[rel] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, paths := range inodes {
		for _, p := range paths {
			s := out[p]
			s.group = strings.Join(paths, ",")
			out[p] = s
		}
	}
	return out
}

// diffStates lists every difference between two tree states.
func diffStates(want, got map[string]fileState, ignore func(path string, w, g fileState) bool) []string {
	var diffs []string
	for _, p := range slices.Sorted(mapsKeysAny(want)) {
		g, ok := got[p]
		w := want[p]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("missing %q", p))
		case w.String() != g.String() && (ignore == nil || !ignore(p, w, g)):
			diffs = append(diffs, fmt.Sprintf("%q:\n  want %s\n  got  %s", p, w, g))
		}
	}
	for _, p := range slices.Sorted(mapsKeysAny(got)) {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %q", p))
		}
	}
	return diffs
}

func mapsKeysAny[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// checkSparse fails when the restored sparse file lost its holes.
func checkSparseFile(t testing.TB, path string) {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Stat(path, &st))
	if st.Size != sparseSize || st.Blocks*512 > 16<<20 {
		t.Errorf("%s: size %d, %d bytes allocated: the holes ballooned", path, st.Size, st.Blocks*512)
	}
}

func lutimes(path string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}
