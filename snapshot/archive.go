package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// maxManifestSize bounds the manifest, which is read into memory: about
// 150 bytes an entry, so some six million entries.
const maxManifestSize = 1 << 30

// member is an archive entry as the readers see it: the validated path,
// the entry it describes, its raw xattrs and its content.
type member struct {
	rel    string
	entry  *Entry
	hdr    *tarHeader
	xattrs []xattr
	// replace is set for a non-directory that replaces an earlier entry of
	// the same name, as a later tar member does.
	replace bool
	content *content
}

// content is a file's data. each hands every data segment in order; the
// digest is computed on the way.
type content struct {
	h    *tarHeader
	r    io.Reader
	d    *digester
	used bool
}

func (c *content) each(fn func(off int64, r io.Reader) error) error {
	if c.used {
		return errors.New("content read twice")
	}
	c.used = true
	segs := c.h.Sparse
	if segs == nil {
		segs = []segment{{0, c.h.Size}}
	}
	var pos int64
	for _, s := range segs {
		lr := &io.LimitedReader{R: c.r, N: s.Len}
		var r io.Reader = lr
		if c.d != nil {
			c.d.Hole(s.Off - pos)
			r = io.TeeReader(lr, c.d)
		}
		if err := fn(s.Off, r); err != nil {
			return err
		}
		if lr.N > 0 {
			// The visitor stopped early; the digest still needs the rest.
			if _, err := io.Copy(io.Discard, r); err != nil {
				return err
			}
		}
		pos = s.Off + s.Len
	}
	if c.d != nil {
		c.d.Hole(c.h.Size - pos)
	}
	return nil
}

type readOptions struct {
	threads int
	// noDigest skips hashing file contents: the caller checks the whole
	// archive against its sidecar, which covers every byte, so the
	// manifest's digests would tell nothing more.
	noDigest bool
	// lookup resolves user and group names in ACL text records.
	lookup idLookup
	// progress is called now and then with the entries read so far.
	progress func(entries int)
}

// readResult is what reading a whole archive tells.
type readResult struct {
	compression Compression
	manifest    *Manifest // nil for an archive without one
	entries     []Entry
	// diffs lists where the entries disagree with the manifest.
	diffs []Difference
}

// readArchive reads every entry of the archive in r, checks that it is
// safe to extract, computes its digest, and calls visit, which may read
// the content. It fails on the first unsafe or unreadable entry; entries
// that disagree with the manifest are listed in the result.
func readArchive(ctx context.Context, r io.Reader, o readOptions, visit func(*member) error) (*readResult, error) {
	dr, comp, closeDec, err := openDecompressor(r, o.threads)
	if err != nil {
		return nil, err
	}
	defer closeDec()
	res := &readResult{compression: comp}
	tr := newTarReader(dr)
	st := &readState{kinds: map[string]Type{}, linked: map[string]bool{}}
	// at indexes res.entries by path; a replaced entry is dropped at the
	// end, so that many duplicates cost no more than many entries.
	at := map[string]int{}
	var dropped []bool
	first := true
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if n%256 == 0 && o.progress != nil {
			o.progress(len(res.entries))
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		rel, ok := cleanName(h.Name)
		if !ok {
			return nil, fmt.Errorf("entry %q: %w: absolute or with \"..\"", h.Name, ErrUnsafePath)
		}
		if first {
			first = false
			if rel == ManifestName && h.Typeflag == typeReg && h.Sparse == nil {
				if h.Size > maxManifestSize {
					return nil, corruptf("manifest of %d bytes", h.Size)
				}
				data, err := io.ReadAll(tr)
				if err != nil {
					return nil, err
				}
				if res.manifest, err = ParseManifest(bytes.NewReader(data)); err != nil {
					return nil, err
				}
				continue
			}
		}
		m, err := newMember(rel, h, st, o.lookup)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", h.Name, err)
		}
		if m.entry.Type == TypeFile {
			m.content = &content{h: h, r: tr}
			if !o.noDigest {
				m.content.d = newDigester(h.Size)
			}
		}
		if err := visit(m); err != nil {
			return nil, fmt.Errorf("entry %q: %w", h.Name, err)
		}
		if c := m.content; c != nil {
			if !c.used {
				if err := c.each(func(int64, io.Reader) error { return nil }); err != nil {
					return nil, fmt.Errorf("entry %q: %w", h.Name, err)
				}
			}
			if c.d != nil {
				kind, sum, ok := c.d.Sum()
				if !ok {
					return nil, fmt.Errorf("entry %q: %w: content shorter than its size", h.Name, ErrCorrupt)
				}
				m.entry.DigestKind, m.entry.Digest = kind, sum
			}
		}
		if i, ok := at[rel]; ok && m.replace {
			dropped[i] = true
		}
		at[rel] = len(res.entries)
		res.entries = append(res.entries, *m.entry)
		dropped = append(dropped, false)
	}
	if slices.Contains(dropped, true) {
		kept := res.entries[:0]
		for i, e := range res.entries {
			if !dropped[i] {
				kept = append(kept, e)
			}
		}
		res.entries = kept
	}
	// Read to the end of the stream, so the compressed format's own
	// checksums are verified too.
	if _, err := io.Copy(io.Discard, dr); err != nil {
		return nil, fmt.Errorf("%w: after the end of the archive: %w", ErrCorrupt, err)
	}
	if res.manifest != nil {
		res.diffs = compare(res.manifest.Entries, res.entries, compareOptions{mtime: true})
	}
	return res, nil
}

// readState is what newMember remembers of the entries before.
type readState struct {
	// kinds records the type of every path seen, implicit parents
	// included; linked, the paths hardlinks name.
	kinds  map[string]Type
	linked map[string]bool
}

// newMember validates an entry against what came before and builds its
// Entry.
func newMember(rel string, h *tarHeader, st *readState, lookup idLookup) (*member, error) {
	kinds := st.kinds
	e := &Entry{
		Path: rel, Mode: uint32(h.Mode & 0o7777), ModTime: h.ModTime,
	}
	if h.UID < 0 || h.UID > 1<<32-1 || h.GID < 0 || h.GID > 1<<32-1 {
		return nil, corruptf("owner %d:%d out of range", h.UID, h.GID)
	}
	e.UID, e.GID = uint32(h.UID), uint32(h.GID)
	switch h.Typeflag {
	case typeReg:
		e.Type, e.Size = TypeFile, h.Size
	case typeDir:
		e.Type = TypeDir
	case typeSymlink:
		e.Type, e.Link = TypeSymlink, h.Linkname
	case typeLink:
		e.Type = TypeHardlink
	case typeChar, typeBlock:
		e.Type = TypeChar
		if h.Typeflag == typeBlock {
			e.Type = TypeBlock
		}
		if h.Devmajor > 1<<32-1 || h.Devminor > 1<<32-1 {
			return nil, corruptf("device %d,%d out of range", h.Devmajor, h.Devminor)
		}
		e.DevMajor, e.DevMinor = uint32(h.Devmajor), uint32(h.Devminor)
	case typeFifo:
		e.Type = TypeFifo
	default:
		return nil, fmt.Errorf("%w: entry type %q", errors.ErrUnsupported, h.Typeflag)
	}
	if h.Sparse != nil && e.Type != TypeFile {
		return nil, corruptf("sparse map on a %s", e.Type)
	}
	m := &member{rel: rel, entry: e, hdr: h}

	// Where the entry goes: the root must be a directory, every parent a
	// directory, and a directory is never replaced by anything else.
	//
	// A parent is never a symlink an earlier entry planted, wherever it
	// points, even inside the root: "a -> /" or "a -> ../../.." then
	// "a/etc/passwd" is refused, although resolved in the root, as
	// openat2's RESOLVE_IN_ROOT would, it lands in ROOT/etc/passwd. Written
	// through, the entry would sit at a path the archive does not name,
	// perhaps over an earlier entry this reader takes for another one, and
	// neither the manifest check nor the replace and hardlink rules above
	// would describe the tree any more. No archive of a real tree has such
	// entries (a walk does not descend into symlinks: krgimage's, GNU
	// tar's or bsdtar's), and GNU tar will not extract through the
	// symlinks it holds back as placeholders, those with ".." or absolute.
	// Symlinks themselves are data: any target, kept verbatim.
	if rel == "." {
		if e.Type != TypeDir {
			return nil, fmt.Errorf("%w: the root would be a %s", ErrUnsafePath, e.Type)
		}
	} else {
		for i := 0; i < len(rel); i++ {
			if rel[i] != '/' {
				continue
			}
			p := rel[:i]
			switch k, ok := kinds[p]; {
			case !ok:
				kinds[p] = TypeDir // created implicitly
			case k != TypeDir:
				return nil, fmt.Errorf("%w: %s is a %s, not a directory", ErrUnsafePath, p, k)
			}
		}
	}
	if k, ok := kinds[rel]; ok && rel != "." {
		switch {
		case k == TypeDir && e.Type != TypeDir:
			return nil, fmt.Errorf("%w: would replace the directory %s with a %s", ErrUnsafePath, rel, e.Type)
		case k != TypeDir && e.Type == TypeDir:
			return nil, fmt.Errorf("%w: would replace the %s %s with a directory", ErrUnsafePath, k, rel)
		case st.linked[rel]:
			// The hardlinks keep the old file: the tree would no longer
			// be what the entries say.
			return nil, fmt.Errorf("%w: would replace %s, which a hardlink shares", ErrUnsafePath, rel)
		case k != TypeDir:
			m.replace = true
		}
	}
	switch e.Type {
	case TypeHardlink:
		t, ok := cleanName(h.Linkname)
		if !ok || t == "." {
			return nil, fmt.Errorf("%w: hardlink to %q, outside the root", ErrUnsafePath, h.Linkname)
		}
		switch k, seen := kinds[t]; {
		case !seen:
			return nil, fmt.Errorf("%w: hardlink to %q, which is not an earlier entry", ErrUnsafePath, h.Linkname)
		case k == TypeDir:
			return nil, fmt.Errorf("%w: hardlink to the directory %q", ErrUnsafePath, h.Linkname)
		case t == rel:
			return nil, fmt.Errorf("%w: hardlink to itself", ErrUnsafePath)
		}
		e.Link = t
		st.linked[t] = true
	case TypeSymlink:
		if h.Linkname == "" || strings.ContainsRune(h.Linkname, 0) {
			return nil, corruptf("empty symlink target")
		}
	}
	kinds[rel] = e.Type
	if e.Type == TypeHardlink {
		kinds[rel] = kinds[e.Link]
		return m, nil
	}

	xs, err := headerXattrs(h, lookup)
	if err != nil {
		return nil, err
	}
	m.xattrs = xs
	e.Xattrs = xattrDigests(xs)
	return m, nil
}

// headerXattrs collects the extended attributes of an entry:
// SCHILY.xattr records, and ACL text records where no xattr record carries
// the ACL (archives from GNU tar without --xattrs-include, or bsdtar).
func headerXattrs(h *tarHeader, lookup idLookup) ([]xattr, error) {
	var xs []xattr
	have := map[string]bool{}
	for k, v := range h.PAX {
		if name, ok := strings.CutPrefix(k, paxXattr); ok && name != "" {
			xs = append(xs, xattr{name: name, value: []byte(v)})
			have[name] = true
		}
	}
	for _, a := range []struct{ rec, name string }{{paxACLAccess, xattrACLAccess}, {paxACLDef, xattrACLDefault}} {
		t, ok := h.PAX[a.rec]
		if !ok || have[a.name] {
			continue
		}
		b, err := parseACLText(t, lookup)
		if err != nil {
			return nil, corruptf("%s: %v", a.rec, err)
		}
		if a.name == xattrACLAccess && minimalACL(b) {
			continue // the mode says it all
		}
		if a.name == xattrACLDefault && len(b) == 4 {
			continue // empty
		}
		xs = append(xs, xattr{name: a.name, value: b})
	}
	sortXattrs(xs)
	return xs, nil
}

// readSidecar returns the digest in archive's .sha256 file.
func readSidecar(archive string, readFile func(string) ([]byte, error)) (string, error) {
	b, err := readFile(SidecarPath(archive))
	if err != nil {
		return "", err
	}
	// A damaged sidecar leaves the archive unchecked: a checksum error.
	f := strings.Fields(string(b))
	if len(f) == 0 || len(f[0]) != 64 {
		return "", fmt.Errorf("%w: %s is not a sha256sum line", ErrChecksum, SidecarPath(archive))
	}
	if _, err := hex.DecodeString(f[0]); err != nil {
		return "", fmt.Errorf("%w: %s is not a sha256sum line", ErrChecksum, SidecarPath(archive))
	}
	return strings.ToLower(f[0]), nil
}

// hashReader hashes what is read through it.
type hashReader struct {
	r io.Reader
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func newHashReader(r io.Reader) *hashReader { return &hashReader{r: r, h: sha256.New()} }

func (hr *hashReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	hr.n += int64(n)
	return n, err
}

// finish reads the rest of the file and returns its digest.
func (hr *hashReader) finish() (string, error) {
	if _, err := io.Copy(io.Discard, hr); err != nil {
		return "", err
	}
	return hex.EncodeToString(hr.h.Sum(nil)), nil
}

func firstDiffs(diffs []Difference, n int) string {
	var s []string
	for i, d := range diffs {
		if i == n {
			s = append(s, fmt.Sprintf("and %d more", len(diffs)-n))
			break
		}
		s = append(s, d.String())
	}
	return strings.Join(s, "; ")
}
