package boottest

import (
	"context"
	"log/slog"
)

// cleanups undo what a boot test started, last first. Each is pushed as
// soon as there is something to undo, before the error of what made it
// is looked at, and all run under a context Ctrl-C does not cancel: the
// interrupt is what they clean up after.
type cleanups []cleanup

type cleanup struct {
	// what is logged, with the error, when undo fails.
	what string
	undo func(context.Context) error
}

func (c *cleanups) push(what string, undo func(context.Context) error) {
	*c = append(*c, cleanup{what, undo})
}

func (c *cleanups) unwind(ctx context.Context, log *slog.Logger) {
	ctx = context.WithoutCancel(ctx)
	for i := len(*c) - 1; i >= 0; i-- {
		if err := (*c)[i].undo(ctx); err != nil {
			log.Warn((*c)[i].what, "err", err)
		}
	}
	*c = nil
}
