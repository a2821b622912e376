// Package confread reads back the configuration formats krgimage writes
// (shell assignments, fstab, exports, ISC dhcpd, pxelinux and GRUB), the
// way their consumers tokenise them. Tests use it to hold the writers to
// a property: a generated file says exactly what the recipe asked for,
// one value per field, and no directive besides. The readers are strict:
// what the writers never produce (a command substitution, an unquoted
// expansion) is an error, not something to interpret.
package confread

import (
	"errors"
	"fmt"
	"strings"
)

// ErrSyntax is what every reader returns for text it does not accept.
var ErrSyntax = errors.New("syntax")

func syntaxf(line int, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrSyntax, line, fmt.Sprintf(format, args...))
}

// lines calls f with each line that is neither blank nor a comment.
func lines(text string, f func(n int, line string) error) error {
	for i, l := range strings.Split(text, "\n") {
		t := strings.TrimLeft(l, " \t")
		if t == "" || t[0] == '#' {
			continue
		}
		if err := f(i+1, l); err != nil {
			return err
		}
	}
	return nil
}

// Assign is one shell variable assignment.
type Assign struct {
	Export bool
	Name   string
	Value  string
}

// Shell reads a file of shell assignments (NAME=WORD, optionally after
// export), each WORD made of plain characters, single-quoted and
// double-quoted parts, as sh reads it. Anything that would make the shell
// do more than assign (expansions, substitutions, operators, a second
// command) is an error.
func Shell(text string) ([]Assign, error) {
	var out []Assign
	err := lines(text, func(n int, l string) error {
		l = strings.TrimLeft(l, " \t")
		a := Assign{}
		if rest, ok := strings.CutPrefix(l, "export "); ok {
			a.Export, l = true, strings.TrimLeft(rest, " ")
		}
		name, word, ok := strings.Cut(l, "=")
		if !ok || !shellName(name) {
			return syntaxf(n, "not an assignment: %q", l)
		}
		v, rest, err := shellWord(word)
		if err != nil {
			return syntaxf(n, "%s: %v", name, err)
		}
		if strings.TrimLeft(rest, " \t") != "" {
			return syntaxf(n, "%s: more than one word: %q", name, rest)
		}
		a.Name, a.Value = name, v
		out = append(out, a)
		return nil
	})
	return out, err
}

func shellName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// shellWord reads one word from the start of s, returning its value and
// what follows it.
func shellWord(s string) (string, string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return "", "", errors.New("unterminated single quote")
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case c == '"':
			n, err := doubleQuoted(s[i+1:], &b)
			if err != nil {
				return "", "", err
			}
			i += n + 1
		case c == ' ' || c == '\t':
			return b.String(), s[i:], nil
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case strings.IndexByte("$`\\|&;<>()*?[]#~{}!", c) >= 0 || c < 0x20 || c == 0x7f:
			return "", "", fmt.Errorf("unquoted %q", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), "", nil
}

// doubleQuoted reads the inside of a double-quoted part up to its closing
// quote, returning how many bytes that took (the quote included).
func doubleQuoted(s string, b *strings.Builder) (int, error) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return i + 1, nil
		case '$', '`':
			return 0, fmt.Errorf("expansion %q inside double quotes", c)
		case '\\':
			if i+1 < len(s) && strings.IndexByte("$`\"\\", s[i+1]) >= 0 {
				i++
				b.WriteByte(s[i])
				continue
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return 0, errors.New("unterminated double quote")
}

// unOctal decodes the escapes getmntent reads (\040 \011 \012 \134);
// any other backslash is kept, as getmntent keeps it.
func unOctal(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// fields splits a line at runs of spaces and tabs, as getmntent does.
func fields(l string) []string {
	return strings.FieldsFunc(l, func(r rune) bool { return r == ' ' || r == '\t' })
}

// FstabEntry is one line of fstab, its escapes decoded.
type FstabEntry struct {
	Source, Target, Type, Options string
	Dump, Pass                    string
}

// Fstab reads fstab as getmntent does: six whitespace-separated fields
// (the last two optional) with octal escapes.
func Fstab(text string) ([]FstabEntry, error) {
	var out []FstabEntry
	err := lines(text, func(n int, l string) error {
		f := fields(l)
		if len(f) < 4 || len(f) > 6 {
			return syntaxf(n, "%d fields", len(f))
		}
		for len(f) < 6 {
			f = append(f, "0")
		}
		for i := range f {
			f[i] = unOctal(f[i])
		}
		out = append(out, FstabEntry{f[0], f[1], f[2], f[3], f[4], f[5]})
		return nil
	})
	return out, err
}

// Export is one exports line: a path and its clients with their options.
type Export struct {
	Path    string
	Clients []ExportClient
}

// ExportClient is one CLIENT(OPTIONS) field of an exports line.
type ExportClient struct {
	Host    string
	Options []string
}

// Exports reads exports(5) as exportfs does: a path (octal escapes, or in
// double quotes), then clients, each HOST(OPTIONS) with no space inside.
func Exports(text string) ([]Export, error) {
	var out []Export
	err := lines(text, func(n int, l string) error {
		f := fields(l)
		if len(f) < 2 {
			return syntaxf(n, "an export needs a path and a client")
		}
		if strings.HasPrefix(f[0], `"`) {
			return syntaxf(n, "a quoted path: krgimage writes escapes")
		}
		e := Export{Path: unOctal(f[0])}
		for _, c := range f[1:] {
			host, opts, ok := strings.Cut(c, "(")
			if !ok || !strings.HasSuffix(opts, ")") || strings.ContainsAny(opts[:len(opts)-1], "()") || strings.ContainsAny(host, ")") {
				return syntaxf(n, "client %q is not HOST(OPTIONS)", c)
			}
			e.Clients = append(e.Clients, ExportClient{Host: host, Options: strings.Split(strings.TrimSuffix(opts, ")"), ",")})
		}
		out = append(out, e)
		return nil
	})
	return out, err
}
