package recipes

import (
	"fmt"
	"strings"
)

// expander substitutes ${NAME} and ${NAME:-default} in recipe strings.
// Values come from --set first, then the environment. "$$" is a literal
// dollar; a lone "$" not followed by "{" is left alone so that shell
// snippets like "$HOME" survive.
type expander struct {
	set    map[string]string
	lookup func(string) (string, bool)
	used   map[string]bool
	// secret marks the variables expanded into secret fields; inSecret
	// is set while one is decoded.
	secret   map[string]bool
	inSecret bool
}

func (x *expander) get(name string) (string, bool) {
	v, ok := x.set[name]
	if !ok && x.lookup != nil {
		v, ok = x.lookup(name)
	}
	if ok {
		x.used[name] = true
		if x.inSecret {
			x.secret[name] = true
		}
	}
	return v, ok
}

func ValidVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case i > 0 && c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}

func (x *expander) expand(s string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		expr := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !ValidVarName(name) {
			return "", fmt.Errorf("invalid variable name %q in ${%s} (letters, digits and _)", name, expr)
		}
		v, ok := x.get(name)
		switch {
		case ok && (v != "" || !hasDef):
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		default:
			return "", fmt.Errorf("%w ${%s}: set it in the environment or with --set %s=VALUE", ErrUndefinedVar, name, name)
		}
		i += 2 + end
	}
	return b.String(), nil
}
