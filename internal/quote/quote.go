// Package quote writes values into the configuration formats krgimage
// generates, each with that format's own quoting: POSIX shell single
// quotes for what a shell sources, ISC dhcpd's string escapes, the octal
// escapes of fstab and exports, GRUB's quotes, and nothing at all, only
// plain text, for line-based formats that have no quoting (pxelinux,
// isolinux). Recipe validation refuses what a format cannot hold; these
// writers make sure that a value that reaches them anyway stays one value.
package quote

import (
	"fmt"
	"strings"
	"unicode"
)

// shellSafe are the bytes a shell word may hold unquoted: no expansion,
// globbing, word splitting or operator starts with them.
func shellSafe(r rune) bool {
	return r < unicode.MaxASCII && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._/:,+@%=-", r))
}

// Shell returns s as one POSIX shell word: unchanged when no byte of it
// means anything to a shell, else in single quotes, inside which nothing
// is special ('\” closes, escapes and reopens them for a quote itself).
func Shell(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !shellSafe(r) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ShellValue returns s as the value of a shell assignment the way Debian's
// /etc/default files write them, in double quotes, when nothing in s is
// special inside double quotes ($ ` " \ and, for bash, !); else as Shell
// does, in single quotes.
func ShellValue(s string) string {
	if strings.ContainsAny(s, "$`\"\\!'") || strings.IndexFunc(s, IsControl) >= 0 {
		return Shell(s)
	}
	return `"` + s + `"`
}

// DHCP returns s as an ISC dhcpd string: in double quotes, with \" and
// \\ escaped and every byte outside printable ASCII as an octal escape,
// which dhcpd's lexer reads back as that byte.
func DHCP(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\%03o", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Octal returns s as one field of fstab or exports: space, tab, newline
// and backslash written as the octal escapes (\040 \011 \012 \134) that
// getmntent and exportfs decode. Those are the only escapes both read:
// other characters those formats cannot hold are refused by validation.
func Octal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, "\\%03o", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Grub returns s as one GRUB script word: unchanged when plain, else in
// single quotes as in a POSIX shell, GRUB's own rule. GRUB has no escape
// for a control character: those become spaces first (validation refuses
// them).
func Grub(s string) string {
	return Shell(Plain(s))
}

// Plain returns s with every control character (and Unicode line and
// paragraph separator) turned into a space, for formats without quoting
// whose lines are directives: a value can then never start a line of its
// own.
func Plain(s string) string {
	if strings.IndexFunc(s, IsControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// Word returns s as one whitespace-separated word of a format without
// quoting (a kernel argument in pxelinux's append line, a pxelinux
// label): Plain, with spaces replaced too, so that it stays one word.
func Word(s string) string {
	return strings.Map(func(r rune) rune {
		if IsControl(r) || unicode.IsSpace(r) {
			return '_'
		}
		return r
	}, s)
}

// Words joins values into one line of a format without quoting, each
// value kept one word (Word).
func Words(vs []string) string {
	w := make([]string, len(vs))
	for i, v := range vs {
		w[i] = Word(v)
	}
	return strings.Join(w, " ")
}

// GrubWords joins values into GRUB script words (Grub).
func GrubWords(vs []string) string {
	w := make([]string, len(vs))
	for i, v := range vs {
		w[i] = Grub(v)
	}
	return strings.Join(w, " ")
}

// IsControl reports the characters no line-based format can hold: C0 and
// C1 controls, DEL, and the Unicode line and paragraph separators.
func IsControl(r rune) bool {
	return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u2028' || r == '\u2029'
}

// DnsmasqString returns s as a dnsmasq quoted string: in double quotes,
// inside which a comma is text, with \" and \\ escaped. A control
// character is left out and a # becomes _: dnsmasq has no escape for the
// one, and whether it reads the other as a comment inside quotes is not
// worth trusting.
func DnsmasqString(s string) string { return backslashQuoted(s, '#') }

// DnsmasqField returns s as one unquoted field of a dnsmasq option, where a
// comma ends the field and # starts a comment: those, spaces and control
// characters become _.
func DnsmasqField(s string) string {
	return strings.Map(func(r rune) rune {
		if IsControl(r) || unicode.IsSpace(r) || r == ',' || r == '#' || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, s)
}

// Nginx returns s as an nginx quoted string: in double quotes, with \" and
// \\ escaped. nginx has no escape for the $ that starts a variable, so a
// $ becomes _, and a control character is left out.
func Nginx(s string) string { return backslashQuoted(s, '$') }

// backslashQuoted is s in double quotes with \" and \\ escaped, the
// format's one unescapable special character made _ and control
// characters left out: the quoted strings of dnsmasq and nginx.
func backslashQuoted(s string, special rune) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == special:
			b.WriteByte('_')
		case IsControl(r):
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
