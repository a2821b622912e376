package recipes

import (
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// ProvisionConfig is the configuration of one provisioning step: its
// recipe schema. Package provision defines one per step type, in that
// type's file: the struct (its doc comment the user's reference), its
// defaults and its Validate, which reports what it refuses with
// v.Errorf, at the recipe's line and column. The decoder fills the struct
// from YAML by its field tags, as it does the rest of the recipe; a type
// of it with a SetDefaults method gets its defaults whenever the decoder
// makes one (a list element), and one with ShorthandField may be written
// as a bare list, which fills that field.
type ProvisionConfig interface {
	Validate(v *Validator, keyPath string)
}

// AccountMaker is a ProvisionConfig that creates accounts: validate
// refuses a name or a uid two of them give.
type AccountMaker interface {
	// Accounts lists the accounts by the index of their entry under
	// the step's key, with uid 0 meaning "chosen by the image".
	Accounts() []Account
}

// Account is one account a step creates.
type Account struct {
	Name string
	UID  int
}

// provisionTypes is the registry a provision entry's key selects from:
// each constructor returns the step's configuration with its defaults
// set, and the recipe's YAML is decoded over it.
var provisionTypes = map[string]func() ProvisionConfig{}

// RegisterProvision makes a provisioning step type known to recipes.
// Package provision registers each of its types when it is loaded; a
// program that reads recipes with provision entries links it. Registering
// a type twice is a programming error.
func RegisterProvision(typ string, defaults func() ProvisionConfig) {
	if _, dup := provisionTypes[typ]; dup {
		panic("recipes: provisioning step type " + typ + " registered twice")
	}
	provisionTypes[typ] = defaults
}

// ProvisionTypes lists the provisioning step types a recipe may use.
func ProvisionTypes() []string {
	out := make([]string, 0, len(provisionTypes))
	for k := range provisionTypes {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// NewProvisionConfig returns the default configuration of a provisioning
// step type.
func NewProvisionConfig(typ string) (ProvisionConfig, bool) {
	c, ok := provisionTypes[typ]
	if !ok {
		return nil, false
	}
	return c(), true
}

// ProvisionEntry is one entry of the provision list, written either as a
// bare step name ("- mtab") or as a mapping with the step name as its only
// key ("- users: [...]").
type ProvisionEntry struct {
	Type   string
	Config ProvisionConfig
	Pos    Pos
	// Path locates the entry in the recipe, e.g. provision[2].
	Path string
}

func (s *ProvisionEntry) decodeNode(d *decoder, n ast.Node, path string) {
	s.Pos = posOf(n)
	s.Path = path
	var value ast.Node
	switch t := n.(type) {
	case *ast.StringNode:
		s.Type = t.Value
	case *ast.MappingNode:
		if len(t.Values) != 1 {
			d.errAt(n, path, ErrType, "a provision entry has exactly one key, the step type (found %d)", len(t.Values))
			return
		}
		s.Type = t.Values[0].Key.GetToken().Value
		value = t.Values[0].Value
	default:
		d.errAt(n, path, ErrType, "expected a step name or a mapping with one step, got %s", kindName(n))
		return
	}
	c, ok := NewProvisionConfig(s.Type)
	if !ok && len(provisionTypes) == 0 {
		// A program that does not link package provision.
		d.errAt(n, path, ErrUnknownKey, "no provisioning step types are registered in this program (it does not import package provision)")
		return
	}
	if !ok {
		d.errAt(n, path, ErrUnknownKey, "unknown step type %q%s (allowed: %s)", s.Type, suggest(s.Type, ProvisionTypes()), strings.Join(ProvisionTypes(), ", "))
		return
	}
	s.Config = c
	if value != nil {
		d.decode(value, reflect.ValueOf(c).Elem(), path+"."+s.Type, fieldTags{}, 1)
	}
}

// MarshalYAML writes the entry back in its mapping form.
func (s ProvisionEntry) MarshalYAML() (any, error) {
	return map[string]any{s.Type: s.Config}, nil
}

// The locked forms (! or * and what follows) hold no ':' or space: the
// hash is a field of /etc/shadow, given to chpasswd -e as NAME:HASH.
var cryptRE = regexp.MustCompile(`^(\$[0-9a-z]+\$[./0-9A-Za-z$=,-]+|[!*][!-9;-~]*)$`)

// ValidHash reports whether s looks like a crypt(3) hash (or a locked
// "!"/"*" entry) rather than a password typed in the wrong place.
func ValidHash(s string) bool { return cryptRE.MatchString(s) }

// Secret is a value that must not appear in logs or printed recipes.
type Secret string

// MarshalText hides the value.
func (s Secret) MarshalText() ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	return []byte("<redacted>"), nil
}

// UnmarshalText stores the value.
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

// String hides the value from fmt and slog.
func (s Secret) String() string { return "<redacted>" }

// Reveal returns the value, for the one place that writes it.
func (s Secret) Reveal() string { return string(s) }
