package pipeline

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/krgimage/krgimage/internal/fsutil"
	"github.com/krgimage/krgimage/internal/progress"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/recipes"
	"github.com/krgimage/krgimage/stagecache"
)

// Errors Build returns that callers branch on.
var (
	// ErrRefuseReplace: the output path holds something krgimage did not
	// build, which it will not delete.
	ErrRefuseReplace = errors.New("refusing to replace")
	// ErrInvalid: a step's validation failed.
	ErrInvalid = errors.New("invalid build")
	// ErrPreflight: a host precondition is not met.
	ErrPreflight = errors.New("preflight checks failed")
)

// ReportFile is the name of the build report in the output directory.
const ReportFile = "build.json"

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

// finalPaths returns where the output directory and the image root end up.
func (o *Options) finalPaths() (out, root string, err error) {
	out, err = filepath.Abs(o.OutDir)
	if err != nil {
		return "", "", err
	}
	root = filepath.Join(out, "rootfs")
	if o.Recipe.Outputs.Rootfs != "" {
		root = filepath.Clean(o.Recipe.Outputs.Rootfs)
	}
	return out, root, nil
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
	out, _, err := o.finalPaths()
	if err != nil {
		return err
	}
	previous, err := readPreviousReport(out)
	if err != nil {
		return err
	}
	if err := checkReplaceable(out, previous != nil, "it is not a previous krgimage output (it has no "+ReportFile+")"); err != nil {
		return err
	}
	if err := o.checkCacheDir(); err != nil {
		return err
	}
	// A build bootstraps into a fresh staging root; stand in one that
	// does not exist.
	stage := filepath.Join(os.TempDir(), fmt.Sprintf("krgimage-check-%d", os.Getpid()))
	env := o.env(filepath.Join(stage, "rootfs"), stage)
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
	out, root, err := o.finalPaths()
	if err != nil {
		return nil, err
	}
	if err := validateAll(ctx, steps, o.env(root, out)); err != nil {
		return nil, err
	}
	if err := o.openCacheDir(); err != nil {
		return nil, err
	}
	lay, err := prepareLayout(out, root, o.Recipe.Outputs.Rootfs != "")
	if err != nil {
		return nil, err
	}
	defer lay.unlock()

	env := o.env(lay.stageRoot, lay.stageOut)
	env.FinalRoot, env.FinalOut = root, out
	rep := newReport(&o, out, root)

	if err := preflightAll(ctx, steps, env); err != nil {
		lay.abort(o.Log, false)
		return nil, err
	}

	rel := newReleases(env)
	resolveEpoch(ctx, &o, env, rel)
	rep.BuildTime = env.BuildTime.UTC()
	cache := newStageCache(ctx, &o, steps, env, rel)
	runErr := cache.restore(ctx, env, lay.previous)
	if cache.linked {
		lay.sharedWith = root
	}
	if runErr == nil {
		runErr = runSteps(ctx, &o, steps, env, rep, cache, lay.syncRoot)
	}
	if runErr == nil {
		runErr = inventory(ctx, env, rep)
	}
	cache.finish(rep, env, out)
	rep.finish(o.Clock(), runErr, ctx)
	rep.Snapshot = env.State.Snapshot
	if runErr != nil {
		lay.abort(o.Log, o.KeepFailed)
		return rep, runErr
	}
	if err := writeReport(filepath.Join(lay.stageOut, ReportFile), rep); err != nil {
		lay.abort(o.Log, o.KeepFailed)
		return rep, err
	}
	if err := lay.commit(); err != nil {
		lay.abort(o.Log, o.KeepFailed)
		return rep, fmt.Errorf("moving the finished build into place: %w", err)
	}
	// After the previous build is gone: removing it changes the link
	// counts, and so the ctimes, of the files a no-change rebuild shares
	// with it.
	fingerprint(ctx, o.Log, root, rep)
	if err := writeReport(filepath.Join(out, ReportFile), rep); err != nil {
		o.Log.Warn("could not add the image's fingerprint to the report", "err", err)
	}
	o.Log.Info("build finished", "path", out, "elapsed", rep.Duration().Round(time.Millisecond))
	return rep, nil
}

func writeReport(path string, rep *Report) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", ReportFile, err)
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

// runSteps runs each step, registering its cleanup before looking at its
// error, and unwinds the cleanups in reverse order under a context Ctrl-C
// does not cancel.
func runSteps(ctx context.Context, o *Options, steps []BuildStep, env *Env, rep *Report, cache *stageCache, rootFinished func()) (err error) {
	var cleaners []struct {
		c   Cleaner
		env *Env
		s   BuildStep
	}
	defer func() {
		cctx := context.WithoutCancel(ctx)
		for i := len(cleaners) - 1; i >= 0; i-- {
			c := cleaners[i]
			if cerr := c.c.Cleanup(cctx, c.env); cerr != nil {
				c.env.Log.Error("cleanup failed", "err", cerr)
				err = errors.Join(err, fmt.Errorf("cleaning up %s: %w", c.s.Name(), cerr))
			}
		}
	}()
	// The root is normalized once the last step that changes it is done.
	normalizeAt := cache.last + 1
	for i, s := range steps {
		if i == normalizeAt {
			if err := runNormalize(ctx, o, steps[i:], env, rep, cache); err != nil {
				return err
			}
			if rootFinished != nil {
				rootFinished()
			}
		}
		if cache.skip(i) {
			cache.stepReport(i, rep.addStep(s.Name(), o.Clock(), 0, nil, ctx))
			continue
		}
		senv := env.forStep(s)
		senv.Task = o.Progress.Task(s.Name(), 0)
		start := o.Clock()
		senv.Log.Info("starting", "n", fmt.Sprintf("%d/%d", i+1, len(steps)))
		if c, ok := s.(Cleaner); ok {
			cleaners = append(cleaners, struct {
				c   Cleaner
				env *Env
				s   BuildStep
			}{c, senv, s})
		}
		var runErr error
		snap, isSnapshot := s.(*snapshotStep)
		if !isSnapshot || !cache.reuseSnapshot(ctx, i, senv, snap) {
			runErr = s.Run(ctx, senv)
		}
		if runErr == nil && ctx.Err() != nil {
			runErr = context.Cause(ctx)
		}
		elapsed := o.Clock().Sub(start)
		sr := rep.addStep(s.Name(), start, elapsed, runErr, ctx)
		cache.stepReport(i, sr)
		senv.Task.Done(runErr != nil)
		if runErr != nil {
			return fmt.Errorf("%s: %w", s.Name(), runErr)
		}
		senv.Log.Info("done", "elapsed", elapsed.Round(time.Millisecond))
		cache.afterRun(ctx, i, senv, elapsed, sr)
		if isSnapshot {
			cache.afterSnapshot(ctx, senv, snap)
		}
	}
	if normalizeAt >= len(steps) {
		return runNormalize(ctx, o, nil, env, rep, cache)
	}
	return nil
}

// runNormalize normalizes the root unless it came finished from the
// cache, and stores it finished; rest are the steps still to run.
func runNormalize(ctx context.Context, o *Options, rest []BuildStep, env *Env, rep *Report, cache *stageCache) error {
	if cache.normalized {
		rep.Normalize = &NormalizeReport{Skipped: "the root came finished from the stage cache"}
		return nil
	}
	nenv := *env
	nenv.Log = env.Log.With("step", "normalize")
	task := o.Progress.Task("normalize", 0)
	start := o.Clock()
	nr, err := normalize(ctx, &nenv)
	task.Done(err != nil)
	if err != nil {
		return fmt.Errorf("normalizing the image root: %w", err)
	}
	took := o.Clock().Sub(start)
	nr.Seconds = took.Seconds()
	rep.Normalize = nr
	nenv.Log.Info("root normalized", "clamped", nr.Clamped, "removed", len(nr.Removed), "elapsed", took.Round(time.Millisecond))
	snapshotFollows := slices.ContainsFunc(rest, func(s BuildStep) bool { _, ok := s.(*snapshotStep); return ok })
	cache.finishedRoot(ctx, &nenv, took, snapshotFollows)
	return nil
}

// layout is where a build writes while it runs and where it ends up.
type layout struct {
	// previous is the report of the build the output holds, if any.
	previous            *Report
	out, root           string
	stageOut, stageRoot string
	externalRoot        bool
	locks               []*fsutil.Lock
	// rootSynced reports the end of syncRoot's writeback.
	rootSynced chan error
	// sharedWith is the previous image root when the staging root's files
	// are hard links to its own.
	sharedWith string
}

func siblings(path string) (stage, lock string) {
	dir, base := filepath.Split(filepath.Clean(path))
	return filepath.Join(dir, "."+base+".partial"), filepath.Join(dir, "."+base+".lock")
}

func prepareLayout(out, root string, external bool) (_ *layout, err error) {
	l := &layout{out: out, root: root, externalRoot: external}
	defer func() {
		if err != nil {
			l.unlock()
		}
	}()
	for _, p := range []string{out, root} {
		if p == "/" || p == filepath.Dir(p) {
			return nil, fmt.Errorf("%w /: choose a dedicated directory", ErrRefuseReplace)
		}
	}
	previous, err := readPreviousReport(out)
	if err != nil {
		return nil, err
	}
	l.previous = previous
	if err := checkReplaceable(out, previous != nil, "it is not a previous krgimage output (it has no "+ReportFile+")"); err != nil {
		return nil, err
	}
	if external {
		ownRoot := previous != nil && previous.Output.Rootfs == root
		if err := checkReplaceable(root, ownRoot, "it is not the image root of the previous build in "+out); err != nil {
			return nil, err
		}
	}
	var stageLock string
	l.stageOut, stageLock = siblings(out)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	lk, err := fsutil.TryLock(stageLock)
	if err != nil {
		return nil, fmt.Errorf("output %s is being written by another build: %w", out, err)
	}
	l.locks = append(l.locks, lk)
	l.stageRoot = filepath.Join(l.stageOut, "rootfs")
	if external {
		l.stageRoot, stageLock = siblings(root)
		if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
			return nil, err
		}
		lk, err := fsutil.TryLock(stageLock)
		if err != nil {
			return nil, fmt.Errorf("image root %s is being written by another build: %w", root, err)
		}
		l.locks = append(l.locks, lk)
	}
	// A staging directory left by a crashed or --keep-failed build is
	// ours to clear: we hold the lock. So is the one of a killed restore
	// of the stage cache into an image root outside the output.
	left := []string{l.stageOut, l.stageRoot}
	if external {
		m, _ := filepath.Glob(filepath.Join(filepath.Dir(l.stageRoot), "."+filepath.Base(l.stageRoot)+".restore-*"))
		left = append(left, m...)
	}
	for _, p := range left {
		if err := fsutil.RemoveAll(p); err != nil {
			return nil, fmt.Errorf("clearing the previous staging directory: %w", err)
		}
	}
	if err := os.Mkdir(l.stageOut, 0o755); err != nil {
		return nil, err
	}
	return l, nil
}

func checkReplaceable(path string, ours bool, why string) error {
	empty, err := fsutil.IsEmptyDir(path)
	if err != nil {
		if fi, serr := os.Stat(path); serr == nil && !fi.IsDir() {
			return fmt.Errorf("%w %s: it is not a directory", ErrRefuseReplace, path)
		}
		return err
	}
	if empty || ours {
		return nil
	}
	return fmt.Errorf("%w %s: %s; remove it or choose another path", ErrRefuseReplace, path, why)
}

// ErrBadReport: a build.json that is not one.
var ErrBadReport = errors.New("malformed build report")

// ReadReport reads a build.json, or the one in an output directory.
func ReadReport(path string) (*Report, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, ReportFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrBadReport, path, err)
	}
	// Any JSON object decodes: one without these is no build's report.
	if r.Recipe.Name == "" || r.Started.IsZero() {
		return nil, fmt.Errorf("%w %s: no recipe or start time: not a krgimage build.json", ErrBadReport, path)
	}
	return &r, nil
}

func readPreviousReport(out string) (*Report, error) {
	r, err := ReadReport(filepath.Join(out, ReportFile))
	switch {
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.ENOTDIR):
		return nil, nil
	case errors.Is(err, ErrBadReport):
		// A damaged report still marks the directory as ours.
		return &Report{}, nil
	}
	return r, err
}

// syncRoot starts writing the finished image root out to disk while the
// output steps (snapshot, netboot, media) run: they only read it, and
// the writeback then waits on the disk while they use the processors.
func (l *layout) syncRoot() {
	if l.rootSynced != nil {
		return
	}
	l.rootSynced = make(chan error, 1)
	go func() { l.rootSynced <- fsutil.SyncFS(l.stageRoot) }()
}

// commit makes the staging directories durable, then moves them to their
// final names, replacing a previous build atomically. The steps ran
// without syncs (chroot.Image.SuppressSync): a crash must never leave a
// finished-looking build with empty files.
func (l *layout) commit() error {
	if l.rootSynced != nil {
		<-l.rootSynced // the final syncs report any error
	}
	if err := fsutil.SyncFS(l.stageOut); err != nil {
		return fmt.Errorf("syncing the build: %w", err)
	}
	if l.externalRoot {
		if err := fsutil.SyncFS(l.stageRoot); err != nil {
			return fmt.Errorf("syncing the image root: %w", err)
		}
		if err := swapInto(l.stageRoot, l.root); err != nil {
			return err
		}
		if err := os.Symlink(l.root, filepath.Join(l.stageOut, "rootfs")); err != nil {
			return err
		}
	}
	return swapInto(l.stageOut, l.out)
}

func swapInto(stage, final string) error {
	if _, err := os.Lstat(final); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(stage, final); err != nil {
			return err
		}
		return fsutil.SyncDir(filepath.Dir(final))
	}
	if err := fsutil.Exchange(stage, final); err != nil {
		return err
	}
	// stage now holds the previous build.
	return fsutil.RemoveAll(stage)
}

func (l *layout) abort(log *slog.Logger, keep bool) {
	if keep {
		log.Warn("failed build kept for inspection; it is not a finished image", "path", l.stageOut)
		if l.externalRoot {
			log.Warn("failed image root kept for inspection", "path", l.stageRoot)
		}
		if l.sharedWith != "" {
			log.Warn("the kept image root's files are hard links to the previous build's: changing one changes the image in place; copy it before changing anything",
				"kept", l.stageRoot, "previous", l.sharedWith)
		}
		return
	}
	for _, p := range []string{l.stageRoot, l.stageOut} {
		if err := fsutil.RemoveAll(p); err != nil {
			log.Error("could not remove the failed build", "path", p, "err", err)
		}
	}
}

func (l *layout) unlock() {
	for _, lk := range l.locks {
		_ = lk.Unlock()
	}
	l.locks = nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
