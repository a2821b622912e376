package initramfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// ErrNoModule: a module asked for by name is not in the kernel.
var ErrNoModule = errors.New("no such kernel module")

// Modules is a kernel's module tree, read from modules.dep and
// modules.builtin.
type Modules struct {
	// Dir is /lib/modules/VERSION on the build host.
	Dir     string
	deps    map[string][]string // relative path -> its dependencies
	byName  map[string]string   // normalized name -> relative path
	builtin map[string]bool
}

// normalize makes module names comparable: the kernel treats - and _ alike.
func normalize(name string) string { return strings.ReplaceAll(name, "-", "_") }

// moduleName is the name of a module file (e1000 for .../e1000.ko.xz).
func moduleName(p string) string {
	base := filepath.Base(p)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return normalize(base)
}

// LoadModules reads the module tree of a kernel version inside root.
func LoadModules(root, version string) (*Modules, error) {
	dir := filepath.Join(root, "lib", "modules", version)
	dep, err := os.ReadFile(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("reading modules.dep (run depmod -b): %w", err)
	}
	m := &Modules{Dir: dir, deps: map[string][]string{}, byName: map[string]string{}, builtin: map[string]bool{}}
	sc := bufio.NewScanner(bytes.NewReader(dep))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		m.deps[mod] = strings.Fields(rest)
		m.byName[moduleName(mod)] = mod
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			m.builtin[moduleName(l)] = true
		}
	}
	return m, nil
}

// Selection is the outcome of resolving module names.
type Selection struct {
	// Paths are module files relative to Dir, in load order: every
	// module after the modules it needs.
	Paths []string
	// Builtin are names the kernel has built in: nothing to load.
	Builtin []string
	// Absent are names of optional modules this kernel lacks.
	Absent []string
}

// Resolve closes names over modules.dep. Names in required must exist
// (built in or as a module); names in optional are skipped when absent.
func (m *Modules) Resolve(required, optional []string) (*Selection, error) {
	s := &Selection{}
	seen := map[string]bool{}
	var missing []string
	var visit func(p string, stack []string) error
	visit = func(p string, stack []string) error {
		if seen[p] {
			return nil
		}
		for _, q := range stack {
			if q == p {
				return fmt.Errorf("module dependency loop: %s", strings.Join(append(stack, p), " -> "))
			}
		}
		for _, d := range m.deps[p] {
			if err := visit(d, append(stack, p)); err != nil {
				return err
			}
		}
		seen[p] = true
		s.Paths = append(s.Paths, p)
		return nil
	}
	add := func(names []string, must bool) error {
		for _, n := range names {
			key := normalize(n)
			if p, ok := m.byName[key]; ok {
				if err := visit(p, nil); err != nil {
					return err
				}
				continue
			}
			switch {
			case m.builtin[key]:
				s.Builtin = append(s.Builtin, n)
			case must:
				missing = append(missing, n)
			default:
				s.Absent = append(s.Absent, n)
			}
		}
		return nil
	}
	if err := add(required, true); err != nil {
		return nil, err
	}
	if err := add(optional, false); err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("%w: %s (not in %s/modules.dep nor modules.builtin)", ErrNoModule, strings.Join(missing, ", "), m.Dir)
	}
	return s, nil
}

// ReadModule returns a module's contents, decompressed: busybox's insmod
// loads plain .ko files only.
func (m *Modules) ReadModule(rel string) (name string, data []byte, err error) {
	f, err := os.Open(filepath.Join(m.Dir, rel))
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	// Buffered: the xz reader reads a byte at a time.
	br := bufio.NewReaderSize(f, 64<<10)
	var r io.Reader = br
	switch {
	case strings.HasSuffix(rel, ".ko.xz"):
		if r, err = xz.NewReader(br); err != nil {
			return "", nil, err
		}
	case strings.HasSuffix(rel, ".ko.zst"):
		d, err := zstd.NewReader(br)
		if err != nil {
			return "", nil, err
		}
		defer d.Close()
		r = d
	case strings.HasSuffix(rel, ".ko.gz"):
		if r, err = gzip.NewReader(br); err != nil {
			return "", nil, err
		}
	}
	data, err = io.ReadAll(r)
	if err != nil {
		return "", nil, fmt.Errorf("reading module %s: %w", rel, err)
	}
	name = rel[:strings.Index(rel, ".ko")+3]
	return name, data, nil
}
