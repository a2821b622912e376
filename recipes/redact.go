package recipes

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// MinMasked is the length, in bytes, of the shortest value Redactor
// masks. A shorter value is shown as it is wherever it occurs: "ro" is
// in "root" and "krg" in "krgimage", so masking such a value would garble
// every line, and where the marks fell would spell the value out. A
// credential that short protects nothing; plan names the variables it
// leaves shown.
const MinMasked = 4

// Masked reports whether Redactor hides the value of the variable name:
// the recipe was given it, does not list it in public_variables, and the
// value is long enough to mask.
func (r *Recipe) Masked(name string) bool {
	if v, ok := r.secretVars[name]; ok {
		return len(v) >= MinMasked
	}
	v, ok := r.Vars[name]
	return ok && !r.Public(name) && len(v) >= MinMasked
}

type mask struct{ value, mark string }

// Redactor returns the function that hides, in text meant for people
// (plan, build.json, the summary, logs, errors), the values of the
// variables the recipe was given and may not show: each becomes ${NAME}.
// That covers the variables that went into secret fields too, whatever
// public_variables says, as those fields never show. The image and the
// generated files keep the real values.
//
// The function works on the text alone: it masks a value wherever it
// occurs, also where it did not come from the variable.
func (r *Recipe) Redactor() func(string) string {
	var masks []mask
	add := func(name, v string) {
		if len(v) < MinMasked {
			return
		}
		mark := "${" + name + "}"
		masks = append(masks, mask{v, mark})
		// Messages and plan lines quote values with %q: a value with a
		// quote, a backslash or a control character shows escaped.
		if q := strconv.Quote(v); q[1:len(q)-1] != v {
			masks = append(masks, mask{q[1 : len(q)-1], mark})
		}
	}
	for name, v := range r.Vars {
		if !r.Public(name) {
			add(name, v)
		}
	}
	for name, v := range r.secretVars {
		add(name, v)
	}
	if len(masks) == 0 {
		return func(s string) string { return s }
	}
	// Longest first: a value that holds another is masked whole, not
	// left with the rest of it showing around the shorter one's mark.
	slices.SortFunc(masks, func(a, b mask) int {
		return cmp.Or(len(b.value)-len(a.value), strings.Compare(a.value, b.value), strings.Compare(a.mark, b.mark))
	})
	return func(s string) string {
		for _, m := range masks {
			s = strings.ReplaceAll(s, m.value, m.mark)
		}
		return s
	}
}
