package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// added is a step the build adds to the recipe's rather than one the
// recipe asks for (normalize): the plan does not list it, and it reports
// in build.json itself rather than as a line of its steps.
type added interface{ added() }

// scheduled is a step of the build, with its index among the recipe's
// steps (what the stage cache counts); -1 for an added one.
type scheduled struct {
	s BuildStep
	i int
}

type cleanup struct {
	c   Cleaner
	env *Env
	s   BuildStep
}

// runSteps runs each scheduled step, registering its cleanup before
// looking at its error, and unwinds the cleanups in reverse order under a
// context Ctrl-C does not cancel. Which steps there are, and where the
// build adds its own, is the caller's business (withNormalize).
func runSteps(ctx context.Context, o *Options, schedule []scheduled, env *Env, rep *Report, cache *stageCache) (err error) {
	var cleanups []cleanup
	defer func() {
		cctx := context.WithoutCancel(ctx)
		for i := len(cleanups) - 1; i >= 0; i-- {
			c := cleanups[i]
			if cerr := c.c.Cleanup(cctx, c.env); cerr != nil {
				c.env.Log.Error("cleanup failed", "err", cerr)
				err = errors.Join(err, fmt.Errorf("cleaning up %s: %w", c.s.Name(), cerr))
			}
		}
	}()
	total := 0
	for _, r := range schedule {
		if r.i >= 0 {
			total++
		}
	}
	for _, r := range schedule {
		if err := runStep(ctx, o, r, total, env, rep, cache, &cleanups); err != nil {
			return err
		}
	}
	return nil
}

// runStep runs one step, or lets the stage cache stand in for it.
func runStep(ctx context.Context, o *Options, r scheduled, total int, env *Env, rep *Report, cache *stageCache, cleanups *[]cleanup) error {
	s, i := r.s, r.i
	_, isAdded := s.(added)
	if !isAdded && cache.skip(i) {
		cache.stepReport(i, rep.addStep(s.Name(), o.Clock(), 0, nil, ctx))
		return nil
	}
	senv := env.forStep(s)
	senv.Task = o.Progress.Task(s.Name(), 0)
	start := o.Clock()
	if !isAdded {
		senv.Log.Info("starting", "n", fmt.Sprintf("%d/%d", i+1, total))
	}
	if c, ok := s.(Cleaner); ok {
		*cleanups = append(*cleanups, cleanup{c, senv, s})
	}
	var runErr error
	a, isArchiver := s.(archiver)
	if !isArchiver || !cache.reuse(ctx, i, senv) {
		runErr = s.Run(ctx, senv)
	}
	if runErr == nil && ctx.Err() != nil {
		runErr = context.Cause(ctx)
	}
	elapsed := o.Clock().Sub(start)
	senv.Task.Done(runErr != nil)
	if isAdded {
		return runErr
	}
	sr := rep.addStep(s.Name(), start, elapsed, runErr, ctx)
	cache.stepReport(i, sr)
	if runErr != nil {
		return fmt.Errorf("%s: %w", s.Name(), runErr)
	}
	senv.Log.Info("done", "elapsed", elapsed.Round(time.Millisecond))
	cache.afterRun(ctx, i, senv, elapsed, sr)
	if isArchiver {
		cache.keep(ctx, senv, a)
	}
	return nil
}
