package layout

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/krgimage/krgimage/recipes"
)

// BuiltRecipe is build.json's "recipe": what a build was made from, and
// enough to read the recipe again as the build did. The pipeline masks
// withheld variables' values in build.json except in the fields tagged
// redact:"keep", which boot-test reads the recipe again with.
type BuiltRecipe struct {
	Name   string `json:"name"`
	Source string `json:"source" redact:"keep"`
	// File is the recipe file's absolute path (none when embedded).
	File   string `json:"file,omitempty" redact:"keep"`
	SHA256 string `json:"sha256" redact:"keep"`
	// Variables are the recipe variables the build was given that
	// the recipe lists in public_variables, so that boot-test reads
	// the recipe as the build did.
	Variables map[string]string `json:"variables,omitempty" redact:"keep"`
	// Withheld names the other variables the build was given: their
	// values are not kept, boot-test asks for them again.
	Withheld     []string `json:"withheld_variables,omitempty"`
	Suite        string   `json:"suite"`
	Architecture string   `json:"architecture"`
	Variant      string   `json:"variant"`
}

// Built is what a finished build's build.json says of how it was made.
type Built struct {
	Recipe    BuiltRecipe `json:"recipe"`
	BuildTime time.Time   `json:"build_time"`
	Started   time.Time   `json:"started"`
}

// Errors of reading a build back.
var (
	// ErrNotBuilt: the directory holds no finished build.
	ErrNotBuilt = errors.New("not a finished build")
	// ErrBadReport: a build.json that is not one.
	ErrBadReport = errors.New("malformed build report")
	// ErrWithheld: the build was given variables whose values build.json
	// does not keep, and they were not given again.
	ErrWithheld = errors.New("withheld variables not given again")
)

// ReadBuilt reads the build.json of the build in out.
func ReadBuilt(out string) (*Built, error) {
	path := New(out, nil).BuildJSON()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (%w)", ErrNotBuilt, out, err)
	}
	if err != nil {
		return nil, err
	}
	var bt Built
	if err := DecodeReport(path, b, &bt); err != nil {
		return nil, err
	}
	return &bt, nil
}

// DecodeReport decodes data, the build.json at path, into v, and refuses
// one that is no build's report (ErrBadReport).
func DecodeReport(path string, data []byte, v any) error {
	var bt Built
	if err := json.Unmarshal(data, &bt); err != nil {
		return fmt.Errorf("%w %s: %v", ErrBadReport, path, err)
	}
	// Any JSON object decodes: one without these is no build's report.
	if bt.Recipe.Name == "" || bt.Started.IsZero() {
		return fmt.Errorf("%w %s: no recipe or start time: not a krgimage build.json", ErrBadReport, path)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w %s: %v", ErrBadReport, path, err)
	}
	return nil
}

// Load reads a recipe, a file or a shipped one by name, with the
// variables set (NAME=VALUE, the last of a name winning).
type Load func(src string, set []string) (*recipes.Recipe, error)

// Ref is what to load the recipe from: its file, else the name of the
// shipped recipe.
func (b BuiltRecipe) Ref() string {
	if b.File != "" {
		return b.File
	}
	if name, ok := strings.CutPrefix(b.Source, "embedded:"); ok {
		return strings.TrimSuffix(name, ".yaml")
	}
	return b.Source
}

// ReadRecipe reads the recipe the build was made from again, with its
// public variables, set (NAME=VALUE) over them. A withheld variable not
// given again is ErrWithheld: the recipe would read with its default,
// another recipe than the one built.
func (b BuiltRecipe) ReadRecipe(load Load, set []string) (*recipes.Recipe, error) {
	var vars []string
	for k, v := range b.Variables {
		vars = append(vars, k+"="+v)
	}
	slices.Sort(vars)
	r, err := load(b.Ref(), append(vars, set...))
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, name := range b.Withheld {
		if _, ok := r.Vars[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: the build was given %s, whose values build.json does not keep (the recipe does not list them in public_variables): give them again with --set or the environment",
			ErrWithheld, strings.Join(missing, ", "))
	}
	return r, nil
}
