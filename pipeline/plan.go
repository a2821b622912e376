package pipeline

import (
	"context"
	"fmt"
	"io"

	"github.com/krgimage/krgimage/internal/debarchive"
)

// Plan validates every step of a build and writes what each will do,
// without touching the output directory or the host. It is what
// "krgimage plan" and "krgimage build --dry-run" print.
func Plan(ctx context.Context, o Options, w io.Writer) error {
	r := o.Recipe
	final, err := o.layout()
	if err != nil {
		return err
	}
	out, root := final.Out(), final.Rootfs()
	steps := o.steps()
	env := o.env(root, out)
	fmt.Fprintf(w, "recipe   %s (%s)\n", r.Name, r.Source)
	if r.Description != "" {
		fmt.Fprintf(w, "         %s\n", r.Description)
	}
	fmt.Fprintf(w, "image    Debian %s %s, variant %s\n", r.Suite, r.Architecture, r.Variant)
	fmt.Fprintf(w, "mirror   %s (from %s)\n", debarchive.RedactURL(o.Mirror.URL), o.Mirror.Source)
	fmt.Fprintf(w, "output   %s\n", out)
	fmt.Fprintf(w, "rootfs   %s\n\n", root)
	width := 0
	for _, s := range steps {
		width = max(width, len(s.Name()))
	}
	for i, s := range steps {
		for j, line := range s.Describe(env.forStep(s)) {
			if j == 0 {
				fmt.Fprintf(w, "%2d. %-*s  %s\n", i+1, width, s.Name(), line)
			} else {
				fmt.Fprintf(w, "    %-*s  %s\n", width, "", line)
			}
		}
	}
	return validateAll(ctx, steps, env)
}
