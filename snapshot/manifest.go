package snapshot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ManifestName is the archive's first entry. GNU tar and bsdtar extract
// it as ROOT/.krgimage-manifest; krgimage restore does not, snapshot
// skips a file of that name at the top of a tree, and verify --against
// ignores it.
const ManifestName = ".krgimage-manifest"

const manifestMagic = "#krgimage-manifest 1"

// Type is the kind of a tree entry.
type Type string

// Entry types.
const (
	TypeDir      Type = "dir"
	TypeFile     Type = "file"
	TypeSymlink  Type = "symlink"
	TypeHardlink Type = "hardlink"
	TypeChar     Type = "char"
	TypeBlock    Type = "block"
	TypeFifo     Type = "fifo"
)

// Entry is one line of a manifest: what krgimage knows of a tree entry.
type Entry struct {
	// Path is slash-separated and relative to the root; "." is the root.
	Path string
	Type Type
	// Mode holds the permission bits with setuid, setgid and sticky.
	Mode     uint32
	UID, GID uint32
	// Size and Digest are set for files. DigestKind is "sha256" (the
	// plain SHA-256 of the content) below 64 MiB and "sparse-sha256" from
	// there, where all-zero 1 MiB chunks are counted instead of hashed.
	Size       int64
	DigestKind string
	Digest     string
	// Link is a symlink's target, or the path a hardlink shares its
	// inode with (an earlier entry).
	Link               string
	DevMajor, DevMinor uint32
	// Xattrs maps each extended attribute name to the SHA-256 of its
	// value. POSIX ACLs are the system.posix_acl_* attributes.
	Xattrs  map[string]string
	ModTime time.Time
	// Changing is set by the scan of a live tree for a file that changed
	// or vanished while it was read: it has no digest, and Compare reports
	// its content as changing instead of comparing it. Never in a manifest.
	Changing bool
}

// Manifest lists a tree's entries in archive order: depth first, the
// names of each directory sorted bytewise.
type Manifest struct {
	Entries []Entry
}

// MarshalText renders the manifest: a header line, then one line an entry,
// "path key=value...", paths and names escaped as \ooo where they hold
// spaces, control characters, backslashes, '=' or bytes outside ASCII.
func (m *Manifest) MarshalText() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(manifestMagic + "\n")
	for i := range m.Entries {
		e := &m.Entries[i]
		b.WriteString(escape(e.Path))
		fmt.Fprintf(&b, " type=%s", e.Type)
		if e.Type != TypeHardlink {
			fmt.Fprintf(&b, " mode=%04o uid=%d gid=%d", e.Mode, e.UID, e.GID)
		}
		if e.Type == TypeFile {
			fmt.Fprintf(&b, " size=%d %s=%s", e.Size, e.DigestKind, e.Digest)
		}
		if e.Type == TypeSymlink || e.Type == TypeHardlink {
			fmt.Fprintf(&b, " link=%s", escape(e.Link))
		}
		if e.Type == TypeChar || e.Type == TypeBlock {
			fmt.Fprintf(&b, " device=%d,%d", e.DevMajor, e.DevMinor)
		}
		if e.Type != TypeHardlink {
			b.WriteString(" time=" + formatTime9(e.ModTime))
		}
		for _, k := range slices.Sorted(mapsKeys(e.Xattrs)) {
			fmt.Fprintf(&b, " xattr.%s=%s", escape(k), e.Xattrs[k])
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// ParseManifest reads a manifest. It is strict: the manifest is untrusted
// input like the rest of an archive.
func ParseManifest(r io.Reader) (*Manifest, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	m := &Manifest{}
	line := 0
	seen := map[string]bool{}
	for sc.Scan() {
		line++
		t := sc.Text()
		if line == 1 {
			if t != manifestMagic {
				return nil, corruptf("manifest: not a krgimage manifest (version line %q)", t)
			}
			continue
		}
		if t == "" || t[0] == '#' {
			continue
		}
		e, err := parseEntry(t)
		if err != nil {
			return nil, corruptf("manifest line %d: %v", line, err)
		}
		if seen[e.Path] {
			return nil, corruptf("manifest line %d: duplicate path %q", line, e.Path)
		}
		seen[e.Path] = true
		m.Entries = append(m.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, corruptf("manifest: %v", err)
	}
	if line == 0 {
		return nil, corruptf("manifest: empty")
	}
	return m, nil
}

func parseEntry(t string) (Entry, error) {
	fields := strings.Split(t, " ")
	p, err := unescape(fields[0])
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Path: p}
	if p == "" {
		return e, errors.New("empty path")
	}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return e, fmt.Errorf("field %q", f)
		}
		var err error
		switch {
		case k == "type":
			e.Type = Type(v)
			switch e.Type {
			case TypeDir, TypeFile, TypeSymlink, TypeHardlink, TypeChar, TypeBlock, TypeFifo:
			default:
				err = errors.New("unknown type")
			}
		case k == "mode":
			var n uint64
			n, err = strconv.ParseUint(v, 8, 32)
			if n > 0o7777 {
				err = errors.New("mode out of range")
			}
			e.Mode = uint32(n)
		case k == "uid":
			e.UID, err = parseUint32(v)
		case k == "gid":
			e.GID, err = parseUint32(v)
		case k == "size":
			e.Size, err = parseDecimal(v)
		case k == keySHA256 || k == keyChunked:
			if len(v) != 64 || strings.Trim(v, "0123456789abcdef") != "" {
				err = errors.New("digest")
			}
			e.DigestKind, e.Digest = k, v
		case k == "link":
			e.Link, err = unescape(v)
		case k == "device":
			a, b, ok := strings.Cut(v, ",")
			if !ok {
				err = errors.New("device")
				break
			}
			if e.DevMajor, err = parseUint32(a); err == nil {
				e.DevMinor, err = parseUint32(b)
			}
		case k == "time":
			e.ModTime, err = parsePAXTime(v)
		case strings.HasPrefix(k, "xattr."):
			var name string
			name, err = unescape(k[len("xattr."):])
			if err == nil && (len(v) != 64 || strings.Trim(v, "0123456789abcdef") != "") {
				err = errors.New("xattr digest")
			}
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			e.Xattrs[name] = v
		default:
			err = errors.New("unknown key")
		}
		if err != nil {
			return e, fmt.Errorf("%s: %v", k, err)
		}
	}
	if e.Type == "" {
		return e, errors.New("no type")
	}
	if (e.Type == TypeFile) != (e.Digest != "") {
		return e, errors.New("a digest belongs to files, and every file has one")
	}
	if (e.Type == TypeSymlink || e.Type == TypeHardlink) != (e.Link != "") {
		return e, errors.New("a link target belongs to links, and every link has one")
	}
	return e, nil
}

func parseUint32(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '\\' || c == '=' || c == '#' && i == 0 {
			fmt.Fprintf(&b, "\\%03o", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, "\\") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", errors.New("truncated escape")
		}
		n, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", errors.New("bad escape")
		}
		b.WriteByte(byte(n))
		i += 3
	}
	return b.String(), nil
}

// Change is one field that differs between two entries.
type Change struct {
	Field    string // type, content, size, mode, owner, link, device, xattrs, mtime
	Old, New string
}

// Difference is a path added, removed or changed between an old and a new
// side (the manifest and the tree, for Verify).
type Difference struct {
	Path    string
	Kind    string // "added", "removed" or "changed"
	Changes []Change
}

func (d Difference) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %s", d.Kind, escape(d.Path))
	for i, c := range d.Changes {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(c.Field)
		if c.Old != "" || c.New != "" {
			fmt.Fprintf(&b, " %s -> %s", c.Old, c.New)
		}
	}
	return b.String()
}

type compareOptions struct {
	mtime bool
}

// compare lists the differences from old to new, in new's order with
// removed paths after. A hardlink is compared as the file it shares an
// inode with, plus the set of names of that inode: which name comes first
// depends on the order a tool walked the tree in, and says nothing.
func compare(old, new []Entry, o compareOptions) []Difference {
	oldN, newN := resolveLinks(old), resolveLinks(new)
	byPath := make(map[string]*linked, len(old))
	for i := range oldN {
		byPath[oldN[i].Path] = &oldN[i]
	}
	var diffs []Difference
	seen := make(map[string]bool, len(new))
	for i := range newN {
		n := &newN[i]
		seen[n.Path] = true
		o0, ok := byPath[n.Path]
		if !ok {
			diffs = append(diffs, Difference{Path: n.Path, Kind: "added"})
			continue
		}
		cs := compareEntry(&o0.Entry, &n.Entry, o)
		if o0.group != n.group {
			cs = append(cs, Change{"hardlinks", o0.group, n.group})
		}
		if len(cs) > 0 {
			diffs = append(diffs, Difference{Path: n.Path, Kind: "changed", Changes: cs})
		}
	}
	for i := range oldN {
		if !seen[oldN[i].Path] {
			diffs = append(diffs, Difference{Path: oldN[i].Path, Kind: "removed"})
		}
	}
	return diffs
}

// linked is an entry with hardlinks resolved to the file they name, and
// the names of its inode when it has several.
type linked struct {
	Entry
	group string
}

func resolveLinks(es []Entry) []linked {
	out := make([]linked, len(es))
	idx := make(map[string]int, len(es))
	groups := map[string][]string{}
	for i, e := range es {
		idx[e.Path] = i
		out[i].Entry = e
		if e.Type == TypeHardlink {
			groups[e.Link] = append(groups[e.Link], e.Path)
		}
	}
	for first, names := range groups {
		j, ok := idx[first]
		if !ok {
			continue
		}
		all := append([]string{first}, names...)
		slices.Sort(all)
		g := escape(strings.Join(all, ","))
		out[j].group = g
		for _, n := range names {
			i := idx[n]
			p := out[i].Path
			out[i].Entry = out[j].Entry
			out[i].Path = p
			out[i].group = g
		}
	}
	return out
}

func compareEntry(a, b *Entry, o compareOptions) []Change {
	var cs []Change
	add := func(field, x, y string) {
		if x != y {
			cs = append(cs, Change{field, x, y})
		}
	}
	add("type", string(a.Type), string(b.Type))
	if a.Type != b.Type {
		return cs
	}
	if a.Type == TypeHardlink {
		add("link", escape(a.Link), escape(b.Link))
		return cs
	}
	add("mode", fmt.Sprintf("%04o", a.Mode), fmt.Sprintf("%04o", b.Mode))
	add("owner", fmt.Sprintf("%d:%d", a.UID, a.GID), fmt.Sprintf("%d:%d", b.UID, b.GID))
	switch a.Type {
	case TypeFile:
		add("size", strconv.FormatInt(a.Size, 10), strconv.FormatInt(b.Size, 10))
		if a.Changing || b.Changing {
			cs = append(cs, Change{Field: "content", New: "changing while read"})
		}
		// An empty digest was not computed (restore with a checked sidecar).
		if a.Size == b.Size && a.Digest != "" && b.Digest != "" && (a.DigestKind != b.DigestKind || a.Digest != b.Digest) {
			cs = append(cs, Change{Field: "content"})
		}
	case TypeSymlink:
		add("link", escape(a.Link), escape(b.Link))
	case TypeChar, TypeBlock:
		add("device", fmt.Sprintf("%d,%d", a.DevMajor, a.DevMinor), fmt.Sprintf("%d,%d", b.DevMajor, b.DevMinor))
	}
	var xs []string
	for _, k := range slices.Sorted(mapsKeys(a.Xattrs)) {
		if v, ok := b.Xattrs[k]; !ok {
			xs = append(xs, "-"+escape(k))
		} else if v != a.Xattrs[k] {
			xs = append(xs, "~"+escape(k))
		}
	}
	for _, k := range slices.Sorted(mapsKeys(b.Xattrs)) {
		if _, ok := a.Xattrs[k]; !ok {
			xs = append(xs, "+"+escape(k))
		}
	}
	if len(xs) > 0 {
		cs = append(cs, Change{Field: "xattrs", New: strings.Join(xs, " ")})
	}
	if o.mtime && !a.ModTime.Equal(b.ModTime) {
		cs = append(cs, Change{"mtime", formatPAXTime(a.ModTime.UTC()), formatPAXTime(b.ModTime.UTC())})
	}
	return cs
}

// formatTime9 writes seconds with all nine digits of nanoseconds, the
// sign in front of both: -3.250000000 is 3.25 s before 1970.
func formatTime9(t time.Time) string {
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	sign := ""
	if sec < 0 && nsec > 0 {
		sign, sec, nsec = "-", -(sec + 1), 1e9-nsec
	} else if sec < 0 {
		sign, sec = "-", -sec
	}
	return fmt.Sprintf("%s%d.%09d", sign, sec, nsec)
}
