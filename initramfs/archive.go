package initramfs

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/cavaliergopher/cpio"
)

// Archive is the content of an initramfs, written as a cpio "newc"
// archive. Everything is held in memory (an initramfs is a few MiB) so that
// the output depends only on the content: entries sorted, parents before
// children, uid and gid 0, inode numbers assigned in order, times clamped.
type Archive struct {
	entries map[string]*entry
}

type entryKind int

const (
	kindDir entryKind = iota
	kindFile
	kindSymlink
)

type entry struct {
	kind  entryKind
	perm  uint32 // permission and setuid/setgid/sticky bits
	data  []byte
	link  string    // symlink target
	group string    // regular files: the path whose data this one shares
	mtime time.Time // zero: the build time
}

// NewArchive returns an empty archive.
func NewArchive() *Archive { return &Archive{entries: map[string]*entry{}} }

func clean(p string) (string, error) {
	c := path.Clean("/" + p)
	if c == "/" {
		return "", fmt.Errorf("initramfs: empty path %q", p)
	}
	return c[1:], nil
}

func (a *Archive) put(p string, e *entry) error {
	c, err := clean(p)
	if err != nil {
		return err
	}
	if old, ok := a.entries[c]; ok && old.kind == kindDir && e.kind != kindDir {
		return fmt.Errorf("initramfs: %s is a directory", c)
	}
	for dir := path.Dir(c); dir != "."; dir = path.Dir(dir) {
		if d, ok := a.entries[dir]; ok {
			if d.kind != kindDir {
				return fmt.Errorf("initramfs: %s: %s is not a directory", c, dir)
			}
			continue
		}
		a.entries[dir] = &entry{kind: kindDir, perm: 0o755}
	}
	a.entries[c] = e
	return nil
}

// Dir adds a directory.
func (a *Archive) Dir(p string, perm uint32) error {
	return a.put(p, &entry{kind: kindDir, perm: perm})
}

// File adds a regular file. A zero mtime means the build time.
func (a *Archive) File(p string, data []byte, perm uint32, mtime time.Time) error {
	return a.put(p, &entry{kind: kindFile, perm: perm, data: data, mtime: mtime})
}

// Symlink adds a symbolic link.
func (a *Archive) Symlink(p, target string) error {
	return a.put(p, &entry{kind: kindSymlink, perm: 0o777, link: target})
}

// Hardlink makes p another name of the regular file target.
func (a *Archive) Hardlink(p, target string) error {
	t, err := clean(target)
	if err != nil {
		return err
	}
	te, ok := a.entries[t]
	if !ok || te.kind != kindFile {
		return fmt.Errorf("initramfs: hard link %s: %s is not a regular file in the archive", p, target)
	}
	if te.group != "" {
		t = te.group
	}
	return a.put(p, &entry{kind: kindFile, perm: te.perm, group: t, mtime: te.mtime})
}

// Has reports whether p is in the archive.
func (a *Archive) Has(p string) bool {
	c, err := clean(p)
	if err != nil {
		return false
	}
	_, ok := a.entries[c]
	return ok
}

// Len is the number of entries.
func (a *Archive) Len() int { return len(a.entries) }

// less orders paths component by component, so a directory always comes
// before what it holds ("a/b" before "a-c" would not hold bytewise).
func less(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] != bs[i] {
			return as[i] < bs[i]
		}
	}
	return len(as) < len(bs)
}

// WriteTo writes the archive as cpio newc. Times later than buildTime
// are clamped to it; so are zero times.
func (a *Archive) WriteTo(w io.Writer, buildTime time.Time) error {
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return less(names[i], names[j]) })

	// Hard link groups: every member shares the inode of the first in
	// order, and the last carries the data, as GNU cpio writes them and
	// the kernel's unpacker expects.
	members := map[string][]string{}
	for _, n := range names {
		if e := a.entries[n]; e.kind == kindFile {
			g := n
			if e.group != "" {
				g = e.group
			}
			members[g] = append(members[g], n)
		}
	}
	inodes := map[string]int64{}
	next := int64(1)
	cw := cpio.NewWriter(w)
	for _, n := range names {
		e := a.entries[n]
		h := &cpio.Header{Name: n, Links: 1}
		mtime := e.mtime
		if mtime.IsZero() || mtime.After(buildTime) {
			mtime = buildTime
		}
		h.ModTime = mtime
		var body []byte
		switch e.kind {
		case kindDir:
			h.Mode = cpio.TypeDir | cpio.FileMode(e.perm)
			h.Links = 2
		case kindSymlink:
			// cavaliergopher/cpio ignores Linkname: newc stores the target
			// as the entry's data.
			h.Mode = cpio.TypeSymlink | 0o777
			body = []byte(e.link)
		case kindFile:
			g := n
			if e.group != "" {
				g = e.group
			}
			h.Mode = cpio.TypeReg | cpio.FileMode(a.entries[g].perm)
			group := members[g]
			h.Links = len(group)
			if group[len(group)-1] == n {
				body = a.entries[g].data
			}
		}
		key := n
		if e.kind == kindFile && e.group != "" {
			key = e.group
		}
		ino, ok := inodes[key]
		if !ok {
			ino = next
			next++
			inodes[key] = ino
		}
		h.Inode = ino
		h.Size = int64(len(body))
		if err := cw.WriteHeader(h); err != nil {
			return fmt.Errorf("writing %s: %w", n, err)
		}
		if _, err := cw.Write(body); err != nil {
			return fmt.Errorf("writing %s: %w", n, err)
		}
	}
	return cw.Close()
}
