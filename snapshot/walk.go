package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// node is an entry found on disk: the manifest entry, plus what the tar
// writer needs and what detects a file changing under it.
type node struct {
	Entry
	xattrs []xattr // raw values, sorted by name
	// dev, ino, mtime and ctime, with Size, identify the file the walk
	// found: one that no longer matches them when read is ErrChanged, and
	// so is another file a racing rename put in its place, from anywhere.
	dev, ino     uint64
	mtime, ctime time.Time
	// claimed is set by whoever hashes the file, when a hashShare splits
	// the work.
	claimed atomic.Bool
}

// claim reports whether the caller is the one to hash n.
func (n *node) claim() bool { return n.claimed.CompareAndSwap(false, true) }

type xattr struct {
	name  string
	value []byte
}

type scanOptions struct {
	log     *slog.Logger
	threads int
	// warnManifest logs a warning when a tree holds ManifestName at its
	// top, which is skipped either way.
	warnManifest bool
	// live scans a tree that may change meanwhile: a file that changes or
	// vanishes while read is marked Changing, and an entry that vanishes
	// before it is read is left out, instead of failing the scan.
	live bool
	// beforeDigest, a test's hook, runs before a worker hashes a file.
	beforeDigest func(*node)
	// progress is called as files are hashed.
	progress func(files int, bytes int64)
	total    func(files int, bytes int64)
	// emit, when set, is called with each node as the walk finds it, in
	// archive order, before its file is hashed; it must not block.
	emit func(*node)
	// share, when set, lets the caller hash files: see hashShare.
	share *hashShare
}

// hashShare lets the data pass of a snapshot hash the files it archives
// as it reads them, so that those are read once. Whoever claims a
// file first (node.claim) hashes it: the data pass going forward, the
// scan's workers going backward from the last file once the walk is over.
// The scan returns when every file is hashed, by either side.
type hashShare struct {
	hashed atomic.Int64  // files the data pass hashed
	notify chan struct{} // a file was hashed by the data pass
}

func newHashShare() *hashShare { return &hashShare{notify: make(chan struct{}, 1)} }

// done records a file the data pass hashed.
func (h *hashShare) done() {
	h.hashed.Add(1)
	select {
	case h.notify <- struct{}{}:
	default:
	}
}

// scan walks root depth first, each directory's names sorted bytewise, and
// hashes every file. Sockets are skipped with a warning; so is anything
// below a mount point.
func scan(ctx context.Context, root string, o scanOptions) ([]*node, error) {
	return scanTree(ctx, root, o)
}

func xattrDigests(xs []xattr) map[string]string {
	if len(xs) == 0 {
		return nil
	}
	m := make(map[string]string, len(xs))
	for _, x := range xs {
		s := sha256.Sum256(x.value)
		m[x.name] = hex.EncodeToString(s[:])
	}
	return m
}

func sortXattrs(xs []xattr) {
	sort.Slice(xs, func(i, j int) bool { return xs[i].name < xs[j].name })
}

func joinRel(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// tarName is an entry's name in the archive: "./" and the path, with a
// slash after directories, as GNU tar -C ROOT . writes them.
func tarName(p string, dir bool) string {
	if p == "." {
		return "./"
	}
	if dir {
		return "./" + p + "/"
	}
	return "./" + p
}

// cleanName turns an archive name into a path relative to the root, or
// reports why it is unsafe. "." is the root itself.
func cleanName(name string) (string, bool) {
	if name == "" || strings.HasPrefix(name, "/") {
		return "", false
	}
	var parts []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return "", false
		}
		parts = append(parts, c)
	}
	if len(parts) == 0 {
		return ".", true
	}
	return strings.Join(parts, "/"), true
}

// isCleanRel reports whether rel is a path as cleanName returns them:
// relative, without empty, "." or ".." components, or "." alone.
func isCleanRel(rel string) bool {
	if rel == "." {
		return true
	}
	if rel == "" {
		return false
	}
	for {
		c, rest, more := strings.Cut(rel, "/")
		if c == "" || c == "." || c == ".." {
			return false
		}
		if !more {
			return true
		}
		rel = rest
	}
}

// header builds the tar header of n with the given mtime (clamped) and,
// for a file with holes, its data segments.
func (n *node) header(mtime time.Time, sparse []segment) *tarHeader {
	h := &tarHeader{
		Name: tarName(n.Path, n.Type == TypeDir), Mode: int64(n.Mode),
		UID: int64(n.UID), GID: int64(n.GID), ModTime: mtime,
	}
	switch n.Type {
	case TypeDir:
		h.Typeflag = typeDir
	case TypeFile:
		h.Typeflag, h.Size, h.Sparse = typeReg, n.Size, sparse
	case TypeSymlink:
		h.Typeflag, h.Linkname = typeSymlink, n.Link
	case TypeHardlink:
		h.Typeflag, h.Linkname = typeLink, tarName(n.Link, false)
		return h // the inode's xattrs travel with the first name
	case TypeChar, TypeBlock:
		h.Typeflag = typeChar
		if n.Type == TypeBlock {
			h.Typeflag = typeBlock
		}
		h.Devmajor, h.Devminor = int64(n.DevMajor), int64(n.DevMinor)
	case TypeFifo:
		h.Typeflag = typeFifo
	}
	if len(n.xattrs) > 0 {
		h.PAX = make(map[string]string, len(n.xattrs)+1)
		for _, x := range n.xattrs {
			h.PAX[paxXattr+x.name] = string(x.value)
			switch x.name {
			case xattrACLAccess, xattrACLDefault:
				if t, err := aclText(x.value); err == nil {
					k := paxACLAccess
					if x.name == xattrACLDefault {
						k = paxACLDef
					}
					h.PAX[k] = t
				}
			}
		}
	}
	return h
}
