package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"github.com/krgimage/krgimage/internal/cachedir"
	"github.com/krgimage/krgimage/snapshot"
	"github.com/krgimage/krgimage/stagecache"
)

// StagesDir is the stage cache's directory under the cache directory.
const StagesDir = "stages"

// openCacheDir makes o.CacheDir, when given, a directory nobody but its
// user can write or swap (see package cachedir), creating it: the build
// installs, as root, what it finds there. A cache directory that fails
// the check fails the build: building without it would hide the problem
// and redo every download each time.
func (o *Options) openCacheDir() error {
	if o.CacheDir == "" {
		return nil
	}
	dir, err := cachedir.Open(o.CacheDir)
	if err != nil {
		return err
	}
	o.CacheDir = dir
	return nil
}

// checkCacheDir is openCacheDir for Check, which writes nothing.
func (o *Options) checkCacheDir() error {
	if o.CacheDir == "" {
		return nil
	}
	return cachedir.Check(o.CacheDir)
}

// cacheFormat changes when what a key covers does: old entries then
// simply stop matching.
const cacheFormat = "1"

// minStoreWork is the least work worth storing a root for. Storing and
// restoring a root costs seconds; the provisioning steps that write a
// file or two cost a fraction of one, and are cheaper to redo. A package
// installation (ssh's takes 2-4 s) is above it.
const minStoreWork = time.Second

// worthStoring says whether the work since the last stored root is worth
// storing the root now, when storing the last one took lastStore. A
// stored root serves every later build until a step before it changes
// (every night of a nightly job), so it pays for itself once redoing the
// work would cost half of storing it.
func worthStoring(work, lastStore time.Duration) bool {
	return work >= minStoreWork && 2*work >= lastStore
}

// CacheReport is the stage cache's part of build.json.
type CacheReport struct {
	Dir string `json:"dir"`
	// RootKey is the key of the finished, normalized image root.
	RootKey string `json:"root_key,omitempty" redact:"keep"`
	// Restored says where the build started from: the previous output's
	// root, or a cache entry; empty when every step ran.
	Restored       string  `json:"restored,omitempty"`
	RestoreSeconds float64 `json:"restore_seconds,omitempty"`
	// Ignored lists the corrupt entries the build found and removed.
	Ignored []string `json:"ignored,omitempty" redact:"keep"`
	// State and Fingerprint let the next build reuse this output's root
	// when nothing changed and nobody wrote to it since: they keep
	// their real values (see Report.shown).
	State       *State                  `json:"state,omitempty" redact:"keep"`
	Fingerprint *stagecache.Fingerprint `json:"fingerprint,omitempty" redact:"keep"`
}

// Cache results of a step.
const (
	CacheHit  = "hit"
	CacheMiss = "miss"
)

// stageCache is the stage cache's part in one build: the keys of its
// steps, where the build starts from and which roots it stores.
//
// The root is keyed along the chain of steps that change it; the steps
// that only write outputs (netboot, media) read it and run on every
// build. A root is stored after a step when the work since the last
// stored one outweighs storing it. After the last root-changing step the
// root is normalized for reproducibility; that finished root is stored
// too when the recipe has a snapshot output, which is the entry at no
// cost (and the next build's snapshot step takes it back). A rebuild with
// no change reuses the previous output's root when it is untouched.
type stageCache struct {
	store *stagecache.Store
	o     *Options
	steps []BuildStep
	log   *slog.Logger
	// keys are the root-changing steps' keys; "" when not cacheable.
	keys []string
	// final keys the finished, normalized root; "" when not cacheable.
	final string
	// snap keys the snapshot output's archive of that root, which is the
	// finished root's entry when the recipe has one: its compression and
	// level are part of it.
	snap string
	// last is the last root-changing step; -1 when none.
	last int
	// resume is the first root-changing step the build runs.
	resume int
	// normalized: the build starts from a finished root; linked: the
	// previous output's, through hard links.
	normalized, linked bool
	report             CacheReport
	status             []string
	unsaved            time.Duration
	lastStore          time.Duration
}

func lastRootStep(steps []BuildStep) int {
	last := -1
	for i, s := range steps {
		if !isOutputOnly(s) {
			last = i
		}
	}
	return last
}

// newStageCache opens the store and computes every step's key. A cache
// that cannot be used makes the build run without it, never fail.
func newStageCache(ctx context.Context, o *Options, steps []BuildStep, env *Env, rel *releases) *stageCache {
	c := &stageCache{o: o, steps: steps, log: o.Log, keys: make([]string, len(steps)), status: make([]string, len(steps)), last: lastRootStep(steps)}
	if !o.StageCache {
		return c
	}
	dir := filepath.Join(o.CacheDir, StagesDir)
	store, err := stagecache.Open(dir, o.Log)
	if err != nil {
		o.Log.Warn("building without the stage cache", "path", dir, "err", err)
		return c
	}
	c.store = store
	c.report.Dir = dir
	c.computeKeys(ctx, env, rel)
	return c
}

func (c *stageCache) on() bool { return c.store != nil }

func (c *stageCache) computeKeys(ctx context.Context, env *Env, rel *releases) {
	epoch := ""
	if env.SourceDateEpoch != nil {
		epoch = strconv.FormatInt(env.SourceDateEpoch.Unix(), 10)
	}
	prev := stagecache.NewKey("krgimage build").Add("format", cacheFormat).Add("krgimage", c.o.cacheID()).
		Add("architecture", env.Arch).Add("build-time", strconv.FormatInt(env.BuildTime.Unix(), 10)).Add("epoch", epoch).Sum()
	afterBase := false
	for i, s := range c.steps {
		if isOutputOnly(s) || prev == "" {
			continue
		}
		ck, ok := s.(cacheKeyer)
		if !ok {
			c.log.Info("not cached: this step has no cache key, nor any after it", "step", s.Name())
			prev = ""
			continue
		}
		k := stagecache.NewKey("step").Add("previous", prev).Add("name", s.Name())
		err := ck.addKey(ctx, env.forStep(s), k, rel)
		if err == nil && i > 0 && !afterBase {
			err = lockedMirrorKey(ctx, env, k, rel)
		}
		afterBase = afterBase || i > 0
		if err != nil {
			c.log.Warn("not cached in this build: what the step depends on cannot be read, nor any step after it", "step", s.Name(), "err", err)
			prev = ""
			continue
		}
		c.keys[i] = k.Sum()
		prev = c.keys[i]
	}
	if prev != "" {
		c.final = stagecache.NewKey("finished root").Add("previous", prev).Add("normalize", normalizeVersion).Sum()
		c.report.RootKey = c.final
		for _, s := range c.steps {
			if a, ok := s.(archiver); ok {
				if o, err := a.normalizedOptions(env); err == nil {
					c.snap = stagecache.NewKey("snapshot").Add("root", c.final).Add("format", string(o.Compression), strconv.Itoa(o.Level)).Sum()
				}
			}
		}
	}
}

// restore fills the staging root from the best source: the previous
// output's root when it is the finished root this build would make and
// nobody changed it, else the final cache entry, else the entry of the
// deepest step whose key is unchanged. Corrupt entries are removed and
// the next source tried.
func (c *stageCache) restore(ctx context.Context, env *Env, previous *Report) error {
	c.resume = 0
	if !c.on() {
		return nil
	}
	start := c.o.Clock()
	defer func() {
		if c.report.Restored != "" {
			c.report.RestoreSeconds = c.o.Clock().Sub(start).Seconds()
			c.log.Info("restored the image root", "from", c.report.Restored, "elapsed", c.o.Clock().Sub(start).Round(time.Millisecond))
		}
	}()
	if c.reusePrevious(ctx, env, previous) {
		return nil
	}
	type candidate struct {
		key   string
		upto  int
		final bool
	}
	var cands []candidate
	for _, k := range []string{c.snap, c.final} {
		if k != "" {
			cands = append(cands, candidate{k, c.last, true})
		}
	}
	for i := c.last; i >= 0; i-- {
		if c.keys[i] != "" {
			cands = append(cands, candidate{c.keys[i], i, false})
		}
	}
	for _, cand := range cands {
		e, err := c.store.Lookup(cand.key)
		if err != nil {
			return err
		}
		if e == nil || e.Final != cand.final {
			continue
		}
		task := c.o.Progress.Task("restore", 0)
		err = c.store.Restore(ctx, e, env.Root, snapshot.RestoreOptions{NoSync: true, Log: env.Log, Progress: task})
		task.Done(err != nil)
		if errors.Is(err, stagecache.ErrCorrupt) {
			c.log.Warn("ignoring a corrupt cache entry: its steps run again", "key", stagecache.Short(cand.key), "step", e.Step, "err", err)
			c.report.Ignored = append(c.report.Ignored, cand.key)
			continue
		}
		if err != nil {
			return fmt.Errorf("restoring the cached image root: %w", err)
		}
		if len(e.State) > 0 {
			if err := json.Unmarshal(e.State, env.State); err != nil {
				return fmt.Errorf("cache entry %s: %w", stagecache.Short(cand.key), err)
			}
		}
		c.resume, c.normalized = cand.upto+1, cand.final
		c.report.Restored = fmt.Sprintf("cache entry %s (%s)", stagecache.Short(cand.key), e.Step)
		return nil
	}
	return nil
}

// reusePrevious links the previous output's root into the staging root
// when it is this build's finished root, untouched since: a no-change
// rebuild then copies nothing.
func (c *stageCache) reusePrevious(ctx context.Context, env *Env, previous *Report) bool {
	if c.final == "" || previous == nil || previous.Cache == nil || previous.Cache.RootKey != c.final || previous.Cache.Fingerprint == nil {
		return false
	}
	prevRoot := previous.Output.Rootfs
	if filepath.Clean(prevRoot) != filepath.Clean(env.FinalRoot) {
		// The recipe moved the root: the old one stays where it was, and
		// must not share its files with the new one.
		return false
	}
	fp, err := stagecache.TreeFingerprint(ctx, prevRoot)
	if err != nil || fp.Digest != previous.Cache.Fingerprint.Digest {
		c.log.Info("not reusing the previous output's root: it changed since it was built", "path", prevRoot)
		return false
	}
	if err := stagecache.LinkTree(ctx, prevRoot, env.Root); err != nil {
		c.log.Info("not reusing the previous output's root", "path", prevRoot, "err", err)
		return false
	}
	if previous.Cache.State != nil {
		*env.State = *previous.Cache.State
	}
	c.resume, c.normalized, c.linked = c.last+1, true, true
	c.report.Restored = "previous output " + prevRoot
	return true
}

// skip reports whether step i's result came with the restored root.
func (c *stageCache) skip(i int) bool {
	return c.on() && !isOutputOnly(c.steps[i]) && i < c.resume
}

// stepReport fills in the cache's columns of a step's line.
func (c *stageCache) stepReport(i int, sr *StepReport) {
	if !c.on() {
		return
	}
	switch {
	case isOutputOnly(c.steps[i]):
		if _, ok := c.steps[i].(archiver); ok {
			sr.Key = c.snap
			sr.Cache = c.status[i]
		}
	default:
		sr.Key = c.keys[i]
		if c.keys[i] != "" {
			sr.Cache = CacheMiss
			if c.skip(i) {
				sr.Cache = CacheHit
			}
		}
	}
}

// afterRun stores the root after step i when the work since the last
// stored root is worth it (worthStoring).
func (c *stageCache) afterRun(ctx context.Context, i int, env *Env, elapsed time.Duration, sr *StepReport) {
	if !c.on() || isOutputOnly(c.steps[i]) || c.keys[i] == "" {
		return
	}
	c.unsaved += elapsed
	if !worthStoring(c.unsaved, c.lastStore) {
		env.Log.Debug("not storing the root: redoing the steps since the last stored one is cheaper", "work", c.unsaved.Round(time.Millisecond))
		return
	}
	if e, _ := c.store.Lookup(c.keys[i]); e != nil {
		c.unsaved = 0
		return
	}
	start := c.o.Clock()
	if err := c.put(ctx, env, c.keys[i], c.steps[i].Name(), false, snapshot.Options{}); err != nil {
		env.Log.Warn("could not store the root in the stage cache", "err", err)
		return
	}
	c.lastStore = c.o.Clock().Sub(start)
	c.unsaved = 0
	sr.Stored, sr.StoreSeconds = true, c.lastStore.Seconds()
	env.Log.Info("root stored in the stage cache", "key", stagecache.Short(c.keys[i]), "elapsed", c.lastStore.Round(time.Millisecond))
}

func (c *stageCache) meta(env *Env, key, step string, final bool) (stagecache.Meta, error) {
	state, err := json.Marshal(env.State)
	if err != nil {
		return stagecache.Meta{}, err
	}
	return stagecache.Meta{Key: key, Step: step, Recipe: env.Recipe.Name, Final: final, Version: c.o.Version, State: state}, nil
}

func (c *stageCache) put(ctx context.Context, env *Env, key, step string, final bool, o snapshot.Options) error {
	m, err := c.meta(env, key, step, final)
	if err != nil {
		return err
	}
	task := c.o.Progress.Task("cache", 0)
	o.Log, o.Progress = env.Log, task
	_, err = c.store.Put(ctx, m, env.Root, o)
	task.Done(err != nil)
	return err
}

// finishedRoot stores the normalized root as the final entry when a
// snapshot step will not (its archive is the entry, for free), by the rule
// of afterRun: normalizing took norm, and redoing the work since the last
// stored root is cheaper than storing it, unless that work is long.
func (c *stageCache) finishedRoot(ctx context.Context, env *Env, norm time.Duration, snapshotFollows bool) {
	if !c.on() || c.final == "" || c.normalized || snapshotFollows {
		return
	}
	if !worthStoring(c.unsaved+norm, c.lastStore) {
		env.Log.Debug("not storing the finished root: redoing the steps since the last stored one is cheaper", "work", (c.unsaved + norm).Round(time.Millisecond))
		return
	}
	if e, _ := c.store.Lookup(c.final); e != nil {
		return
	}
	start := c.o.Clock()
	if err := c.put(ctx, env, c.final, "finished", true, snapshot.Options{SourceDateEpoch: env.SourceDateEpoch}); err != nil {
		env.Log.Warn("could not store the finished root in the stage cache", "err", err)
		return
	}
	env.Log.Info("finished root stored in the stage cache", "key", stagecache.Short(c.final), "elapsed", c.o.Clock().Sub(start).Round(time.Millisecond))
}

// archiver is the snapshot step: it writes an archive of the finished
// root, which the stage cache keeps as that root's entry, keyed with the
// options it is written with (defaults filled in), and gives back to the
// next build in place of a run.
type archiver interface {
	BuildStep
	normalizedOptions(env *Env) (snapshot.Options, error)
}

// reuse puts the archive of the finished root, in the recipe's
// compression, where the snapshot step writes: it is the snapshot of this
// very root.
func (c *stageCache) reuse(ctx context.Context, i int, env *Env) bool {
	if !c.on() || c.snap == "" {
		return false
	}
	c.status[i] = CacheMiss
	e, err := c.store.Lookup(c.snap)
	if err != nil || e == nil {
		return false
	}
	if err := c.store.Export(ctx, e, env.layout().Snapshot()); err != nil {
		env.Log.Warn("not reusing the cached snapshot", "err", err)
		return false
	}
	env.State.Snapshot = &SnapshotInfo{Path: env.Recipe.Outputs.Snapshot.Path, SHA256: e.SHA256, Bytes: e.Size, Entries: e.Entries}
	c.status[i] = CacheHit
	env.Log.Info("snapshot taken from the stage cache", "path", env.finalLayout().Snapshot(), "sha256", e.SHA256)
	return true
}

// keep makes the snapshot just written the finished root's entry.
func (c *stageCache) keep(ctx context.Context, env *Env, s archiver) {
	if !c.on() || c.snap == "" || env.State.Snapshot == nil {
		return
	}
	if e, _ := c.store.Lookup(c.snap); e != nil {
		return
	}
	o, err := s.normalizedOptions(env)
	if err != nil {
		return
	}
	m, err := c.meta(env, c.snap, "finished", true)
	if err != nil {
		return
	}
	info := env.State.Snapshot
	m.SHA256, m.Entries, m.Compression, m.Level = info.SHA256, info.Entries, o.Compression, o.Level
	if _, err := c.store.PutArchive(ctx, m, env.layout().Snapshot()); err != nil {
		env.Log.Warn("could not store the finished root in the stage cache", "err", err)
	}
}

// finish records what the build used, for pruning, and releases the
// store.
func (c *stageCache) finish(rep *Report, env *Env, out string) {
	if !c.on() {
		return
	}
	defer c.store.Close()
	var keys []string
	for _, k := range c.keys {
		if k != "" {
			keys = append(keys, k)
		}
	}
	for _, k := range []string{c.final, c.snap} {
		if k != "" {
			keys = append(keys, k)
		}
	}
	c.store.Touch(keys...)
	if err := c.store.RecordBuild(stagecache.Build{Recipe: env.Recipe.Name, Output: out, Time: c.o.Clock(), Keys: keys}); err != nil {
		c.log.Warn("could not record the build in the stage cache", "err", err)
	}
	r := c.report
	st := *env.State
	st.Snapshot = nil
	r.State = &st
	rep.Cache = &r
}
