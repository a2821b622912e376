package confread

import (
	"errors"
	"fmt"
	"strings"
)

// Token is one token of ISC dhcpd's configuration language.
type Token struct {
	Text string
	// Quoted marks a string token: Text is its value, escapes decoded.
	Quoted bool
}

// Stmt is one dhcpd statement: its words up to the ; or the block they
// open.
type Stmt struct {
	Words []Token
	Block []Stmt
	// Braced marks a statement that opened a block (host x { ... }).
	Braced bool
}

// Head is the statement's words as text, strings shown quoted, for
// comparing a statement with what was expected.
func (s Stmt) Head() string {
	w := make([]string, len(s.Words))
	for i, t := range s.Words {
		w[i] = t.Text
		if t.Quoted {
			w[i] = fmt.Sprintf("%q", t.Text)
		}
	}
	return strings.Join(w, " ")
}

// DHCP reads dhcpd.conf into statements, as dhcpd's lexer splits it:
// # comments to the end of the line, strings in double quotes with \" \\
// \t \n \r and octal \NNN escapes, and { } ; as separators.
func DHCP(text string) ([]Stmt, error) {
	toks, err := dhcpTokens(text)
	if err != nil {
		return nil, err
	}
	stmts, rest, err := dhcpBlock(toks, false)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("%w: unexpected %q", ErrSyntax, rest[0].Text)
	}
	return stmts, nil
}

// dhcpBlock reads statements until the end or, inside a block, its }.
func dhcpBlock(toks []Token, inner bool) ([]Stmt, []Token, error) {
	var out []Stmt
	var cur Stmt
	for len(toks) > 0 {
		t := toks[0]
		toks = toks[1:]
		switch {
		case !t.Quoted && t.Text == ";":
			out = append(out, cur)
			cur = Stmt{}
		case !t.Quoted && t.Text == "{":
			block, rest, err := dhcpBlock(toks, true)
			if err != nil {
				return nil, nil, err
			}
			cur.Block, cur.Braced, toks = block, true, rest
			out = append(out, cur)
			cur = Stmt{}
		case !t.Quoted && t.Text == "}":
			if !inner || len(cur.Words) > 0 {
				return nil, nil, fmt.Errorf("%w: unexpected }", ErrSyntax)
			}
			return out, toks, nil
		default:
			cur.Words = append(cur.Words, t)
		}
	}
	if inner || len(cur.Words) > 0 {
		return nil, nil, fmt.Errorf("%w: unexpected end of file", ErrSyntax)
	}
	return out, nil, nil
}

func dhcpTokens(s string) ([]Token, error) {
	var out []Token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}' || c == ',' || c == '(' || c == ')' || c == '=':
			out = append(out, Token{Text: string(c)})
			i++
		case c == '"':
			v, n, err := dhcpString(s[i+1:])
			if err != nil {
				return nil, err
			}
			out = append(out, Token{Text: v, Quoted: true})
			i += n + 1
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \t\r\n#;{},()=\"", s[j]) < 0 {
				j++
			}
			out = append(out, Token{Text: s[i:j]})
			i = j
		}
	}
	return out, nil
}

// dhcpString decodes a string's inside up to its closing quote.
func dhcpString(s string) (string, int, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			return b.String(), i + 1, nil
		case '\n':
			return "", 0, fmt.Errorf("%w: newline in a string", ErrSyntax)
		case '\\':
			if i+1 >= len(s) {
				return "", 0, errors.Join(ErrSyntax, errors.New("escape at the end"))
			}
			i++
			switch e := s[i]; {
			case e == 't':
				b.WriteByte('\t')
			case e == 'n':
				b.WriteByte('\n')
			case e == 'r':
				b.WriteByte('\r')
			case e >= '0' && e <= '7':
				v, n := 0, 0
				for n < 3 && i+n < len(s) && s[i+n] >= '0' && s[i+n] <= '7' {
					v = v*8 + int(s[i+n]-'0')
					n++
				}
				if v > 255 {
					return "", 0, fmt.Errorf("%w: octal escape out of range", ErrSyntax)
				}
				b.WriteByte(byte(v))
				i += n - 1
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("%w: unterminated string", ErrSyntax)
}
