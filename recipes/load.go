package recipes

import (
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// Options control variable expansion while loading.
type Options struct {
	// Vars are --set NAME=VALUE pairs; they win over the environment.
	Vars map[string]string
	// LookupEnv reads the environment; nil means os.LookupEnv. Tests pass
	// their own to stay independent of the host.
	LookupEnv func(string) (string, bool)
}

// MaxSize bounds a recipe file; anything larger is not a recipe.
const MaxSize = 1 << 20

// Load reads, decodes and validates the recipe at path. A returned error
// is an Errors value listing every problem found, or an I/O error.
func Load(path string, opts Options) (*Recipe, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, fmt.Errorf("reading recipe: %w", err)
	}
	r, err := Parse(data, path, opts)
	if r != nil {
		r.File = path
		if abs, err := filepath.Abs(path); err == nil {
			r.File = abs
		}
	}
	return r, err
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, MaxSize)
	}
	return data, nil
}

// Parse decodes and validates recipe bytes; source names them in errors.
// The recipe is returned even when invalid, so callers can show what was
// understood.
func Parse(data []byte, source string, opts Options) (*Recipe, error) {
	r := &Recipe{Source: source, Raw: data, pos: positions{}}
	r.SetDefaults()
	if len(data) > MaxSize {
		return r, Errors{{File: source, Kind: ErrSyntax, Msg: fmt.Sprintf("larger than %d bytes", MaxSize)}}
	}
	root, perr := parseYAML(data, source)
	if perr != nil {
		return r, Errors{perr}
	}
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	d := &decoder{
		file:    source,
		vars:    &expander{set: opts.Vars, lookup: lookup, used: map[string]bool{}, secret: map[string]bool{}},
		pos:     r.pos,
		anchors: map[string]ast.Node{},
	}
	if root != nil {
		d.decode(root, reflect.ValueOf(r).Elem(), "", fieldTags{}, 0)
	}
	r.Vars, r.secretVars = map[string]string{}, map[string]string{}
	for name := range d.vars.used {
		v, _ := d.vars.get(name)
		if d.vars.secret[name] {
			r.secretVars[name] = v
		} else {
			r.Vars[name] = v
		}
	}
	errs := d.errs
	r.normalize()
	for _, e := range r.validate() {
		if !related(e.Path, d.errs) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return r, errs.sorted()
	}
	return r, nil
}

// related reports whether a semantic error is about a value that already
// failed to decode (or contains one that did): it would only repeat that
// error in other words, such as "missing ip" after "invalid ip".
func related(keyPath string, decodeErrs Errors) bool {
	for _, d := range decodeErrs {
		if d.Path == "" {
			continue
		}
		if d.Path == keyPath || within(d.Path, keyPath) || within(keyPath, d.Path) {
			return true
		}
	}
	return false
}

func within(p, parent string) bool {
	return strings.HasPrefix(p, parent+".") || strings.HasPrefix(p, parent+"[")
}

// Marshal renders the normalized recipe as YAML, defaults filled in and
// secrets redacted: what krgimage will actually build.
func Marshal(r *Recipe) ([]byte, error) {
	return yaml.MarshalWithOptions(r, yaml.UseLiteralStyleIfMultiline(true))
}

//go:embed *.yaml
var shipped embed.FS

// DefaultRecipe is the recipe krgimage builds when given none.
const DefaultRecipe = "bookworm-nfsroot"

// Shipped lists the recipes embedded in the binary.
func Shipped() []string {
	entries, _ := fs.ReadDir(shipped, ".")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(out)
	return out
}

// LoadShipped loads an embedded recipe by name.
func LoadShipped(name string, opts Options) (*Recipe, error) {
	data, err := shipped.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no shipped recipe %q (shipped: %s)", name, strings.Join(Shipped(), ", "))
	}
	return Parse(data, "embedded:"+name+".yaml", opts)
}
