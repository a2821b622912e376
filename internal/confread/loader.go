package confread

import (
	"fmt"
	"strings"
	"unicode"
)

// Directive is one line of a pxelinux or isolinux configuration: its
// keyword (upper-cased: syslinux ignores case) and the rest of the line.
type Directive struct {
	Key  string
	Args string
}

// Syslinux reads a pxelinux/isolinux configuration the way syslinux
// does: one directive a line, a keyword and the rest of the line as its
// argument, # lines ignored. There is no quoting: what a value holds is
// what the line holds.
func Syslinux(text string) ([]Directive, error) {
	var out []Directive
	err := lines(text, func(n int, l string) error {
		l = strings.TrimSpace(l)
		key, args, _ := strings.Cut(l, " ")
		if strings.ContainsFunc(l, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
			return syntaxf(n, "control character")
		}
		out = append(out, Directive{Key: strings.ToUpper(key), Args: strings.TrimSpace(args)})
		return nil
	})
	return out, err
}

// Command is one GRUB command: its words after quote removal.
type Command struct {
	Words []string
}

// GrubWords is Grub's commands as their words alone, for comparing a
// script with the commands it should hold.
func GrubWords(text string, vars ...string) ([][]string, error) {
	cmds, err := Grub(text, vars...)
	words := make([][]string, len(cmds))
	for i, c := range cmds {
		words[i] = c.Words
	}
	return words, err
}

// Grub reads a GRUB script the way GRUB's lexer splits it into words:
// whitespace-separated, with single quotes (nothing special inside),
// double quotes (\ escapes $ " \ and newline) and backslash escapes;
// ; and newline end a command; { and } are words of their own. An
// unquoted $ is an error. Our files expand nothing but vars, each only
// as a whole double-quoted word ("$net_default_ip"), read as the word
// $NAME.
func Grub(text string, vars ...string) ([]Command, error) {
	var out []Command
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			out = append(out, Command{Words: cur})
		}
		cur = nil
	}
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\n' || c == ';':
			flush()
			i++
		case c == ' ' || c == '\t':
			i++
		case c == '#' && len(cur) == 0:
			for i < len(text) && text[i] != '\n' {
				i++
			}
		default:
			w, n, err := grubWord(text[i:], vars)
			if err != nil {
				return nil, err
			}
			cur = append(cur, w)
			i += n
		}
	}
	flush()
	return out, nil
}

func grubWord(s string, vars []string) (string, int, error) {
	var b strings.Builder
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"' && expansion(s[i:], vars) != "":
			v := expansion(s[i:], vars)
			b.WriteString("$" + v)
			i += len(v) + 3
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return "", 0, fmt.Errorf("%w: unterminated single quote", ErrSyntax)
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 2
		case c == '"':
			n, err := doubleQuoted(s[i+1:], &b)
			if err != nil {
				return "", 0, fmt.Errorf("%w: %v", ErrSyntax, err)
			}
			i += n + 1
		case c == '\\' && i+1 < len(s):
			b.WriteByte(s[i+1])
			i += 2
		case c == '$' || c == '|' || c == '&' || c == '<' || c == '>':
			return "", 0, fmt.Errorf("%w: unquoted %q", ErrSyntax, c)
		case unicode.IsSpace(rune(c)) || c == ';':
			return b.String(), i, nil
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), i, nil
}

// expansion is the variable of vars that s starts expanding as a whole
// double-quoted word, or "".
func expansion(s string, vars []string) string {
	for _, v := range vars {
		if strings.HasPrefix(s, `"$`+v+`"`) {
			return v
		}
	}
	return ""
}
