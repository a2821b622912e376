package debarchive

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Entry is one source: the same fields whichever format it came from.
type Entry struct {
	Types      []string
	URIs       []string
	Suites     []string
	Components []string
	// Options holds bracketed one-line options or extra deb822 fields,
	// by their lowercased one-line names (signed-by, arch, trusted...):
	// a deb822 Architectures field is the option arch, its
	// space-separated list a comma-separated one.
	Options map[string]string
	Enabled bool
	File    string
	Line    int
}

// ParseOneLine reads the sources.list format:
//
//	deb [ option=value ... ] uri suite [component ...]
func ParseOneLine(r io.Reader, file string) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		e, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, n, err)
		}
		e.File, e.Line = file, n
		out = append(out, e)
	}
	return out, sc.Err()
}

func parseLine(line string) (Entry, error) {
	e := Entry{Enabled: true, Options: map[string]string{}}
	typ, rest, _ := strings.Cut(line, " ")
	if typ != "deb" && typ != "deb-src" {
		return e, fmt.Errorf("%w: type %q is not deb or deb-src", ErrSyntax, typ)
	}
	e.Types = []string{typ}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return e, fmt.Errorf("%w: unterminated [options]", ErrSyntax)
		}
		for _, opt := range strings.Fields(rest[1:end]) {
			k, v, ok := strings.Cut(opt, "=")
			if !ok {
				return e, fmt.Errorf("%w: option %q is not key=value", ErrSyntax, opt)
			}
			k = strings.ToLower(k)
			if err := checkOptionName(k); err != nil {
				return e, err
			}
			e.Options[k] = v
		}
		rest = rest[end+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 2 {
		return e, fmt.Errorf("%w: need a URI and a suite", ErrSyntax)
	}
	if strings.HasPrefix(f[0], "[") {
		// Written without options, it would read as them.
		return e, fmt.Errorf("%w: URI %q starts with [", ErrSyntax, f[0])
	}
	e.URIs = []string{f[0]}
	e.Suites = []string{f[1]}
	e.Components = f[2:]
	if !strings.HasSuffix(f[1], "/") && len(e.Components) == 0 {
		return e, fmt.Errorf("%w: suite %q needs at least one component", ErrSyntax, f[1])
	}
	return e, nil
}

// ParseDeb822 reads the deb822 *.sources format: stanzas of fields
// separated by blank lines, with continuation lines starting with a space.
func ParseDeb822(r io.Reader, file string) ([]Entry, error) {
	var out []Entry
	fields := map[string]string{}
	start, last := 0, ""
	flush := func() error {
		if len(fields) == 0 {
			return nil
		}
		e := Entry{Enabled: true, Options: map[string]string{}, File: file, Line: start}
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		// Sorted, so that a stanza giving one option twice (arch and
		// Architectures) always reads the same.
		sort.Strings(keys)
		for _, k := range keys {
			v := fields[k]
			if o, ok := optionOfField[k]; ok {
				k = o.line
				if o.list {
					v = strings.Join(strings.Fields(v), ",")
				}
			}
			switch k {
			case "types":
				e.Types = strings.Fields(v)
			case "uris":
				e.URIs = strings.Fields(v)
			case "suites":
				e.Suites = strings.Fields(v)
			case "components":
				e.Components = strings.Fields(v)
			case "enabled":
				e.Enabled = !strings.EqualFold(strings.TrimSpace(v), "no")
			default:
				e.Options[k] = strings.TrimSpace(v)
			}
		}
		fields = map[string]string{}
		if len(e.Types) == 0 || len(e.URIs) == 0 || len(e.Suites) == 0 {
			return fmt.Errorf("%s:%d: %w: a stanza needs Types, URIs and Suites", file, start, ErrSyntax)
		}
		out = append(out, e)
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case strings.TrimSpace(line) == "":
			if err := flush(); err != nil {
				return nil, err
			}
			last = ""
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return nil, fmt.Errorf("%s:%d: %w: continuation line without a field", file, n, ErrSyntax)
			}
			fields[last] += "\n" + strings.TrimSpace(line)
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("%s:%d: %w: %q is not a Field: value line", file, n, ErrSyntax, line)
			}
			if len(fields) == 0 {
				start = n
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadHost reads every source list under root's /etc/apt in the order APT
// does: sources.list, then sources.list.d in lexical order.
func ReadHost(root string) ([]Entry, error) {
	var out []Entry
	read := func(path string, parse func(io.Reader, string) ([]Entry, error)) error {
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		defer f.Close()
		es, err := parse(f, path)
		out = append(out, es...)
		return err
	}
	if err := read(filepath.Join(root, "etc/apt/sources.list"), ParseOneLine); err != nil {
		return nil, err
	}
	names, _ := filepath.Glob(filepath.Join(root, "etc/apt/sources.list.d/*"))
	sort.Strings(names)
	for _, n := range names {
		var err error
		switch {
		case strings.HasSuffix(n, ".list"):
			err = read(n, ParseOneLine)
		case strings.HasSuffix(n, ".sources"):
			err = read(n, ParseDeb822)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Archive picks the entry that points at a Debian archive (not its security
// or update suites) and returns its URI. kind "security" picks the security
// archive instead.
func Archive(entries []Entry, kind string) (uri string, from Entry, ok bool) {
	for _, e := range entries {
		if !e.Enabled || !contains(e.Types, "deb") || len(e.URIs) == 0 {
			continue
		}
		for _, s := range e.Suites {
			security := IsSecuritySuite(s)
			plain := !strings.Contains(s, "-") && !strings.Contains(s, "/")
			if (kind == "security" && security) || (kind != "security" && plain) {
				return strings.TrimRight(e.URIs[0], "/"), e, true
			}
		}
	}
	return "", Entry{}, false
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// OneLine renders e in the sources.list format, one line per type, URI
// and suite.
func (e Entry) OneLine() string {
	var b strings.Builder
	var opts []string
	for k, v := range e.Options {
		opts = append(opts, k+"="+v)
	}
	sort.Strings(opts)
	for _, t := range e.Types {
		for _, u := range e.URIs {
			for _, s := range e.Suites {
				b.WriteString(t)
				if len(opts) > 0 {
					b.WriteString(" [" + strings.Join(opts, " ") + "]")
				}
				b.WriteString(" " + u + " " + s)
				for _, c := range e.Components {
					b.WriteString(" " + c)
				}
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

// ParseLine parses one sources.list line, which may end in a comment.
func ParseLine(line string) (Entry, error) {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	return parseLine(strings.TrimSpace(line))
}
