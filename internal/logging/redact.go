package logging

import (
	"context"
	"log/slog"
)

// Redact returns a handler that hands h every record with redact applied
// to its message and to the text of every attribute. It wraps the
// handler rather than each call site because subprocess output (apt,
// dpkg, the recipe's scripts) reaches the log too, and no call site knows
// what is in it.
func Redact(h slog.Handler, redact func(string) string) slog.Handler {
	return &redactHandler{h: h, redact: redact}
}

type redactHandler struct {
	h      slog.Handler
	redact func(string) string
}

func (r *redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, r.redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(r.attr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r *redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, r.redact(v.String()))
	case slog.KindGroup:
		as := v.Group()
		out := make([]any, len(as))
		for i, g := range as {
			out[i] = r.attr(g)
		}
		return slog.Group(a.Key, out...)
	default:
		// Errors, numbers and other values print through fmt: one whose
		// text holds a value to hide is logged as the masked text, the
		// rest as they were, so the JSON handler still renders them as
		// numbers or its own way.
		s := v.String()
		if m := r.redact(s); m != s {
			return slog.String(a.Key, m)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (r *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = r.attr(a)
	}
	return &redactHandler{h: r.h.WithAttrs(out), redact: r.redact}
}

func (r *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{h: r.h.WithGroup(name), redact: r.redact}
}
