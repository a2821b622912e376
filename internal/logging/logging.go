package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Format names a log output format.
type Format string

const (
	Text Format = "text"
	JSON Format = "json"
)

// New returns a logger writing to w in the given format. Debug records
// (subprocess output) are shown only when verbose is set.
func New(w io.Writer, format Format, verbose bool) (*slog.Logger, error) {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	switch format {
	case JSON:
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})), nil
	case Text, "":
		return slog.New(&humanHandler{w: w, level: level, mu: &sync.Mutex{}, now: time.Now}), nil
	}
	return nil, fmt.Errorf("unknown log format %q (allowed: text, json)", format)
}

// Discard returns a logger that drops everything, for callers that do not
// care.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// humanHandler prints "15:04:05 [step] message key=value". The step is a
// prefix because a build log is read step by step.
type humanHandler struct {
	w     io.Writer
	level slog.Level
	mu    *sync.Mutex
	attrs []slog.Attr
	group string
	now   func() time.Time
}

func (h *humanHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *humanHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	t := r.Time
	if t.IsZero() {
		t = h.now()
	}
	b.WriteString(t.Format("15:04:05"))
	switch {
	case r.Level >= slog.LevelError:
		b.WriteString(" ERROR")
	case r.Level >= slog.LevelWarn:
		b.WriteString(" WARN")
	case r.Level < slog.LevelInfo:
		b.WriteString(" ·")
	}
	attrs := slices.Clone(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		if h.group != "" {
			a.Key = h.group + "." + a.Key
		}
		attrs = append(attrs, a)
		return true
	})
	var rest []slog.Attr
	for _, a := range attrs {
		if a.Key == "step" {
			fmt.Fprintf(&b, " [%s]", a.Value.String())
			continue
		}
		rest = append(rest, a)
	}
	b.WriteByte(' ')
	b.WriteString(r.Message)
	for _, a := range rest {
		if a.Key == "cmd" && r.Level < slog.LevelInfo && r.Message != "running" {
			// Subprocess output lines: the command is noise on every line.
			continue
		}
		b.WriteByte(' ')
		b.WriteString(a.Key)
		b.WriteByte('=')
		b.WriteString(quote(a.Value.Resolve().String()))
	}
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func quote(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return strconv.Quote(s)
	}
	return s
}

func (h *humanHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = slices.Clone(h.attrs)
	for _, a := range as {
		if h.group != "" {
			a.Key = h.group + "." + a.Key
		}
		n.attrs = append(n.attrs, a)
	}
	return &n
}

func (h *humanHandler) WithGroup(name string) slog.Handler {
	n := *h
	if n.group != "" {
		name = n.group + "." + name
	}
	n.group = name
	return &n
}
