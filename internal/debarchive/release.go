package debarchive

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Release is a suite's Release file: what it describes and the checksums
// of every index it publishes.
type Release struct {
	Origin        string
	Suite         string
	Codename      string
	Version       string
	Date          time.Time
	ValidUntil    time.Time
	Architectures []string
	Components    []string
	// Files maps an index path relative to dists/SUITE (main/binary-amd64/
	// Packages.xz) to its size and checksums.
	Files map[string]FileSum
}

// FileSum is a file's size and whichever checksums its index gives.
type FileSum struct {
	Size   int64
	MD5    string
	SHA1   string
	SHA256 string
}

// Hash is one checksum: the strongest a file's index offers.
type Hash struct {
	// Algo is sha256, sha1 or md5.
	Algo  string
	Value string
}

// Best returns the strongest checksum known. SHA1 and MD5 are only offered
// by suites as old as lenny; callers log when they have nothing better.
func (f FileSum) Best() (Hash, bool) {
	switch {
	case f.SHA256 != "":
		return Hash{"sha256", f.SHA256}, true
	case f.SHA1 != "":
		return Hash{"sha1", f.SHA1}, true
	case f.MD5 != "":
		return Hash{"md5", f.MD5}, true
	}
	return Hash{}, false
}

// Weak reports whether the checksum is one a collision can be made for.
func (h Hash) Weak() bool { return h.Algo != "sha256" }

func (h Hash) String() string { return h.Algo + ":" + h.Value }

// releaseSums are the checksum sections of a Release file.
var releaseSums = map[string]string{"md5sum": "md5", "sha1": "sha1", "sha256": "sha256"}

// ParseRelease reads the text of a Release file (the plain text of an
// InRelease, once its signature is checked). Unknown fields are ignored;
// checksum lines that are not "HASH SIZE PATH" are errors, since a
// Release that cannot be read exactly cannot vouch for anything.
func ParseRelease(b []byte) (*Release, error) {
	r := &Release{Files: map[string]FileSum{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	section := ""
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t\r")
		if line == "" {
			// A Release is one paragraph; trailing blank lines are common.
			section = ""
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			algo, ok := releaseSums[section]
			if !ok {
				continue // a continuation of a field we do not read
			}
			if err := r.addSum(algo, strings.Fields(line)); err != nil {
				return nil, fmt.Errorf("%w: Release line %d: %v", ErrMalformed, n, err)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%w: Release line %d: %q is not a field", ErrMalformed, n, line)
		}
		section = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		switch section {
		case "origin":
			r.Origin = v
		case "suite":
			r.Suite = v
		case "codename":
			r.Codename = v
		case "version":
			r.Version = v
		case "architectures":
			r.Architectures = strings.Fields(v)
		case "components":
			r.Components = strings.Fields(v)
		case "date":
			r.Date, _ = parseReleaseDate(v)
		case "valid-until":
			r.ValidUntil, _ = parseReleaseDate(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: Release: %v", ErrMalformed, err)
	}
	if r.Suite == "" && r.Codename == "" {
		return nil, fmt.Errorf("%w: Release names neither a suite nor a codename", ErrMalformed)
	}
	return r, nil
}

func (r *Release) addSum(algo string, f []string) error {
	if len(f) != 3 {
		return fmt.Errorf("want HASH SIZE PATH, got %d fields", len(f))
	}
	size, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || size < 0 {
		return fmt.Errorf("size %q of %s is not a number", f[1], f[2])
	}
	fs := r.Files[f[2]]
	if fs.Size != 0 && fs.Size != size {
		return fmt.Errorf("%s has two sizes, %d and %d", f[2], fs.Size, size)
	}
	fs.Size = size
	if err := SetChecksum(fs.sum(algo), algo, []byte(f[0])); err != nil {
		return err
	}
	r.Files[f[2]] = fs
	return nil
}

// sum is where f keeps the checksum of algo.
func (f *FileSum) sum(algo string) *string {
	switch algo {
	case "md5":
		return &f.MD5
	case "sha1":
		return &f.SHA1
	}
	return &f.SHA256
}

// parseReleaseDate reads Release dates, which are RFC 2822 in UTC, with
// the odd variations old suites used.
func parseReleaseDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC1123Z, time.RFC1123, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700", "Mon, _2 Jan 2006 15:04:05 MST"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unknown date format %q", s)
}

// indexCompressions are the forms a Packages index comes in, best first.
// gzip comes before xz: on a fast mirror, decompression dominates and
// gzip decodes several times faster; both are far smaller than plain.
var indexCompressions = []string{".gz", ".xz", ".bz2", ""}

// IndexFile is one index file a Release lists.
type IndexFile struct {
	// Path is relative to dists/SUITE: main/binary-amd64/Packages.xz.
	Path string
	Sum  FileSum
}

// PackagesIndexes returns the forms of component/arch's Packages index the
// Release lists, best first. A Release may list forms the mirror does not
// serve (Debian lists the uncompressed Packages), so callers try each.
func (r *Release) PackagesIndexes(component, arch string) ([]IndexFile, error) {
	base := component + "/binary-" + arch + "/Packages"
	var out []IndexFile
	for _, ext := range indexCompressions {
		if fs, ok := r.Files[base+ext]; ok {
			if _, ok := fs.Best(); ok {
				out = append(out, IndexFile{Path: base + ext, Sum: fs})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: its Release lists no %s index", ErrUnknownSuite, base)
	}
	return out, nil
}
