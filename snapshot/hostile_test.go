package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/golden"

	"github.com/klauspost/compress/zstd"
)

// absCanary is where the absolute-path archives aim. It must never exist.
const absCanary = "/tmp/krgimage-hostile-canary"

// hostile lists the corpus in testdata/hostile and the error each archive
// must be refused with, or nil for one that must restore confined: its
// symlinks, wherever they point, restored verbatim and never followed.
// Every archive is aimed at ../canary, a file next to the restore target,
// at ../outside/, a directory there, or at absCanary.
var hostile = map[string]error{
	"dotdot.tar":                   ErrUnsafePath,
	"dotdot-middle.tar":            ErrUnsafePath,
	"absolute.tar":                 ErrUnsafePath,
	"symlink-abs-then-file.tar":    ErrUnsafePath,
	"symlink-then-file.tar":        ErrUnsafePath,
	"symlink-root-then-file.tar":   ErrUnsafePath,
	"symlink-up-then-file.tar":     ErrUnsafePath,
	"symlink-inside-then-file.tar": ErrUnsafePath,
	"symlink-then-dir.tar":         ErrUnsafePath,
	"symlink-then-device.tar":      ErrUnsafePath,
	"symlink-then-hardlink.tar":    ErrUnsafePath,
	"hardlink-through-symlink.tar": ErrUnsafePath,
	"symlink-escape.tar":           nil,
	"symlink-escape-deep.tar":      nil,
	"symlinks-anywhere.tar":        nil,
	"symlinks-replaced.tar":        nil,
	"hardlink-outside.tar":         ErrUnsafePath,
	"hardlink-absolute.tar":        ErrUnsafePath,
	"hardlink-missing.tar":         ErrUnsafePath,
	"hardlink-to-dir.tar":          ErrUnsafePath,
	"device-in-path.tar":           ErrUnsafePath,
	"fifo-in-path.tar":             ErrUnsafePath,
	"dir-then-symlink.tar":         ErrUnsafePath,
	"file-then-dir.tar":            ErrUnsafePath,
	"root-symlink.tar":             ErrUnsafePath,
	"symlink-through-symlink.tar":  nil,
	"symlink-through-dot.tar":      nil,
	"hardlink-target-replaced.tar": ErrUnsafePath,
	"hardlink-moves-symlink.tar":   nil,
	"huge-size.tar":                ErrCorrupt,
	"huge-pax-header.tar":          ErrCorrupt,
	"huge-longname.tar":            ErrCorrupt,
	"huge-sparse.tar":              ErrCorrupt,
	"sparse-map-overlap.tar":       ErrCorrupt,
	"negative-size.tar":            ErrCorrupt,
	"bad-checksum.tar":             ErrCorrupt,
	"truncated-data.tar":           ErrCorrupt,
	"truncated-at-entry.tar":       ErrCorrupt,
	"truncated.tar.zst":            ErrCorrupt,
	"garbage.tar.zst":              ErrCorrupt,
	"manifest-lies.tar":            ErrCorrupt,
	"manifest-missing-entry.tar":   ErrCorrupt,
}

type hostileEntry struct {
	name, link string
	typ        byte
	data       string
	pax        map[string]string
	sparse     []segment
	size       int64
}

// hostileTar writes entries with krgimage's own writer, which checks
// nothing about names: that is the reader's job.
func hostileTar(t testing.TB, entries ...hostileEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := newTarWriter(&b)
	for _, e := range entries {
		h := &tarHeader{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, ModTime: time.Unix(1700000000, 0), PAX: e.pax, Sparse: e.sparse}
		h.Size = int64(len(e.data))
		if e.size != 0 {
			h.Size = e.size
		}
		if e.typ == typeChar {
			h.Devmajor, h.Devminor = 1, 3
		}
		must(t, tw.WriteHeader(h))
		if e.data != "" {
			_, err := tw.Write([]byte(e.data))
			must(t, err)
		}
	}
	must(t, tw.Close())
	return b.Bytes()
}

func manifestFor(t testing.TB, lines ...string) hostileEntry {
	return hostileEntry{name: "./" + ManifestName, typ: typeReg, data: manifestMagic + "\n" + strings.Join(lines, "\n") + "\n"}
}

func genHostile(t testing.TB) map[string][]byte {
	file := func(name, data string) hostileEntry { return hostileEntry{name: name, typ: typeReg, data: data} }
	dir := func(name string) hostileEntry { return hostileEntry{name: name, typ: typeDir} }
	sym := func(name, target string) hostileEntry {
		return hostileEntry{name: name, typ: typeSymlink, link: target}
	}
	hard := func(name, target string) hostileEntry { return hostileEntry{name: name, typ: typeLink, link: target} }
	valid := hostileTar(t, dir("./"), dir("./etc/"), file("./etc/hostname", "node1\n"), file("./etc/motd", strings.Repeat("welcome\n", 200)))
	out := map[string][]byte{
		"dotdot.tar":                hostileTar(t, file("../canary", "pwned")),
		"dotdot-middle.tar":         hostileTar(t, dir("a/"), file("a/../../canary", "pwned")),
		"absolute.tar":              hostileTar(t, file(absCanary, "pwned")),
		"symlink-abs-then-file.tar": hostileTar(t, sym("lnk", "/tmp"), file("lnk/krgimage-hostile-canary", "pwned")),
		"symlink-then-file.tar":     hostileTar(t, sym("up", "."), dir("d/"), sym("d/up", ".."), file("d/up/x", "through a symlink")),
		// Resolved in the root, as RESOLVE_IN_ROOT does, these would land
		// in ROOT/tmp/krgimage-hostile-canary; restore never writes through
		// a symlink it created (see newMember). Followed from the host,
		// they would create absCanary.
		"symlink-root-then-file.tar":   hostileTar(t, sym("a", "/"), file("a/tmp/krgimage-hostile-canary", "pwned")),
		"symlink-up-then-file.tar":     hostileTar(t, sym("a", strings.Repeat("../", 40)), file("a/tmp/krgimage-hostile-canary", "pwned")),
		"symlink-inside-then-file.tar": hostileTar(t, dir("d/"), sym("l", "d"), file("l/x", "through a symlink inside")),
		"symlink-then-dir.tar":         hostileTar(t, sym("a", "/tmp"), dir("a/krgimage-hostile-canary/")),
		"symlink-then-device.tar":      hostileTar(t, sym("a", "/tmp"), hostileEntry{name: "a/krgimage-hostile-canary", typ: typeChar}),
		"symlink-then-hardlink.tar":    hostileTar(t, file("f", "pwned"), sym("a", "/tmp"), hard("a/krgimage-hostile-canary", "f")),
		"hardlink-through-symlink.tar": hostileTar(t, file("f", "x"), sym("a", "."), hard("h", "a/f")),
		// What /usr/lib/x86_64-linux-gnu holds and more: targets above the
		// root, absolute, dangling, ".." after a name, a hardlink to one.
		"symlinks-anywhere.tar": hostileTar(t, dir("./"), dir("d/"),
			sym("up", "../canary"), sym("d/outside", "../../outside/file"), sym("abs", absCanary),
			sym("slash", "/"), sym("dotdot", ".."), sym("far", strings.Repeat("../", 40)+"tmp/krgimage-hostile-canary"),
			sym("dangling", "../nowhere"), sym("d/named", "x/../../../canary"), hard("d/h", "up"), hard("h2", "d/outside")),
		// Each later entry replaces the symlink, never what it points to.
		"symlinks-replaced.tar": hostileTar(t, sym("f", "../canary"), file("f", "pwned"),
			sym("abs", absCanary), file("abs", "pwned"), sym("p", "../outside/file"), hostileEntry{name: "p", typ: typeFifo},
			sym("c", "../outside/file"), hostileEntry{name: "c", typ: typeChar}, file("g", "x"), sym("l", "../canary"), hard("l", "g")),
		"symlink-escape.tar":      hostileTar(t, sym("evil", "../canary")),
		"symlink-escape-deep.tar": hostileTar(t, dir("a/"), dir("a/b/"), sym("a/b/evil", "../../../canary")),
		"hardlink-outside.tar":    hostileTar(t, hard("h", "../canary")),
		"hardlink-absolute.tar":   hostileTar(t, hard("h", absCanary)),
		"hardlink-missing.tar":    hostileTar(t, hard("h", "not-in-the-archive")),
		"hardlink-to-dir.tar":     hostileTar(t, dir("d/"), hard("h", "d")),
		"device-in-path.tar":      hostileTar(t, hostileEntry{name: "dev", typ: typeChar}, file("dev/x", "under a device")),
		"fifo-in-path.tar":        hostileTar(t, hostileEntry{name: "p", typ: typeFifo}, file("p/x", "under a fifo")),
		"dir-then-symlink.tar":    hostileTar(t, dir("d/"), sym("d", "/tmp"), file("d/krgimage-hostile-canary", "pwned")),
		"file-then-dir.tar":       hostileTar(t, file("f", "x"), dir("f/")),
		"root-symlink.tar":        hostileTar(t, sym("./", "/tmp")),
		// Each target reads as inside the root, but the kernel follows
		// d/up or l before the "..".
		"symlink-through-symlink.tar": hostileTar(t, dir("d/"), sym("d/up", ".."), sym("x", "d/up/../canary")),
		"symlink-through-dot.tar":     hostileTar(t, sym("x", "l/../canary"), sym("l", ".")),
		// ../../canary stays inside from a/b, not from the root.
		"hardlink-moves-symlink.tar": hostileTar(t, dir("a/"), dir("a/b/"), sym("a/b/s", "../../canary"), hard("h", "a/b/s")),
		// h keeps the first f, which the manifest does not describe.
		"hardlink-target-replaced.tar": hostileTar(t, manifestFor(t,
			". type=dir mode=0644 uid=0 gid=0 time=1700000000.000000000",
			"f type=file mode=0644 uid=0 gid=0 size=4 sha256="+sha256hex("good")+" time=1700000000.000000000",
			"h type=hardlink link=f"),
			dir("./"), file("f", "EVIL"), hard("h", "f"), file("f", "good")),
		"huge-sparse.tar": hostileTar(t, hostileEntry{name: "s", typ: typeReg, size: 1 << 62, data: "end",
			sparse: []segment{{1<<62 - 3, 3}}}),
		"manifest-lies.tar": hostileTar(t, manifestFor(t,
			". type=dir mode=0644 uid=0 gid=0 time=1700000000.000000000",
			"f type=file mode=0644 uid=0 gid=0 size=5 sha256="+sha256hex("right")+" time=1700000000.000000000"),
			dir("./"), file("./f", "wrong")),
		"manifest-missing-entry.tar": hostileTar(t, manifestFor(t,
			". type=dir mode=0644 uid=0 gid=0 time=1700000000.000000000",
			"f type=file mode=0644 uid=0 gid=0 size=1 sha256="+sha256hex("x")+" time=1700000000.000000000",
			"g type=file mode=0644 uid=0 gid=0 size=1 sha256="+sha256hex("y")+" time=1700000000.000000000"),
			dir("./"), file("./f", "x")),
	}
	// Raw corruption of otherwise valid archives.
	patch := func(b []byte, off int, s string) []byte {
		b = slices.Clone(b)
		copy(b[off:], s)
		return b
	}
	fixSum := func(b []byte, hdr int) {
		copy(b[hdr+148:hdr+156], "        ")
		var sum int
		for _, c := range b[hdr : hdr+blockSize] {
			sum += int(c)
		}
		copy(b[hdr+148:], fmt.Sprintf("%06o\x00 ", sum))
	}
	huge := patch(valid, 2*blockSize+124, "77777777777\x00") // ./etc/hostname's size
	fixSum(huge, 2*blockSize)
	out["huge-size.tar"] = huge
	neg := patch(valid, 2*blockSize+124, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")
	fixSum(neg, 2*blockSize)
	out["negative-size.tar"] = neg
	out["bad-checksum.tar"] = patch(valid, 2*blockSize+10, "X")
	out["truncated-data.tar"] = valid[:3*blockSize+3]
	out["truncated-at-entry.tar"] = valid[:4*blockSize]
	pax := hostileTar(t, hostileEntry{name: "x", typ: typeReg, data: "x", pax: map[string]string{"comment": "c"}})
	bigPax := patch(pax, 124, "00010000000\x00") // the 'x' header claims 2 MiB
	fixSum(bigPax, 0)
	out["huge-pax-header.tar"] = bigPax
	long := hostileTar(t, hostileEntry{name: "././@LongLink", typ: typeLongN, data: "x"})
	long = patch(long, 124, "00010000000\x00")
	fixSum(long, 0)
	out["huge-longname.tar"] = long
	sp := hostileTar(t, hostileEntry{name: "s", typ: typeReg, size: 100, data: "aaaabbbb", sparse: []segment{{0, 4}, {2, 4}}})
	out["sparse-map-overlap.tar"] = sp
	enc, _ := zstd.NewWriter(nil)
	z := enc.EncodeAll(valid, nil)
	out["truncated.tar.zst"] = z[:len(z)/2]
	g := slices.Clone(z)
	g[len(g)/2] ^= 0xff
	out["garbage.tar.zst"] = g
	return out
}

func sha256hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestHostileArchives(t *testing.T) {
	requireRoot(t) // device entries need mknod
	dir := filepath.Join("testdata", "hostile")
	if golden.Update() {
		must(t, os.RemoveAll(dir))
		must(t, os.MkdirAll(dir, 0o755))
		for name, b := range genHostile(t) {
			must(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
		}
	}
	files, err := os.ReadDir(dir)
	must(t, err)
	if len(files) != len(hostile) {
		t.Errorf("%d archives in %s, %d in the table: run go test -run TestHostileArchives -update", len(files), dir, len(hostile))
	}
	os.Remove(absCanary)
	for _, f := range files {
		want, ok := hostile[f.Name()]
		if !ok {
			t.Errorf("%s: not in the table", f.Name())
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, f.Name()))
		must(t, err)
		for _, noOpenat2 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/noOpenat2=%v", f.Name(), noOpenat2), func(t *testing.T) {
				base := t.TempDir()
				before := plantCanaries(t, base)
				root := filepath.Join(base, "root")
				_, err := Restore(t.Context(), filepath.Join(dir, f.Name()), root, RestoreOptions{NoSync: true, noOpenat2: noOpenat2})
				switch {
				case want == nil && err != nil:
					t.Fatalf("Restore() = %v, want it to succeed, confined", err)
				case want != nil && err == nil:
					t.Fatal("Restore() succeeded")
				case want != nil && !errors.Is(err, want):
					t.Fatalf("Restore() = %v, want %v", err, want)
				}
				if err != nil {
					t.Log(err)
				}
				checkCanaries(t, base, before, err == nil)
				if err == nil {
					checkRestoredTree(t, data, root)
				}
			})
		}
	}
}

// plantCanaries fills base, where root will be restored, with what a
// hostile archive aims at: the file canary and the directory outside. It
// returns their state.
func plantCanaries(t testing.TB, base string) map[string]string {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(base, "canary"), []byte("canary"), 0o644))
	must(t, os.MkdirAll(filepath.Join(base, "outside", "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(base, "outside", "file"), []byte("outside"), 0o644))
	must(t, os.Symlink("../canary", filepath.Join(base, "outside", "link")))
	old := time.Unix(1600000000, 0)
	for _, p := range []string{"canary", "outside/file", "outside/sub", "outside"} {
		must(t, os.Chtimes(filepath.Join(base, p), old, old))
	}
	return outsideState(t, base)
}

// outsideState records every path in base but the restore target and
// its staging directories: type, mode, owner, size, mtime, content and
// target, without following a symlink.
func outsideState(t testing.TB, base string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		if rel == "." {
			return nil
		}
		if rel == "root" || strings.HasPrefix(rel, ".root.restore-") {
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		s := fmt.Sprintf("%v uid=%d gid=%d size=%d mtime=%d", fi.Mode(), st.Uid, st.Gid, fi.Size(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s += fmt.Sprintf(" content=%q", b)
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			s += " link=" + l
		}
		out[rel] = s
		return nil
	})
	must(t, err)
	return out
}

// checkCanaries fails when anything outside the restore target changed:
// the canaries next to it, absCanary, or what is left beside it (the
// target alone after a restore, nothing after a failed one).
func checkCanaries(t testing.TB, base string, before map[string]string, restored bool) {
	t.Helper()
	after := outsideState(t, base)
	for p, s := range before {
		if after[p] != s {
			t.Errorf("%s changed:\n  before %s\n  after  %s", p, s, after[p])
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s appeared next to the root", p)
		}
	}
	_, err := os.Lstat(filepath.Join(base, "root"))
	if restored != (err == nil) {
		t.Errorf("restored %v, but the root: %v", restored, err)
	}
	if left, _ := filepath.Glob(filepath.Join(base, ".root.restore-*")); len(left) > 0 {
		t.Errorf("staging left behind: %v", left)
	}
	if _, err := os.Lstat(absCanary); !isNotExist(err) {
		os.Remove(absCanary)
		t.Errorf("%s was created", absCanary)
	}
}

// checkRestoredTree fails unless the tree at root is exactly the entries
// of the archive data, each at its own path: every parent a directory
// (so resolving the path in the root, by any rule, lands on the entry),
// every symlink's target verbatim, every hardlink the inode of its
// target, and nothing else in the tree but the parents of entries.
func checkRestoredTree(t testing.TB, data []byte, root string) {
	t.Helper()
	rr, err := readArchive(context.Background(), bytes.NewReader(data), readOptions{threads: 1, noDigest: true}, func(*member) error { return nil })
	if err != nil {
		t.Fatalf("reading the archive again: %v", err)
	}
	need := map[string]bool{".": true}
	for _, e := range rr.entries {
		for p := e.Path; p != "."; p = filepath.Dir(p) {
			need[p] = true
		}
		checkEntry(t, root, e)
	}
	err = filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if !need[rel] {
			t.Errorf("%s: in the tree, not in the archive", rel)
		}
		return nil
	})
	must(t, err)
}

func checkEntry(t testing.TB, root string, e Entry) {
	t.Helper()
	for p := filepath.Dir(e.Path); p != "."; p = filepath.Dir(p) {
		if fi, err := os.Lstat(filepath.Join(root, p)); err != nil || !fi.IsDir() {
			t.Errorf("%s: its parent %s is not a directory: %v", e.Path, p, err)
			return
		}
	}
	fi, err := os.Lstat(filepath.Join(root, e.Path))
	if err != nil {
		t.Errorf("%s: %v", e.Path, err)
		return
	}
	want := map[Type]os.FileMode{TypeDir: os.ModeDir, TypeFile: 0, TypeSymlink: os.ModeSymlink,
		TypeChar: os.ModeDevice | os.ModeCharDevice, TypeBlock: os.ModeDevice, TypeFifo: os.ModeNamedPipe}
	switch e.Type {
	case TypeHardlink:
		ti, err := os.Lstat(filepath.Join(root, e.Link))
		if err != nil || !os.SameFile(fi, ti) {
			t.Errorf("%s: not a hardlink to %s", e.Path, e.Link)
		}
	case TypeSymlink:
		if l, err := os.Readlink(filepath.Join(root, e.Path)); err != nil || l != e.Link {
			t.Errorf("%s: symlink to %q, want %q (%v)", e.Path, l, e.Link, err)
		}
	default:
		if fi.Mode().Type() != want[e.Type] {
			t.Errorf("%s: a %v, want a %s", e.Path, fi.Mode().Type(), e.Type)
		}
	}
}

// TestRestoreCanceled: a canceled restore fails and changes nothing, not
// even a target it was told to replace.
func TestRestoreCanceled(t *testing.T) {
	base := t.TempDir()
	archive := filepath.Join(base, "a.tar")
	must(t, os.WriteFile(archive, hostileTar(t, hostileEntry{name: "./", typ: typeDir}, hostileEntry{name: "./new", typ: typeReg, data: "new"}), 0o644))
	root := filepath.Join(base, "root")
	must(t, os.MkdirAll(root, 0o755))
	must(t, os.WriteFile(filepath.Join(root, "old"), []byte("old"), 0o644))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Restore(ctx, archive, root, RestoreOptions{NoSync: true, Force: true}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Restore() = %v, want context.Canceled", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "old")); err != nil || string(b) != "old" {
		t.Errorf("the target changed: %q, %v", b, err)
	}
	if left, _ := os.ReadDir(base); len(left) != 2 {
		t.Errorf("left next to the root: %v", left)
	}
}

// TestWriteFileRefusesSpecial: a snapshot replaces a previous archive,
// never a device, a fifo, a directory or a symlink at its path.
func TestWriteFileRefusesSpecial(t *testing.T) {
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	dir := t.TempDir()
	target := filepath.Join(dir, "target.tar.zst")
	must(t, os.WriteFile(target, []byte("keep"), 0o644))
	must(t, os.Symlink(target, filepath.Join(dir, "link.tar.zst")))
	must(t, os.Mkdir(filepath.Join(dir, "dir.tar.zst"), 0o755))
	must(t, syscall.Mkfifo(filepath.Join(dir, "fifo.tar.zst"), 0o644))
	for _, name := range []string{"link.tar.zst", "dir.tar.zst", "fifo.tar.zst"} {
		p := filepath.Join(dir, name)
		before, _ := os.Lstat(p)
		if _, err := WriteFile(t.Context(), src, p, Options{}); err == nil {
			t.Errorf("%s: WriteFile succeeded", name)
		}
		if after, err := os.Lstat(p); err != nil || after.Mode() != before.Mode() {
			t.Errorf("%s: replaced", name)
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("the symlink's target changed: %q", b)
	}
	if _, err := WriteFile(t.Context(), src, filepath.Join(dir, "ok.tar.zst"), Options{}); err != nil {
		t.Errorf("a new archive: %v", err)
	}
}

// TestHostileArchivesReader is the first lock alone: the reader, before
// any extractor sees an entry, refuses every archive of the corpus that
// restore must refuse as unsafe, and reads those restored confined.
func TestHostileArchivesReader(t *testing.T) {
	archives := genHostile(t)
	for _, name := range slices.Sorted(maps.Keys(archives)) {
		want := hostile[name]
		if want != nil && !errors.Is(want, ErrUnsafePath) {
			continue
		}
		_, err := readArchive(t.Context(), bytes.NewReader(archives[name]), readOptions{threads: 1}, func(*member) error { return nil })
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("%s: readArchive() = %v, want %v", name, err, want)
		}
	}
}
