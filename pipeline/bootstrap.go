package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/krgimage/krgimage/bootstrap"
	"github.com/krgimage/krgimage/internal/cachedir"
	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/recipes"
	"github.com/krgimage/krgimage/stagecache"
)

// bootstrapStep creates the base system, as the seed does with
// "debootstrap lenny /NFSROOT/kerrighed". The recipe's top-level suite,
// architecture, variant, components, mirror, keyring, insecure and archived
// say what to install; the bootstrap section how:
//
//	bootstrap:
//	  method: native      # native (the default) or debootstrap
//	  include: [less]     # more packages (debootstrap --include)
//	  exclude: [tzdata]   # fewer; a package another needs stays
//	  merged_usr: auto    # auto (what the suite expects), yes or no
//	  foreign: false      # debootstrap --foreign, second stage under QEMU
//	  lockfile: node.lock # default: the recipe's name with .lock, if present
//
// The native method installs the packages debootstrap would, several times
// faster: downloads checked against the signed Release and kept in
// CACHE-DIR/packages, the essential set extracted by krgimage, dpkg run in
// the image once per Pre-Depends layer. With a lockfile (krgimage lock) it
// installs exactly the pinned versions.
type bootstrapStep struct {
	// host replaces the build machine in tests.
	host bootstrap.Host
	// lock is the lockfile Validate found, for the native method.
	lock     *bootstrap.Lockfile
	lockPath string
}

func (*bootstrapStep) Name() string { return "bootstrap" }

func (s *bootstrapStep) native(env *Env) bool { return env.Recipe.Bootstrap.Method == "native" }

func (s *bootstrapStep) options(env *Env) bootstrap.Options {
	o := bootstrapOptions(env.Recipe, env.Mirror.URL, env.Root)
	if s.native(env) {
		o.Lock = s.lock
	}
	return o
}

// bootstrapOptions translates the recipe for the bootstrap package.
func bootstrapOptions(r *recipes.Recipe, mirror, root string) bootstrap.Options {
	return bootstrap.Options{
		Suite:      r.Suite,
		Arch:       r.Architecture,
		Variant:    r.Variant,
		Mirror:     mirror,
		Components: r.Components,
		Include:    r.Bootstrap.Include,
		Exclude:    r.Bootstrap.Exclude,
		Keyring:    r.Path(r.Keyring),
		Insecure:   r.Insecure,
		Archived:   r.Archived,
		Foreign:    r.Bootstrap.Foreign,
		MergedUsr:  r.Bootstrap.MergedUsr,
		Target:     root,
	}
}

// Lock resolves the native bootstrap's package set for o.Recipe from o's
// mirror and writes it as a lockfile: to path when given, else where a
// build of the recipe looks for it. It returns the path written.
func Lock(ctx context.Context, o Options, path string) (string, *bootstrap.Lockfile, error) {
	r := o.Recipe
	if path == "" {
		if path, _ = lockfilePath(r); path == "" {
			return "", nil, fmt.Errorf("%s is not a file a lockfile could sit beside: name the output file", r.Source)
		}
	}
	if r.Bootstrap.Method != "native" {
		o.Log.Warn("the recipe bootstraps with debootstrap, which ignores lockfiles: set bootstrap.method: native", "recipe", r.Source)
	}
	n, err := newNative(o.Runner, o.Log, o.CacheDir)
	if err != nil {
		return "", nil, err
	}
	l, err := n.Lock(ctx, bootstrapOptions(r, o.Mirror.URL, ""))
	if err != nil {
		return "", nil, err
	}
	if err := l.Write(path); err != nil {
		return "", nil, err
	}
	return path, l, nil
}

// lockfilePath is where the recipe's lockfile is: the one it names, else
// the recipe's own path with .lock (used only when it exists).
func lockfilePath(r *recipes.Recipe) (path string, named bool) {
	if r.Bootstrap.Lockfile != "" {
		return r.Path(r.Bootstrap.Lockfile), true
	}
	if r.File != "" {
		return bootstrap.LockPath(r.File), false
	}
	return "", false
}

func (s *bootstrapStep) driver(env *Env) *bootstrap.Debootstrap {
	d := bootstrap.NewDebootstrap(env.Runner, env.Log)
	if s.host != nil {
		d.Host = s.host
	}
	return d
}

func (s *bootstrapStep) nativeDriver(env *Env) (*bootstrap.Native, error) {
	n, err := newNative(env.Runner, env.Log, env.CacheDir)
	if err != nil {
		return nil, err
	}
	if s.host != nil {
		n.Host = s.host
	}
	return n, nil
}

// newNative returns the native bootstrapper with its package cache in
// cacheDir, cachedir.Default's when the caller gives none; never a shared
// directory's such as /tmp's, which anyone could prepare for root.
func newNative(r *run.Runner, log *slog.Logger, cacheDir string) (*bootstrap.Native, error) {
	if cacheDir == "" {
		d, err := cachedir.Default(os.Getenv, os.Geteuid())
		if err != nil {
			return nil, err
		}
		cacheDir = d
	}
	dir, err := cachedir.Open(cacheDir)
	if err != nil {
		return nil, err
	}
	return bootstrap.NewNative(r, log, dir), nil
}

func (s *bootstrapStep) Describe(env *Env) []string {
	o := s.options(env)
	o.Lock = nil // debootstrap's command line, for the record
	o.Mirror = debarchive.RedactURL(o.Mirror)
	args := strings.Join(bootstrap.Args(o), " ")
	var lines []string
	if s.native(env) {
		lines = append(lines, "native bootstrap: the packages of debootstrap "+args)
		// The plan is printed before validation: read the lockfile here.
		if l, path, err := findLock(env.Recipe); l != nil {
			lines = append(lines, fmt.Sprintf("exactly the %d packages %s pins (Release of %s)", len(l.Packages), path, l.Release.Date.Format(time.DateOnly)))
		} else if err != nil {
			lines = append(lines, err.Error())
		}
		lines = append(lines, "downloads checked against the signed Release, kept in "+filepath.Join(env.CacheDir, "packages"))
	} else {
		lines = append(lines, "debootstrap "+args)
	}
	lines = append(lines, bootstrap.Relaxations(o, s.native(env))...)
	if o.Foreign {
		lines = append(lines, "then the second stage inside the image under qemu-user-static")
	}
	tools := "debootstrap and gpgv installed, "
	if s.native(env) {
		tools = ""
	}
	lines = append(lines, "checks first: root, "+tools+"an empty target, the mirror carries "+
		o.Suite+"/"+o.Arch+" ("+strings.Join(o.Components, ", ")+"), the host runs "+o.Arch+" binaries")
	return lines
}

// Validate reads the lockfile of a native bootstrap.
func (s *bootstrapStep) Validate(_ context.Context, env *Env) error {
	var err error
	s.lock, s.lockPath, err = findLock(env.Recipe)
	return err
}

// findLock reads the lockfile of a native bootstrap: one the recipe names
// must exist and parse; the implicit one is used when it exists.
func findLock(r *recipes.Recipe) (*bootstrap.Lockfile, string, error) {
	if r.Bootstrap.Method != "native" {
		return nil, "", nil
	}
	path, named := lockfilePath(r)
	if path == "" {
		return nil, "", nil
	}
	l, err := bootstrap.ReadLockfile(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && !named:
		return nil, "", nil
	case errors.Is(err, os.ErrNotExist):
		return nil, "", fmt.Errorf("lockfile %s does not exist: make it with krgimage lock", path)
	case err != nil:
		return nil, "", fmt.Errorf("lockfile %s: %w", path, err)
	}
	return l, path, nil
}

func (s *bootstrapStep) Preflight(ctx context.Context, env *Env) error {
	if s.native(env) {
		n, err := s.nativeDriver(env)
		if err != nil {
			return err
		}
		return n.Preflight(ctx, s.options(env))
	}
	return s.driver(env).Preflight(ctx, s.options(env))
}

func (s *bootstrapStep) Run(ctx context.Context, env *Env) error {
	if !s.native(env) {
		return s.driver(env).Run(ctx, s.options(env), env.Task)
	}
	if s.lock != nil {
		env.Log.Info("using the lockfile", "path", s.lockPath)
	}
	n, err := s.nativeDriver(env)
	if err != nil {
		return err
	}
	_, err = n.Run(ctx, s.options(env), env.Task)
	return err
}

func (*bootstrapStep) addKey(ctx context.Context, env *Env, k *stagecache.Key, rel *releases) error {
	r := env.Recipe
	k.AddBytes("bootstrap", canonical(struct {
		Suite, Architecture, Variant string
		Components                   []string
		Insecure, Archived           bool
		Bootstrap                    recipes.Bootstrap
	}{r.Suite, r.Architecture, r.Variant, r.Components, r.Insecure, r.Archived, r.Bootstrap}))
	k.Add("mirror", env.Mirror.URL)
	if r.Keyring != "" {
		if err := k.AddPath("keyring", r.Path(r.Keyring)); err != nil {
			return err
		}
	}
	l, path, err := findLock(r)
	if err != nil {
		return err
	}
	if l != nil {
		// The lockfile pins every package: it, not the mirror's state,
		// says what is installed.
		return k.AddPath("lockfile", path)
	}
	re, err := rel.get(ctx, env.Mirror.URL, r.Suite, r.Components, r.Architecture)
	if err != nil {
		return err
	}
	k.Add("indices", re.Indices)
	return nil
}

// lockedMirrorKey adds the suite's package indices to the key of the
// first step after a bootstrap from a lockfile. The lockfile pins the
// base system only: whatever a later step installs comes from the
// mirror's indices of the day (the native bootstrap leaves no APT lists,
// so the first apt-get fetches them), unless an apt-sources step, which
// keys its own archives, comes first.
func lockedMirrorKey(ctx context.Context, env *Env, k *stagecache.Key, rel *releases) error {
	r := env.Recipe
	if l, _, err := findLock(r); err != nil || l == nil {
		return err
	}
	re, err := rel.get(ctx, env.Mirror.URL, r.Suite, r.Components, r.Architecture)
	if err != nil {
		return err
	}
	k.Add("mirror indices", re.Indices)
	return nil
}
