package pipeline

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/krgimage/krgimage/internal/layout"
	"github.com/krgimage/krgimage/internal/progress"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/recipes"
	"github.com/krgimage/krgimage/stagecache"
)

// Errors Build returns that callers branch on.
var (
	// ErrRefuseReplace: the output path holds something krgimage did not
	// build, which it will not delete.
	ErrRefuseReplace = layout.ErrRefuseReplace
	// ErrInvalid: a step's validation failed.
	ErrInvalid = errors.New("invalid build")
	// ErrPreflight: a host precondition is not met.
	ErrPreflight = errors.New("preflight checks failed")
)

// ReportFile is the name of the build report in the output directory.
const ReportFile = layout.BuildJSONName

// Options configure one build.
type Options struct {
	Recipe *recipes.Recipe
	// OutDir is the output directory (./out by default in the CLI).
	OutDir   string
	Mirror   Mirror
	Log      *slog.Logger
	Progress *progress.Display
	Runner   *run.Runner
	Version  string
	// Clock measures step durations; BuildTime is what outputs record.
	Clock     func() time.Time
	BuildTime time.Time
	// SourceDateEpoch is set when SOURCE_DATE_EPOCH was given.
	SourceDateEpoch *time.Time
	// KeepFailed leaves a failed build's staging directory for
	// inspection instead of removing it.
	KeepFailed bool
	// CacheDir keeps what builds share (downloads, kernel build trees,
	// the stage cache).
	CacheDir string
	// StageCache keeps image roots in CacheDir/stages and starts the
	// build from the deepest step whose key is unchanged (see
	// stageCache).
	StageCache bool
	// CacheID identifies this krgimage in cache keys (the CLI gives its
	// version and the digest of its executable): another krgimage may
	// build another root from the same recipe. Empty means Version.
	CacheID string
	// EpochFromRelease, when SourceDateEpoch is nil, sets it and
	// BuildTime to the date of the suite's Release file: two builds
	// from one state of the mirror then write the same bytes without
	// being told a date.
	EpochFromRelease bool
	// LookupEnv reads the environment for secrets a recipe names.
	LookupEnv func(string) (string, bool)
	// Steps overrides the recipe's steps (tests).
	Steps []BuildStep
}

func (o *Options) steps() []BuildStep {
	if o.Steps != nil {
		return o.Steps
	}
	return Steps(o.Recipe)
}

func (o *Options) cacheID() string { return cmp.Or(o.CacheID, o.Version) }

func (o *Options) env(root, out string) *Env {
	lookup := o.LookupEnv
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	return &Env{
		Recipe: o.Recipe, Root: root, Out: out, FinalRoot: root, FinalOut: out,
		Mirror: o.Mirror, Arch: o.Recipe.Architecture, Log: o.Log, Runner: o.Runner,
		Progress: o.Progress, BuildTime: o.BuildTime, LookupEnv: lookup, CacheDir: o.CacheDir, SourceDateEpoch: o.SourceDateEpoch, State: &State{},
	}
}

// layout is where the build ends up.
func (o *Options) layout() (layout.Layout, error) {
	return layout.New(o.OutDir, o.Recipe).Abs()
}

// validateAll runs every step's Validate and returns all failures.
func validateAll(ctx context.Context, steps []BuildStep, env *Env) error {
	var errs []error
	for _, s := range steps {
		if err := s.Validate(ctx, env.forStep(s)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name(), err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w:\n%w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

// preflightAll runs every step's host checks and returns all failures.
func preflightAll(ctx context.Context, steps []BuildStep, env *Env) error {
	var errs []error
	for _, s := range steps {
		if p, ok := s.(Preflighter); ok {
			if err := p.Preflight(ctx, env.forStep(s)); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.Name(), err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w:\n%w", ErrPreflight, errors.Join(errs...))
	}
	return nil
}

// Check says whether the recipe can be built here, now: every step's
// validation and host checks (root, tools, the mirror carrying the suite,
// sources present), with nothing written. Nightly jobs use it to tell a
// recipe this machine cannot build from one that fails.
func Check(ctx context.Context, o Options) error {
	steps := o.steps()
	final, err := o.layout()
	if err != nil {
		return err
	}
	out := final.Out()
	previous, err := readPreviousReport(out)
	if err != nil {
		return err
	}
	if err := layout.CheckReplaceable(out, previous != nil, "it is not a previous krgimage output (it has no "+ReportFile+")"); err != nil {
		return err
	}
	if err := o.checkCacheDir(); err != nil {
		return err
	}
	// A build bootstraps into a fresh staging root; stand in one that
	// does not exist.
	stage := layout.New(filepath.Join(os.TempDir(), fmt.Sprintf("krgimage-check-%d", os.Getpid())), nil)
	env := o.env(stage.Rootfs(), stage.Out())
	if err := validateAll(ctx, steps, env); err != nil {
		return err
	}
	return preflightAll(ctx, steps, env)
}

// Build runs a recipe's steps into the output directory. On failure or
// interruption nothing is left under the output's name; the previous
// output, if any, is untouched.
func Build(ctx context.Context, o Options) (*Report, error) {
	steps := o.steps()
	final, err := o.layout()
	if err != nil {
		return nil, err
	}
	out, root := final.Out(), final.Rootfs()
	if err := validateAll(ctx, steps, o.env(root, out)); err != nil {
		return nil, err
	}
	if err := o.openCacheDir(); err != nil {
		return nil, err
	}
	lay, previous, err := prepare(final)
	if err != nil {
		return nil, err
	}
	defer lay.Unlock()

	env := o.env(lay.Staging.Rootfs(), lay.Staging.Out())
	env.FinalRoot, env.FinalOut = root, out
	rep := newReport(&o, out, root)

	if err := preflightAll(ctx, steps, env); err != nil {
		lay.Abort(o.Log, false)
		return nil, err
	}

	rel := newReleases(env)
	resolveEpoch(ctx, &o, env, rel)
	rep.BuildTime = env.BuildTime.UTC()
	cache := newStageCache(ctx, &o, steps, env, rel)
	runErr := cache.restore(ctx, env, previous)
	if cache.linked {
		lay.SharedWith = root
	}
	if runErr == nil {
		runErr = runSteps(ctx, &o, withNormalize(steps, cache, rep, o.Clock, lay.SyncRoot), env, rep, cache)
	}
	if runErr == nil {
		runErr = inventory(ctx, env, rep)
	}
	cache.finish(rep, env, out)
	rep.finish(o.Clock(), runErr, ctx)
	rep.Snapshot = env.State.Snapshot
	if runErr != nil {
		lay.Abort(o.Log, o.KeepFailed)
		return rep, runErr
	}
	if err := commit(ctx, &o, lay, final, rep); err != nil {
		lay.Abort(o.Log, o.KeepFailed)
		return rep, err
	}
	o.Log.Info("build finished", "path", out, "elapsed", rep.Duration().Round(time.Millisecond))
	return rep, nil
}

// commit writes build.json into the staged build and moves the build into
// place, then adds the image's fingerprint, which only the root in place
// has.
func commit(ctx context.Context, o *Options, lay *layout.Stage, final layout.Layout, rep *Report) error {
	if err := writeReport(lay.Staging.BuildJSON(), rep); err != nil {
		return err
	}
	if err := lay.Commit(); err != nil {
		return fmt.Errorf("moving the finished build into place: %w", err)
	}
	// After the previous build is gone: removing it changes the link
	// counts, and so the ctimes, of the files a no-change rebuild shares
	// with it.
	fingerprint(ctx, o.Log, final.Rootfs(), rep)
	if err := writeReport(final.BuildJSON(), rep); err != nil {
		o.Log.Warn("could not add the image's fingerprint to the report", "err", err)
	}
	return nil
}

// resolveEpoch dates the build from the Release file its packages come
// from when no SOURCE_DATE_EPOCH was given: the lockfile's, else the
// suite's on the mirror.
func resolveEpoch(ctx context.Context, o *Options, env *Env, rel *releases) {
	if env.SourceDateEpoch != nil || !o.EpochFromRelease {
		return
	}
	r := env.Recipe
	var t time.Time
	if l, path, err := findLock(r); err == nil && l != nil && !l.Release.Date.IsZero() {
		t = l.Release.Date.UTC()
		env.Log.Info("SOURCE_DATE_EPOCH is the date of the lockfile's Release", "date", t.Format(time.RFC3339), "path", path)
	} else {
		re, err := rel.get(ctx, env.Mirror.URL, r.Suite, r.Components, r.Architecture)
		if err != nil {
			env.Log.Warn("no SOURCE_DATE_EPOCH and the suite's Release date is unknown: the outputs carry the build's own time, and the stage cache cannot match", "err", err)
			return
		}
		t = re.Date
		env.Log.Info("SOURCE_DATE_EPOCH is the date of the suite's Release file", "date", t.Format(time.RFC3339))
	}
	env.BuildTime, env.SourceDateEpoch = t, &t
}

// inventory lists what the build made: the installed packages and the
// outputs with their digests.
func inventory(ctx context.Context, env *Env, rep *Report) error {
	pkgs, err := installedPackages(env.Root)
	if err != nil {
		return fmt.Errorf("listing the installed packages: %w", err)
	}
	rep.Packages = pkgs
	known := map[string]string{}
	if s := env.State.Snapshot; s != nil {
		known[filepath.ToSlash(s.Path)] = s.SHA256
	}
	files, err := outputFiles(ctx, env.Out, env.Root, known)
	if err != nil {
		return fmt.Errorf("listing the outputs: %w", err)
	}
	rep.Outputs = files
	return nil
}

// fingerprint records the size of the root in place, and with the stage
// cache its Fingerprint, with which the next build can tell that nobody
// changed it. Taken once the build is in place: moving the previous
// build away changes the change times of the files they share. A failure
// only costs the next build that reuse.
func fingerprint(ctx context.Context, log *slog.Logger, root string, rep *Report) {
	fp, err := stagecache.TreeFingerprint(ctx, root)
	if err != nil {
		log.Warn("could not take the image root's fingerprint", "err", err)
		return
	}
	rep.Image = &ImageInfo{Entries: fp.Entries, Bytes: fp.Bytes}
	if rep.Cache != nil && rep.Cache.RootKey != "" {
		rep.Cache.Fingerprint = &fp
	}
}

// prepare reads the report of the build the output holds, if any, and
// stages the new build beside it.
func prepare(final layout.Layout) (*layout.Stage, *Report, error) {
	previous, err := readPreviousReport(final.Out())
	if err != nil {
		return nil, nil, err
	}
	ownRoot := previous != nil && previous.Output.Rootfs == final.Rootfs()
	lay, err := layout.Prepare(final, previous != nil, ownRoot)
	return lay, previous, err
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
