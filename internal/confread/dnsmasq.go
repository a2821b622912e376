package confread

import (
	"fmt"
	"strings"
)

// DnsmasqOption is one line of a dnsmasq configuration file: the option's
// name and its comma-separated fields, quotes removed.
type DnsmasqOption struct {
	Name   string
	Fields []string
}

// Dnsmasq reads a dnsmasq configuration file as dnsmasq does: a line is
// NAME or NAME=VALUE; the value's fields are separated by commas outside
// double quotes, inside which \" and \\ are escapes. A # outside quotes,
// a control character or an unterminated quote is an error: the writer
// never puts one there.
func Dnsmasq(text string) ([]DnsmasqOption, error) {
	var out []DnsmasqOption
	err := lines(text, func(n int, l string) error {
		name, value, hasValue := strings.Cut(l, "=")
		if name == "" || strings.ContainsAny(name, " \t\",#") {
			return syntaxf(n, "not an option: %q", l)
		}
		o := DnsmasqOption{Name: name}
		if hasValue {
			fields, err := dnsmasqFields(value)
			if err != nil {
				return syntaxf(n, "%s: %v", name, err)
			}
			o.Fields = fields
		}
		out = append(out, o)
		return nil
	})
	return out, err
}

func dnsmasqFields(v string) ([]string, error) {
	var fields []string
	var cur strings.Builder
	quoted := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return nil, fmt.Errorf("control character %q", c)
		case quoted && c == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\'):
			i++
			cur.WriteByte(v[i])
		case quoted && c == '\\':
			return nil, fmt.Errorf("an escape dnsmasq reads differently: %q", v[i:])
		case c == '"':
			quoted = !quoted
		case !quoted && c == ',':
			fields = append(fields, cur.String())
			cur.Reset()
		case !quoted && (c == '#' || c == ' ' || c == '\t'):
			return nil, fmt.Errorf("%q outside quotes", c)
		default:
			cur.WriteByte(c)
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote")
	}
	return append(fields, cur.String()), nil
}
