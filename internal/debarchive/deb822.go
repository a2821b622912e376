package debarchive

import (
	"fmt"
	"sort"
	"strings"
)

// option pairs a one-line option with its deb822 field (sources.list(5));
// list options hold comma-separated values in one format and
// space-separated ones in the other.
type option struct {
	line, field string
	list        bool
}

var options = []option{
	{"arch", "Architectures", true},
	{"arch+", "Architectures-Add", true},
	{"arch-", "Architectures-Remove", true},
	{"lang", "Languages", true},
	{"lang+", "Languages-Add", true},
	{"lang-", "Languages-Remove", true},
	{"target", "Targets", true},
	{"target+", "Targets-Add", true},
	{"target-", "Targets-Remove", true},
	{"pdiffs", "PDiffs", false},
	{"by-hash", "By-Hash", false},
	{"allow-insecure", "Allow-Insecure", false},
	{"allow-weak", "Allow-Weak", false},
	{"allow-downgrade-to-insecure", "Allow-Downgrade-To-Insecure", false},
	{"trusted", "Trusted", false},
	{"signed-by", "Signed-By", false},
	{"check-valid-until", "Check-Valid-Until", false},
	{"valid-until-min", "Valid-Until-Min", false},
	{"valid-until-max", "Valid-Until-Max", false},
	{"check-date", "Check-Date", false},
	{"date-max-future", "Date-Max-Future", false},
	{"inrelease-path", "InRelease-Path", false},
	{"snapshot", "Snapshot", false},
}

var (
	// optionOfField maps a lowercased deb822 field to its option.
	optionOfField = map[string]option{}
	fieldOfOption = map[string]string{}
)

func init() {
	for _, o := range options {
		optionOfField[strings.ToLower(o.field)] = o
		fieldOfOption[o.line] = o.field
	}
}

// checkOptionName refuses a one-line option no deb822 stanza could hold
// as itself: one named like a stanza's own fields, or like another
// option's field, or with characters a field name cannot have.
func checkOptionName(k string) error {
	switch k {
	case "types", "uris", "suites", "components", "enabled":
		return fmt.Errorf("%w: option %q names a source's own field", ErrSyntax, k)
	}
	if o, ok := optionOfField[k]; ok && o.line != k {
		return fmt.Errorf("%w: option %q is written %s=", ErrSyntax, k, o.line)
	}
	if k == "" || strings.IndexFunc(k, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("-+_.", r))
	}) >= 0 {
		return fmt.Errorf("%w: option name %q", ErrSyntax, k)
	}
	return nil
}

// Deb822 renders e as one stanza of the deb822 *.sources format, without
// the blank line that separates it from the next, and without its
// Enabled field when it is enabled.
func (e Entry) Deb822() string {
	var b strings.Builder
	field := func(name string, vs []string) {
		if len(vs) > 0 {
			fmt.Fprintf(&b, "%s: %s\n", name, strings.Join(vs, " "))
		}
	}
	field("Types", e.Types)
	field("URIs", e.URIs)
	field("Suites", e.Suites)
	field("Components", e.Components)
	if !e.Enabled {
		b.WriteString("Enabled: no\n")
	}
	keys := make([]string, 0, len(e.Options))
	for k := range e.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name, ok := fieldOfOption[k]
		if !ok {
			name = k
		}
		// A value of several lines (a key block) continues on lines
		// that start with a space.
		fmt.Fprintf(&b, "%s: %s\n", name, strings.ReplaceAll(e.Options[k], "\n", "\n "))
	}
	return b.String()
}
