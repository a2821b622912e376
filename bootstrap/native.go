package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"pault.ag/go/debian/version"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/internal/cachedir"
	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/internal/fsutil"
	"github.com/krgimage/krgimage/internal/progress"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/recipes"
)

// Native is krgimage's own bootstrapper. It makes the system debootstrap
// makes for the same suite, variant and package lists, several times
// faster: see the package documentation.
type Native struct {
	Runner *run.Runner
	Log    *slog.Logger
	// Host answers the questions preflight asks about this machine.
	Host Host
	// CacheDir holds the shared package cache (a "packages" directory
	// in it).
	CacheDir string
	// Jobs is how many downloads run at once.
	Jobs int
	// Priv makes the calls that need root; tests use a fake.
	Priv Privileged
	// Exec runs commands inside the target; nil is the real chroot.
	Exec chroot.Executor
	// Now is the time signatures are checked at (time.Now when nil).
	Now func() time.Time
}

// NewNative returns the native bootstrapper with its package cache under
// cacheDir.
func NewNative(r *run.Runner, log *slog.Logger, cacheDir string) *Native {
	return &Native{Runner: r, Log: log, Host: SystemHost(), CacheDir: cacheDir, Jobs: 8, Priv: SystemPrivileged{}}
}

// Result is what a native bootstrap did.
type Result struct {
	// Packages installed, sorted by name.
	Packages []LockedPackage
	Stats    Stats
	// Phase durations: resolve (Release, index, dependencies), fetch,
	// install.
	Resolve, Fetch, Install time.Duration
}

func (n *Native) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

func (n *Native) fetcher() *Fetcher {
	f := NewFetcher(NewCache(filepath.Join(n.CacheDir, "packages")), n.Log)
	if n.Jobs > 0 {
		f.Jobs = n.Jobs
	}
	return f
}

// Preflight checks, in seconds, what would make Run fail later.
func (n *Native) Preflight(ctx context.Context, o Options) error {
	var errs []error
	if n.Host.Geteuid() != 0 {
		errs = append(errs, fmt.Errorf("%w: the native bootstrap sets owners, creates device nodes and chroots: run krgimage build as root", ErrNotRoot))
	}
	if o.Foreign {
		errs = append(errs, fmt.Errorf("%w: foreign bootstrapping needs method: debootstrap", ErrArch))
	}
	if empty, err := fsutil.IsEmptyDir(o.Target); err != nil {
		errs = append(errs, fmt.Errorf("target %s: %w", o.Target, err))
	} else if !empty {
		errs = append(errs, fmt.Errorf("%w: %s already has files in it", ErrTargetNotEmpty, o.Target))
	}
	if m := n.Host.Machine(); !canRunNatively(m, o.Arch) && !n.Host.Binfmt(qemuArch(o.Arch)) {
		errs = append(errs, fmt.Errorf("%w: this %s host cannot run %s binaries, which dpkg's maintainer scripts are: use method: debootstrap with foreign: true", ErrArch, m, o.Arch))
	}
	if o.Lock != nil {
		if err := o.Lock.check(o); err != nil {
			errs = append(errs, err)
		}
	} else if err := CheckMirror(ctx, n.Host.HTTP(), o, n.now(), n.Log); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// loadKeyrings reads the recipe's keyring, or Debian's: the current keys,
// and for an archived suite the removed ones too, where debootstrap looks
// for lenny's.
func loadKeyrings(o Options) (*debarchive.Keyring, error) {
	if o.Keyring != "" {
		return debarchive.LoadKeyring(o.Keyring)
	}
	k, err := debarchive.LoadKeyring(debarchive.DefaultKeyring)
	if !o.Archived {
		return k, err
	}
	removed, rerr := debarchive.LoadKeyring(debarchive.RemovedKeyring)
	switch {
	case err != nil && rerr != nil:
		return nil, errors.Join(err, rerr)
	case err != nil:
		return removed, nil
	case rerr == nil:
		k.Add(removed)
	}
	return k, nil
}

// resolved is a package set ready to fetch.
type resolved struct {
	codename string
	release  LockedRelease
	pkgs     []LockedPackage
}

// resolve reads the suite and works out the package set, or takes it from
// the lockfile.
func (n *Native) resolve(ctx context.Context, o Options, f *Fetcher) (*resolved, error) {
	if o.Lock != nil {
		if err := o.Lock.check(o); err != nil {
			return nil, err
		}
		n.Log.Info("installing the packages the lockfile pins", "packages", len(o.Lock.Packages), "release_date", o.Lock.Release.Date)
		return &resolved{codename: o.Lock.Release.Codename, release: o.Lock.Release, pkgs: o.Lock.Packages}, nil
	}
	mirror, err := parseMirror(o.Mirror)
	if err != nil {
		return nil, err
	}
	ro, err := LoadTrust(o, n.now())
	if err != nil {
		return nil, err
	}
	n.Log.Info("Retrieving InRelease")
	repo, err := FetchRelease(ctx, f.Client, mirror, o.Suite, ro, n.Log)
	if err != nil {
		return nil, err
	}
	f.metadata.Add(repo.fetched)
	rel := repo.Release
	if len(rel.Architectures) > 0 && !slices.Contains(rel.Architectures, o.Arch) {
		return nil, fmt.Errorf("%w: %s has no %s packages (it has %s)", ErrUnknownSuite, o.Suite, o.Arch, strings.Join(rel.Architectures, " "))
	}
	u, _ := url.Parse(o.Mirror)
	https := u != nil && u.Scheme == "https"
	// The same Release and selection always resolve to the same set:
	// a rebuild takes it from the cache instead of reading the indexes.
	memo := memoKey(repo.ID, o, https)
	if l := n.readMemo(memo); l != nil {
		return &resolved{codename: l.Release.Codename, release: l.Release, pkgs: l.Packages}, nil
	}
	n.Log.Info("Retrieving Packages", "components", strings.Join(o.Components, " "))
	start := time.Now()
	pkgs, err := repo.Packages(ctx, f, o.Components, o.Arch)
	if err != nil {
		return nil, err
	}
	ix := NewIndex(o.Arch, pkgs, n.Log)
	n.Log.Debug("index read", "packages", ix.Len(), "elapsed", time.Since(start).Round(time.Millisecond))
	codename := rel.Codename
	if codename == "" {
		codename = o.Suite
	}
	seeds, drop := ix.Seeds(Selection{Codename: codename, Variant: variantName(o.Variant), Include: o.Include, Exclude: o.Exclude, HTTPS: https})
	n.Log.Info("Resolving dependencies of required packages", "seeds", len(seeds))
	res, err := ix.Resolve(seeds, drop, o.Exclude, n.Log)
	if err != nil {
		return nil, err
	}
	for _, p := range res.Packages {
		n.Log.Debug("selected", "package", p.ID(), "why", res.Why[p.Name])
	}
	out := &resolved{codename: codename, release: LockedRelease{Codename: codename, Suite: rel.Suite, Version: rel.Version, Date: rel.Date}}
	for _, p := range res.Packages {
		out.pkgs = append(out.pkgs, LockedPackage{Name: p.Name, Version: p.Version, Architecture: p.Architecture,
			Filename: p.Filename, Size: p.Size, SHA256: p.SHA256, SHA1: weakOnly(p.SHA256, p.SHA1), MD5: weakOnly(p.SHA256+p.SHA1, p.MD5)})
	}
	l := &Lockfile{Format: LockFormat, Suite: o.Suite, Architecture: o.Arch, Variant: variantName(o.Variant),
		Components: o.Components, Include: o.Include, Exclude: o.Exclude, Release: out.release, Packages: out.pkgs}
	n.writeMemo(memo, l)
	return out, nil
}

// resolverVersion changes whenever the resolver could answer differently,
// so that no remembered resolution outlives the rules that made it.
const resolverVersion = 1

// memoKey identifies a resolution: the Release it read and everything of
// the options that changes the result.
func memoKey(releaseID string, o Options, https bool) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%d\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%t", LockFormat, resolverVersion, releaseID, o.Arch, variantName(o.Variant),
		strings.Join(o.Components, ","), strings.Join(sortedCopy(o.Include), ","), strings.Join(sortedCopy(o.Exclude), ","), https)
	return hex.EncodeToString(h.Sum(nil))
}

// memoPath is where the resolution key is remembered; the ledger in the
// same directory vouches for each (cachedir.Ledger).
func (n *Native) memoPath(key string) (memo, ledger string) {
	dir := filepath.Join(n.CacheDir, "packages", "resolved")
	return filepath.Join(dir, key+".lock"), filepath.Join(dir, "ledger")
}

// readMemo returns the resolution remembered under key, or nil. A memo
// pins the packages installed as root: it is used only when the cache's
// ledger, which only the cache's owner can have written, has its digest.
func (n *Native) readMemo(key string) *Lockfile {
	path, ledgerDir := n.memoPath(key)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	ledger, err := cachedir.OpenLedger(ledgerDir)
	if err == nil {
		err = ledger.Verify(key, b)
	}
	var l *Lockfile
	if err == nil {
		l, err = ParseLockfile(b)
	}
	switch {
	case errors.Is(err, cachedir.ErrUnrecorded):
		n.Log.Debug("resolving anew: the remembered package set is not in the cache's ledger", "path", path)
		return nil
	case err != nil:
		n.Log.Warn("resolving anew: not using the remembered package set", "path", path, "err", err)
		return nil
	}
	n.Log.Debug("package set unchanged since the last build", "path", path)
	return l
}

// writeMemo remembers l as the resolution key, and records it in the
// ledger. Failing costs only the next build's resolution.
func (n *Native) writeMemo(key string, l *Lockfile) {
	path, ledgerDir := n.memoPath(key)
	b, err := l.Marshal()
	var ledger *cachedir.Ledger
	if err == nil {
		ledger, err = cachedir.OpenLedger(ledgerDir)
	}
	if err == nil {
		err = fsutil.WriteFileAtomic(path, b, 0o644)
	}
	if err == nil {
		err = ledger.Record(key, b)
	}
	if err != nil {
		n.Log.Debug("could not remember the package set", "path", path, "err", err)
	}
}

// weakOnly keeps a weak checksum only when nothing stronger exists.
func weakOnly(stronger, weak string) string {
	if stronger != "" {
		return ""
	}
	return weak
}

func parseMirror(m string) (*url.URL, error) {
	u, err := debarchive.ParseMirror(m)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid mirror URL %q: %w", ErrMirror, debarchive.RedactURL(m), err)
	}
	return u, nil
}

// Lock resolves the package set of o and returns it as a lockfile; it
// downloads the Release and the indexes, not the packages.
func (n *Native) Lock(ctx context.Context, o Options) (*Lockfile, error) {
	o.Lock = nil
	f := n.fetcher()
	f.AllowWeak = o.Archived || o.Insecure
	r, err := n.resolve(ctx, o, f)
	if err != nil {
		return nil, err
	}
	return &Lockfile{Format: LockFormat, Suite: o.Suite, Architecture: o.Arch, Variant: variantName(o.Variant),
		Components: o.Components, Include: o.Include, Exclude: o.Exclude, Release: r.release, Packages: r.pkgs}, nil
}

// Run creates the base system in o.Target.
func (n *Native) Run(ctx context.Context, o Options, task *progress.Task) (*Result, error) {
	if err := os.MkdirAll(o.Target, 0o755); err != nil {
		return nil, err
	}
	f := n.fetcher()
	f.AllowWeak = o.Archived || o.Insecure
	res := &Result{}
	t0 := time.Now()
	task.SetLabel("reading the suite")
	r, err := n.resolve(ctx, o, f)
	if err != nil {
		return nil, err
	}
	res.Resolve = time.Since(t0)
	res.Packages = r.pkgs

	t1 := time.Now()
	mirror, err := parseMirror(o.Mirror)
	if err != nil {
		return nil, err
	}
	items := make([]Item, len(r.pkgs))
	var total int64
	for i, p := range r.pkgs {
		h, _ := p.sum().Best()
		items[i] = Item{Path: p.Filename, Size: p.Size, Hash: h, Name: p.Name + " " + p.Version}
		total += p.Size
	}
	n.Log.Info("Retrieving packages", "packages", len(items), "bytes", total)
	task.SetTotal(int64(len(items)))
	f.Progress = func(done, all int, bytes, totalBytes int64) {
		task.SetCurrent(int64(done))
		task.SetLabel(fmt.Sprintf("retrieving packages: %s of %s", humanBytes(bytes), humanBytes(totalBytes)))
	}
	paths, err := f.FetchAll(ctx, mirror, items)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && o.Lock != nil {
			return nil, fmt.Errorf("%w: %v; the mirror no longer has a version the lockfile pins: point the recipe's mirror at a snapshot of the archive from %s, or run krgimage lock again",
				ErrLockMismatch, err, o.Lock.Release.Date.Format(time.DateOnly))
		}
		return nil, err
	}
	res.Stats = f.Stats()
	res.Fetch = time.Since(t1)
	n.Log.Info("packages retrieved", "downloaded", res.Stats.Downloaded, "files", res.Stats.Files, "reused", res.Stats.Reused, "elapsed", res.Fetch.Round(time.Millisecond))

	t2 := time.Now()
	debs, err := readDebs(paths, r.pkgs)
	if err != nil {
		return nil, err
	}
	plan, err := planInstall(debs, o.Arch)
	if err != nil {
		return nil, err
	}
	t := n.target(o, r.codename, debs)
	in := &installer{log: n.Log, runner: n.Runner, priv: n.Priv, exec: n.Exec, task: task}
	if err := in.install(ctx, t, plan); err != nil {
		return nil, err
	}
	res.Install = time.Since(t2)
	n.Log.Info("Base system installed successfully", "packages", len(debs), "downloaded", res.Stats.Downloaded, "reused", res.Stats.Reused,
		"resolve", res.Resolve.Round(time.Millisecond), "fetch", res.Fetch.Round(time.Millisecond), "install", res.Install.Round(time.Millisecond),
		"elapsed", time.Since(t0).Round(time.Millisecond))
	return res, nil
}

// readDebs reads every package's control fields (several at once) and
// checks that each file is the package the index promised.
func readDebs(paths []string, pkgs []LockedPackage) ([]*debFile, error) {
	debs := make([]*debFile, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			d, err := readDeb(p)
			switch {
			case err != nil:
				errs[i] = err
			case d.Name != pkgs[i].Name || d.Version != pkgs[i].Version:
				errs[i] = fmt.Errorf("%w: %s is %s %s, not %s %s", ErrMalformed, pkgs[i].Filename, d.Name, d.Version, pkgs[i].Name, pkgs[i].Version)
			}
			debs[i] = d
		}()
	}
	wg.Wait()
	return debs, errors.Join(errs...)
}

// target works out the layout the suite expects.
func (n *Native) target(o Options, codename string, debs []*debFile) target {
	v := recipes.SuiteVersion(codename)
	merged := false
	switch o.MergedUsr {
	case "yes":
		merged = true
	case "no":
	default:
		// debootstrap's rules: merged from buster on, except the buildd
		// variant up to bookworm (buildds stayed unmerged that long).
		merged = v >= 10 && !(variantName(o.Variant) == "buildd" && v <= 12)
	}
	t := target{
		Root:             o.Target,
		Arch:             o.Arch,
		Merged:           merged,
		SkipUsrMergeFlag: !merged && v >= 12,
		UnsafeIO:         true,
	}
	for _, d := range debs {
		if d.Name == "dpkg" {
			min, _ := version.Parse("1.15.8.6")
			t.UnsafeIO = version.Compare(d.ver, min) >= 0
		}
	}
	if u, err := url.Parse(o.Mirror); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		t.Sources = "deb " + strings.TrimRight(o.Mirror, "/") + " " + o.Suite + " " + strings.Join(o.Components, " ")
	}
	return t
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
