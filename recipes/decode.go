package recipes

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/goccy/go-yaml/parser"

	"github.com/krgimage/krgimage/internal/quote"
)

// The decoder walks goccy/go-yaml's AST itself instead of calling
// yaml.Unmarshal with yaml.Strict(): Strict stops at the first problem,
// and a recipe author wants every mistake, each with its line and column.

// Limits that keep a hostile recipe (alias bombs, deep nesting) cheap.
const (
	maxDepth = 64
	maxNodes = 200_000
)

type decoder struct {
	file    string
	vars    *expander
	errs    Errors
	pos     positions
	anchors map[string]ast.Node
	nodes   int
}

// fieldTags are the validation hints a struct field carries.
type fieldTags struct {
	enum     []string
	check    string
	noExpand bool
	// multiline allows control characters: a script or a file's content,
	// written as data and never into a line of a generated file.
	multiline bool
	// item marks a list item: an empty one is never "not set".
	item bool
}

func tagsOf(f reflect.StructField) fieldTags {
	t := fieldTags{check: f.Tag.Get("check"), noExpand: f.Tag.Get("expand") == "no", multiline: f.Tag.Get("text") == "multiline"}
	if e := f.Tag.Get("enum"); e != "" {
		t.enum = strings.Split(e, ",")
	}
	return t
}

// setDefaulter is implemented by types whose zero value is not their
// default; the decoder calls it whenever it creates such a value.
type setDefaulter interface{ SetDefaults() }

// sequenceShorthand is implemented by structs that may be written as a
// bare list, which then fills the named field.
type sequenceShorthand interface{ ShorthandField() string }

// nodeDecoder is implemented by types that decode themselves.
type nodeDecoder interface {
	decodeNode(d *decoder, n ast.Node, path string)
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	secretType      = reflect.TypeFor[Secret]()
	nodeDecoderType = reflect.TypeFor[nodeDecoder]()
)

func parseYAML(data []byte, file string) (ast.Node, *Error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		e := &Error{File: file, Kind: ErrSyntax, Msg: err.Error()}
		var ye yaml.Error
		if errors.As(err, &ye) {
			e.Msg = ye.GetMessage()
			if tk := ye.GetToken(); tk != nil {
				e.Pos = Pos{tk.Position.Line, tk.Position.Column}
			}
		}
		return nil, e
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return nil, nil
	}
	if len(f.Docs) > 1 {
		tk := f.Docs[1].Start
		if tk == nil {
			tk = f.Docs[1].GetToken()
		}
		e := &Error{File: file, Kind: ErrSyntax, Msg: "a recipe is a single YAML document"}
		if tk != nil {
			e.Pos = Pos{tk.Position.Line, tk.Position.Column}
		}
		return nil, e
	}
	return f.Docs[0].Body, nil
}

func posOf(n ast.Node) Pos {
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 {
		// A mapping's own token is its first ':'; its first key is where
		// a reader looks.
		n = m.Values[0].Key
	}
	if tk := n.GetToken(); tk != nil {
		return Pos{tk.Position.Line, tk.Position.Column}
	}
	return Pos{}
}

func (d *decoder) errAt(n ast.Node, path string, kind error, format string, args ...any) {
	var p Pos
	if n != nil {
		p = posOf(n)
	}
	d.errs = append(d.errs, &Error{File: d.file, Pos: p, Path: path, Msg: fmt.Sprintf(format, args...), Kind: kind})
}

// resolve follows anchors, aliases and tags to the node holding the value.
func (d *decoder) resolve(n ast.Node, path string) ast.Node {
	for range maxDepth {
		switch t := n.(type) {
		case *ast.AnchorNode:
			d.anchors[t.Name.GetToken().Value] = t.Value
			n = t.Value
		case *ast.AliasNode:
			name := t.Value.GetToken().Value
			target, ok := d.anchors[name]
			if !ok {
				d.errAt(n, path, ErrSyntax, "alias *%s refers to no earlier anchor", name)
				return nil
			}
			n = target
		case *ast.TagNode:
			n = t.Value
		default:
			return n
		}
	}
	d.errAt(n, path, ErrSyntax, "anchors and aliases nest too deeply")
	return nil
}

func kindName(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode:
		return "an integer"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	}
	return n.Type().String()
}

func (d *decoder) decode(n ast.Node, v reflect.Value, path string, tags fieldTags, depth int) {
	if n == nil {
		return
	}
	d.nodes++
	if d.nodes > maxNodes || depth > maxDepth {
		if d.nodes == maxNodes+1 || depth == maxDepth+1 {
			d.errAt(n, path, ErrSyntax, "recipe too large or too deeply nested")
		}
		return
	}
	n = d.resolve(n, path)
	if n == nil {
		return
	}
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = posOf(n)
	}
	if _, ok := n.(*ast.NullNode); ok {
		if tags.item && v.Kind() == reflect.String {
			// "[rw, null]" is an empty item, not a default.
			d.checkScalar(n, path, tags, "")
			return
		}
		if tags.item && v.CanAddr() && v.Addr().Type().Implements(textUnmarshaler) {
			// "dns: [null]" would keep a zero address, written as
			// "invalid IP".
			if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText(nil); err != nil {
				d.errAt(n, path, ErrInvalid, "invalid value \"\": %v", err)
			}
			return
		}
		// An empty value keeps the default: "mtab:" means "mtab with its
		// defaults".
		if v.Kind() == reflect.Pointer && v.IsNil() {
			d.alloc(v)
		}
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshaler) {
		d.vars.inSecret = v.Type() == secretType
		s, ok := d.scalar(n, path, tags, "a string")
		d.vars.inSecret = false
		if !ok {
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.errAt(n, path, ErrInvalid, "invalid value %q: %v", s, err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			d.alloc(v)
		}
		d.decode(n, v.Elem(), path, tags, depth+1)
	case reflect.Struct:
		d.decodeStruct(n, v, path, depth)
	case reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			d.errAt(n, path, ErrType, "expected a list, got %s", kindName(n))
			return
		}
		out := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
		itemTags := tags
		itemTags.item = true
		for i, item := range seq.Values {
			el := out.Index(i)
			if sd, ok := el.Addr().Interface().(setDefaulter); ok {
				sd.SetDefaults()
			}
			d.decode(item, el, fmt.Sprintf("%s[%d]", path, i), itemTags, depth+1)
		}
		v.Set(out)
	case reflect.Map:
		m, ok := n.(*ast.MappingNode)
		if !ok {
			d.errAt(n, path, ErrType, "expected a mapping, got %s", kindName(n))
			return
		}
		out := reflect.MakeMapWithSize(v.Type(), len(m.Values))
		valueTags := tags
		valueTags.item = false
		for _, mv := range m.Values {
			key := mv.Key.GetToken().Value
			el := reflect.New(v.Type().Elem()).Elem()
			d.decode(mv.Value, el, path+"."+key, valueTags, depth+1)
			out.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), el)
		}
		v.Set(out)
	case reflect.String:
		if s, ok := d.scalar(n, path, tags, "a string"); ok {
			v.SetString(s)
			d.checkScalar(n, path, tags, s)
		}
	case reflect.Bool:
		d.decodeBool(n, v, path)
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint32:
		d.decodeInt(n, v, path, tags)
	default:
		panic(fmt.Sprintf("recipes: no decoder for %s at %s", v.Type(), path))
	}
}

func (d *decoder) alloc(v reflect.Value) {
	p := reflect.New(v.Type().Elem())
	if sd, ok := p.Interface().(setDefaulter); ok {
		sd.SetDefaults()
	}
	v.Set(p)
}

type field struct {
	index []int
	tags  fieldTags
}

func structFields(t reflect.Type) (map[string]field, []string) {
	fields := map[string]field{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || name == "" {
			continue
		}
		fields[name] = field{index: f.Index, tags: tagsOf(f)}
		names = append(names, name)
	}
	sort.Strings(names)
	return fields, names
}

func (d *decoder) decodeStruct(n ast.Node, v reflect.Value, path string, depth int) {
	if seq, ok := n.(*ast.SequenceNode); ok {
		if sh, ok := v.Addr().Interface().(sequenceShorthand); ok {
			fields, _ := structFields(v.Type())
			f := fields[sh.ShorthandField()]
			d.decode(seq, v.FieldByIndex(f.index), path, f.tags, depth+1)
			return
		}
	}
	m, ok := n.(*ast.MappingNode)
	if !ok {
		d.errAt(n, path, ErrType, "expected a mapping, got %s", kindName(n))
		return
	}
	fields, names := structFields(v.Type())
	for _, mv := range m.Values {
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			d.decodeMerge(mv.Value, v, path, depth)
			continue
		}
		key := mv.Key.GetToken().Value
		f, ok := fields[key]
		if !ok {
			d.errAt(mv.Key, join(path, key), ErrUnknownKey, "unknown key%s (allowed: %s)", suggest(key, names), strings.Join(names, ", "))
			continue
		}
		d.decode(mv.Value, v.FieldByIndex(f.index), join(path, key), f.tags, depth+1)
	}
}

func (d *decoder) decodeMerge(n ast.Node, v reflect.Value, path string, depth int) {
	n = d.resolve(n, path)
	switch t := n.(type) {
	case *ast.MappingNode:
		d.decodeStruct(t, v, path, depth+1)
	case *ast.SequenceNode:
		for _, item := range t.Values {
			d.decodeMerge(item, v, path, depth+1)
		}
	case nil:
	default:
		d.errAt(n, path, ErrType, "<< merges a mapping, got %s", kindName(n))
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest offers the closest allowed key for a likely typo.
func suggest(key string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(key, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// scalar returns a scalar node's text with variables expanded; want names
// the expected type for the error when n is not a scalar.
func (d *decoder) scalar(n ast.Node, path string, tags fieldTags, want string) (string, bool) {
	var s string
	expand := false
	switch t := n.(type) {
	case *ast.StringNode:
		s, expand = t.Value, true
	case *ast.LiteralNode:
		s, expand = t.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		s = n.GetToken().Value
	default:
		d.errAt(n, path, ErrType, "expected %s, got %s", want, kindName(n))
		return "", false
	}
	if expand && !tags.noExpand {
		out, err := d.vars.expand(s)
		if err != nil {
			d.errAt(n, path, kindOf(err), "%v", err)
			return "", false
		}
		s = out
	}
	return s, true
}

func kindOf(err error) error {
	if errors.Is(err, ErrUndefinedVar) {
		return ErrUndefinedVar
	}
	return ErrSyntax
}

func (d *decoder) decodeBool(n ast.Node, v reflect.Value, path string) {
	switch t := n.(type) {
	case *ast.BoolNode:
		v.SetBool(t.Value)
		return
	case *ast.StringNode:
		// Only a variable may stand in for a boolean: "yes" or "on" is
		// not one, and saying so beats guessing.
		if strings.Contains(t.Value, "${") {
			s, ok := d.scalar(n, path, fieldTags{}, "a boolean")
			if !ok {
				return
			}
			if s == "true" || s == "false" {
				v.SetBool(s == "true")
				return
			}
			d.errAt(n, path, ErrType, "expected true or false, got %q", s)
			return
		}
		d.errAt(n, path, ErrType, "expected true or false, got %q", t.Value)
		return
	}
	d.errAt(n, path, ErrType, "expected true or false, got %s", kindName(n))
}

func (d *decoder) decodeInt(n ast.Node, v reflect.Value, path string, tags fieldTags) {
	var text string
	switch t := n.(type) {
	case *ast.IntegerNode:
		text = t.GetToken().Value
	case *ast.StringNode:
		if !strings.Contains(t.Value, "${") {
			d.errAt(n, path, ErrType, "expected an integer, got string %q", t.Value)
			return
		}
		s, ok := d.scalar(n, path, tags, "an integer")
		if !ok {
			return
		}
		text = s
	default:
		d.errAt(n, path, ErrType, "expected an integer, got %s", kindName(n))
		return
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(text, "_", ""), 0, 64)
	if err != nil || (v.Kind() != reflect.Uint32 && v.OverflowInt(i)) {
		d.errAt(n, path, ErrType, "expected an integer, got %q", text)
		return
	}
	if v.Kind() == reflect.Uint32 {
		if i < 0 || i > 1<<32-1 {
			d.errAt(n, path, ErrInvalid, "%d is out of range (0 to 4294967295)", i)
			return
		}
		v.SetUint(uint64(i))
	} else {
		v.SetInt(i)
	}
	d.checkScalar(n, path, tags, strconv.FormatInt(i, 10))
}

var (
	hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	domainRE   = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	packageRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$`)
	sha256RE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	urlRE      = regexp.MustCompile(`^(https?|file|ftp)://[^\s]+$`)
	nameRE     = regexp.MustCompile(`^[a-z_][a-z0-9_-]*\$?$`)
)

// ValidDomain reports whether s is a host or domain name: dot-separated
// labels of letters, digits and inner hyphens.
func ValidDomain(s string) bool { return domainRE.MatchString(s) }

// checkScalar applies a field's enum and check tags.
func (d *decoder) checkScalar(n ast.Node, path string, tags fieldTags, s string) {
	if len(tags.enum) > 0 {
		for _, e := range tags.enum {
			if s == e {
				goto checked
			}
		}
		d.errAt(n, path, ErrInvalid, "invalid value %q (allowed: %s)", s, strings.Join(tags.enum, ", "))
		return
	}
checked:
	bad := func(want string) { d.errAt(n, path, ErrInvalid, "invalid value %q: expected %s", s, want) }
	if s == "" && tags.item && tags.check != "" {
		// An empty scalar means "not set" and gets its default; an empty
		// list item has none, and reaches its file as an empty field, word
		// or option: "rw,,hard", a doubled space, a tab-tab that shifts
		// fstab's fields.
		bad("a value: an empty list item would be written as an empty field, word or option")
		return
	}
	if s == "" && tags.check != "positive" {
		return
	}
	if !tags.multiline && strings.IndexFunc(s, quote.IsControl) >= 0 {
		// Every such value ends up in a line of some file: a newline
		// there would start a directive of its own.
		bad("text without control characters (newline, tab, carriage return, ...)")
		return
	}
	if msg := checkText(tags.check, s); msg != "" {
		bad(msg)
		return
	}
	switch tags.check {
	case "abspath":
		if !strings.HasPrefix(s, "/") {
			bad("an absolute path (starting with /)")
		} else if hasDotDot(s) {
			bad("a path without .. components")
		}
	case "hostname":
		if !hostnameRE.MatchString(s) {
			bad("a host name label: letters, digits and inner hyphens, at most 63 characters")
		}
	case "domain":
		if !domainRE.MatchString(s) {
			bad("a DNS domain such as mycluster.home")
		}
	case "package":
		if !packageRE.MatchString(s) {
			bad("a Debian package name (lower case letters, digits, + - .)")
		}
	case "sha256":
		if !sha256RE.MatchString(s) {
			bad("64 lower-case hexadecimal digits")
		}
	case "url":
		if !urlRE.MatchString(s) {
			bad("a URL starting with http://, https://, ftp:// or file://")
		}
	case "username":
		if !nameRE.MatchString(s) || len(s) > 32 {
			bad("a user or group name: lower case letters, digits, _ and -, starting with a letter or _")
		}
	case "positive":
		if i, err := strconv.Atoi(s); err != nil || i <= 0 {
			bad("a number greater than zero")
		}
	case "nonnegative":
		if i, err := strconv.Atoi(s); err != nil || i < 0 {
			bad("zero or a positive number")
		}
	case "mode":
		if m, err := strconv.ParseUint(s, 8, 32); err != nil || m > 0o7777 {
			bad("an octal file mode such as \"0644\" (quote it so YAML keeps the leading zero)")
		}
	case "owner":
		if !nameRE.MatchString(s) {
			if _, err := strconv.ParseUint(s, 10, 32); err != nil {
				bad("a user or group name, or a numeric id")
			}
		}
	case "", "relpath", "confpath", "arg", "option", "options", "words", "label", "name", "module", "locale", "gecos":
	default:
		panic("recipes: unknown check tag " + tags.check)
	}
}

func hasDotDot(p string) bool {
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return true
		}
	}
	return false
}
