package pipeline

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/recipes"
)

// Plan validates every step of a build and writes what each will do,
// without touching the output directory or the host. It is what
// "krgimage plan" and "krgimage build --dry-run" print. Every line goes
// through the recipe's Redactor: a withheld variable's value may have
// been expanded into any field a step describes.
func Plan(ctx context.Context, o Options, w io.Writer) error {
	r := o.Recipe
	final, err := o.layout()
	if err != nil {
		return err
	}
	out, root := final.Out(), final.Rootfs()
	steps := o.steps()
	env := o.env(root, out)
	var b strings.Builder
	fmt.Fprintf(&b, "recipe   %s (%s)\n", r.Name, r.Source)
	if r.Description != "" {
		fmt.Fprintf(&b, "         %s\n", r.Description)
	}
	if vars := planVars(r); vars != "" {
		fmt.Fprintf(&b, "vars     %s\n", vars)
	}
	fmt.Fprintf(&b, "image    Debian %s %s, variant %s\n", r.Suite, r.Architecture, r.Variant)
	fmt.Fprintf(&b, "mirror   %s (from %s)\n", debarchive.RedactURL(o.Mirror.URL), o.Mirror.Source)
	fmt.Fprintf(&b, "output   %s\n", out)
	fmt.Fprintf(&b, "rootfs   %s\n\n", root)
	width := 0
	for _, s := range steps {
		width = max(width, len(s.Name()))
	}
	for i, s := range steps {
		for j, line := range s.Describe(env.forStep(s)) {
			if j == 0 {
				fmt.Fprintf(&b, "%2d. %-*s  %s\n", i+1, width, s.Name(), line)
			} else {
				fmt.Fprintf(&b, "    %-*s  %s\n", width, "", line)
			}
		}
	}
	if _, err := io.WriteString(w, r.Redactor()(b.String())); err != nil {
		return err
	}
	return validateAll(ctx, steps, env)
}

// planVars lists the variables the recipe was given: the public ones with
// their values, the others by name, saying which are too short to mask.
func planVars(r *recipes.Recipe) string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(r.Vars)) {
		switch {
		case r.Public(name):
			out = append(out, name+"="+r.Vars[name])
		case r.Masked(name):
			out = append(out, name+" (withheld)")
		default:
			out = append(out, fmt.Sprintf("%s (withheld, but shorter than %d characters: shown where it occurs)", name, recipes.MinMasked))
		}
	}
	return strings.Join(out, ", ")
}
