package recipes

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Error classes. Every *Error wraps exactly one of them, so callers and
// tests can branch with errors.Is.
var (
	ErrSyntax        = errors.New("syntax error")
	ErrUnknownKey    = errors.New("unknown key")
	ErrType          = errors.New("wrong type")
	ErrInvalid       = errors.New("invalid value")
	ErrDuplicate     = errors.New("duplicate")
	ErrMissing       = errors.New("missing value")
	ErrConflict      = errors.New("conflicting keys")
	ErrUndefinedVar  = errors.New("undefined variable")
	ErrNotConfigured = errors.New("not configured")
)

// Pos is a line and column in a recipe file, both from 1.
type Pos struct{ Line, Column int }

// Error is one problem in a recipe, located by file, line and column.
type Error struct {
	File string
	Pos  Pos
	// Path is the key path, such as cluster.nodes[2].ip.
	Path string
	Msg  string
	Kind error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Pos.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Pos.Line, e.Pos.Column)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Kind }

// Errors is every problem found in a recipe, sorted by position.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As see each problem.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Pos, es[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return es
}

// valueError is what a scalar type's UnmarshalText returns: it says what was
// expected, and the decoder adds where and what was found.
type valueError struct{ expected string }

func (e *valueError) Error() string { return "expected " + e.expected }

func errorf(expected string) error { return &valueError{expected: expected} }

// positions maps a key path to where its value starts in the file.
type positions map[string]Pos
