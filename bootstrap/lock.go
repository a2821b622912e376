package bootstrap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/internal/fsutil"
)

// LockFormat is the version of the lockfile layout.
const LockFormat = 1

// Lockfile pins a native bootstrap to exact packages: every one with its
// version, file and checksum, and the Release they were resolved from. A
// build with a lockfile installs exactly these, whatever the mirror has
// moved on to.
type Lockfile struct {
	Format       int      `json:"format"`
	Suite        string   `json:"suite"`
	Architecture string   `json:"architecture"`
	Variant      string   `json:"variant"`
	Components   []string `json:"components"`
	Include      []string `json:"include,omitempty"`
	Exclude      []string `json:"exclude,omitempty"`
	// Release is the suite's Release the packages came from.
	Release  LockedRelease   `json:"release"`
	Packages []LockedPackage `json:"packages"`
}

// LockedRelease identifies the Release a lockfile was made from.
type LockedRelease struct {
	Codename string    `json:"codename"`
	Suite    string    `json:"suite,omitempty"`
	Version  string    `json:"version,omitempty"`
	Date     time.Time `json:"date"`
}

// LockedPackage is one pinned package.
type LockedPackage struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
	Filename     string `json:"filename"`
	Size         int64  `json:"size"`
	SHA256       string `json:"sha256,omitempty"`
	// SHA1 and MD5 are kept only for suites that offer nothing better.
	SHA1 string `json:"sha1,omitempty"`
	MD5  string `json:"md5,omitempty"`
}

// LockPath is where the lockfile of the recipe at recipePath lives:
// beside it, with the extension .lock.
func LockPath(recipePath string) string {
	return strings.TrimSuffix(recipePath, filepath.Ext(recipePath)) + ".lock"
}

// ReadLockfile reads and checks a lockfile.
func ReadLockfile(path string) (*Lockfile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseLockfile(b)
}

// ParseLockfile decodes a lockfile, refusing unknown keys and packages
// without a usable checksum.
func ParseLockfile(b []byte) (*Lockfile, error) {
	var l Lockfile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("%w: lockfile: %v", ErrMalformed, err)
	}
	if l.Format != LockFormat {
		return nil, fmt.Errorf("%w: lockfile format %d, this krgimage reads %d", ErrMalformed, l.Format, LockFormat)
	}
	if len(l.Packages) == 0 {
		return nil, fmt.Errorf("%w: lockfile pins no packages", ErrMalformed)
	}
	for i := range l.Packages {
		p := &l.Packages[i]
		if p.Name == "" || p.Version == "" || p.Filename == "" || hasDotDot(p.Filename) {
			return nil, fmt.Errorf("%w: lockfile entry %q is incomplete", ErrMalformed, p.Name)
		}
		if _, ok := p.sum().Best(); !ok {
			return nil, fmt.Errorf("%w: lockfile entry %s has no checksum", ErrMalformed, p.Name)
		}
		// Checked and normalized (lower-case hex) in place: the entry is
		// what downloads are compared with.
		for _, f := range []struct {
			algo string
			v    *string
		}{{"sha256", &p.SHA256}, {"sha1", &p.SHA1}, {"md5", &p.MD5}} {
			if *f.v != "" {
				if err := debarchive.SetChecksum(f.v, f.algo, []byte(*f.v)); err != nil {
					return nil, fmt.Errorf("%w: lockfile entry %s: %v", ErrMalformed, p.Name, err)
				}
			}
		}
	}
	return &l, nil
}

func (p LockedPackage) sum() debarchive.FileSum {
	return debarchive.FileSum{Size: p.Size, SHA256: p.SHA256, SHA1: p.SHA1, MD5: p.MD5}
}

// Marshal renders the lockfile: stable key order, packages sorted by
// name, so that a lockfile diffs well under version control.
func (l *Lockfile) Marshal() ([]byte, error) {
	c := *l
	c.Packages = slices.Clone(l.Packages)
	slices.SortFunc(c.Packages, func(a, b LockedPackage) int { return strings.Compare(a.Name, b.Name) })
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Write saves the lockfile atomically.
func (l *Lockfile) Write(path string) error {
	b, err := l.Marshal()
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, b, 0o644)
}

// check reports how the lockfile disagrees with the options of a build.
func (l *Lockfile) check(o Options) error {
	var diffs []string
	cmpField := func(what, lock, build string) {
		if lock != build {
			diffs = append(diffs, fmt.Sprintf("%s %q (the build has %q)", what, lock, build))
		}
	}
	cmpField("suite", l.Suite, o.Suite)
	cmpField("architecture", l.Architecture, o.Arch)
	cmpField("variant", l.Variant, variantName(o.Variant))
	cmpField("components", strings.Join(l.Components, ","), strings.Join(o.Components, ","))
	cmpField("include", strings.Join(sortedCopy(l.Include), ","), strings.Join(sortedCopy(o.Include), ","))
	cmpField("exclude", strings.Join(sortedCopy(l.Exclude), ","), strings.Join(sortedCopy(o.Exclude), ","))
	if len(diffs) > 0 {
		return fmt.Errorf("%w: it was made for %s; run krgimage lock again", ErrLockMismatch, strings.Join(diffs, ", "))
	}
	return nil
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// variantName is the variant as recipes and lockfiles spell it.
func variantName(v string) string {
	if v == "" || v == "-" {
		return "important"
	}
	return v
}
