package pipeline

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/cachedir"
	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/recipes"
	"github.com/krgimage/krgimage/stagecache"
)

// fakeClock is a build's clock that steps move forward by their cost.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// keyedStep is a step the stage cache can key: it writes its value into
// the image root and takes cost on the build's clock.
type keyedStep struct {
	name, value string
	cost        time.Duration
	clock       *fakeClock
	runs        *[]string
}

func (s *keyedStep) Name() string                         { return s.name }
func (s *keyedStep) Describe(*Env) []string               { return nil }
func (s *keyedStep) Validate(context.Context, *Env) error { return nil }
func (s *keyedStep) addKey(_ context.Context, _ *Env, k *stagecache.Key, _ *releases) error {
	k.Add("value", s.value)
	return nil
}

func (s *keyedStep) Run(_ context.Context, env *Env) error {
	*s.runs = append(*s.runs, s.name)
	if err := os.MkdirAll(env.Root, 0o755); err != nil {
		return err
	}
	s.clock.advance(s.cost)
	env.State.KernelVersion += s.name
	return os.WriteFile(filepath.Join(env.Root, s.name), []byte(s.value), 0o644)
}

// cacheBuild is one build of the four steps a (10s), b (10s), c, d
// (50ms each) with the given values.
type cacheBuild struct {
	t        *testing.T
	cacheDir string
	clock    *fakeClock
	recipe   string
}

func (cb *cacheBuild) run(out string, values map[string]string, extra ...BuildStep) (*Report, []string) {
	t := cb.t
	t.Helper()
	var runs []string
	var steps []BuildStep
	for _, name := range []string{"a", "b", "c", "d"} {
		cost := 50 * time.Millisecond
		if name == "a" || name == "b" {
			cost = 10 * time.Second
		}
		v := values[name]
		if v == "" {
			v = name + "1"
		}
		steps = append(steps, &keyedStep{name: name, value: v, cost: cost, clock: cb.clock, runs: &runs})
	}
	o := testOptions(t, out, append(steps, extra...)...)
	if cb.recipe != "" {
		r, err := recipes.Parse([]byte(cb.recipe), "test.yaml", recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
		if err != nil {
			t.Fatal(err)
		}
		o.Recipe = r
	}
	o.Clock, o.StageCache, o.CacheDir = cb.clock.Now, true, cb.cacheDir
	rep, err := Build(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return rep, runs
}

func cachePattern(rep *Report) string {
	var out []string
	for _, s := range rep.Steps {
		c := s.Name + ":" + s.Cache
		if s.Stored {
			c += "+stored"
		}
		out = append(out, c)
	}
	return strings.Join(out, " ")
}

func requireRootForCache(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t, "restoring roots keeps their owners")
}

// TestStageCache walks the cache through what nightly builds meet: no
// change, a late change, an early change, a corrupt entry, a previous
// output someone modified, and --no-cache.
func TestStageCache(t *testing.T) {
	requireRootForCache(t)
	dir := t.TempDir()
	cb := &cacheBuild{t: t, cacheDir: filepath.Join(dir, "cache"), clock: &fakeClock{t: time.Unix(1_800_000_000, 0)}}
	out1, out2 := filepath.Join(dir, "out1"), filepath.Join(dir, "out2")
	check := func(name string, rep *Report, runs []string, wantPattern, wantRuns, wantFrom string) {
		t.Helper()
		if got := cachePattern(rep); got != wantPattern {
			t.Errorf("%s: cache pattern\n got %s\nwant %s", name, got, wantPattern)
		}
		if got := strings.Join(runs, " "); got != wantRuns {
			t.Errorf("%s: ran %q, want %q", name, got, wantRuns)
		}
		if rep.Cache == nil || !strings.HasPrefix(rep.Cache.Restored, wantFrom) {
			t.Errorf("%s: restored from %+v, want %q", name, rep.Cache, wantFrom)
		}
	}
	content := func(out, name string) string {
		b, _ := os.ReadFile(filepath.Join(out, "rootfs", name))
		return string(b)
	}

	rep, runs := cb.run(out1, nil)
	check("cold", rep, runs, "a:miss+stored b:miss+stored c:miss d:miss", "a b c d", "")
	if rep.Cache.RootKey == "" || rep.Cache.Fingerprint == nil || rep.Image == nil || rep.Image.Entries != 4 {
		t.Fatalf("cold build report: cache %+v, image %+v", rep.Cache, rep.Image)
	}
	b := rep.Steps[1].Key

	rep, runs = cb.run(out1, nil)
	check("no change, same output", rep, runs, "a:hit b:hit c:hit d:hit", "", "previous output")
	if rep.Cache.State == nil || rep.Cache.State.KernelVersion != "abcd" {
		t.Errorf("the state of the reused root was lost: %+v", rep.Cache.State)
	}

	// The finished root is not stored: c and d are cheaper to redo.
	rep, runs = cb.run(out2, nil)
	check("no change, new output", rep, runs, "a:hit b:hit c:miss d:miss", "c d", "cache entry "+stagecache.Short(b))
	if content(out2, "d") != "d1" || content(out2, "a") != "a1" {
		t.Errorf("restored a=%q d=%q", content(out2, "a"), content(out2, "d"))
	}

	rep, runs = cb.run(out2, map[string]string{"d": "d2"})
	check("late change", rep, runs, "a:hit b:hit c:miss d:miss", "c d", "cache entry "+stagecache.Short(b))
	if content(out2, "d") != "d2" || content(out2, "a") != "a1" {
		t.Errorf("after the late change: a=%q d=%q", content(out2, "a"), content(out2, "d"))
	}

	rep, runs = cb.run(out2, map[string]string{"a": "a2"})
	check("early change", rep, runs, "a:miss+stored b:miss+stored c:miss d:miss", "a b c d", "")

	// b's root is corrupt: a build must not use it, but start from a's
	// and store b anew.
	s, err := stagecache.Open(filepath.Join(cb.cacheDir, StagesDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Lookup(b)
	if err != nil || e == nil {
		t.Fatalf("b's root is not in the cache: %v", err)
	}
	if err := os.WriteFile(e.ArchivePath(), []byte("not a snapshot"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Close()
	rep, runs = cb.run(filepath.Join(dir, "out3"), nil)
	check("corrupt entry", rep, runs, "a:hit b:miss+stored c:miss d:miss", "b c d", "cache entry")
	if len(rep.Cache.Ignored) != 1 || rep.Cache.Ignored[0] != b {
		t.Errorf("ignored entries = %v, want b's", rep.Cache.Ignored)
	}
	rep, runs = cb.run(filepath.Join(dir, "out4"), nil)
	check("rebuilt entry", rep, runs, "a:hit b:hit c:miss d:miss", "c d", "cache entry "+stagecache.Short(b))

	// Someone wrote into the previous output's root: it is not reused.
	if err := os.WriteFile(filepath.Join(out1, "rootfs", "c"), []byte("c1"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, runs = cb.run(out1, nil)
	check("modified previous output", rep, runs, "a:hit b:hit c:miss d:miss", "c d", "cache entry")

	rep, runs = cb.runNoCache(filepath.Join(dir, "out5"))
	if got := cachePattern(rep); got != "a: b: c: d:" || strings.Join(runs, " ") != "a b c d" || rep.Cache != nil {
		t.Errorf("--no-cache: pattern %q, runs %v, cache %+v", got, runs, rep.Cache)
	}
}

func (cb *cacheBuild) runNoCache(out string) (*Report, []string) {
	t := cb.t
	t.Helper()
	var runs []string
	var steps []BuildStep
	for _, name := range []string{"a", "b", "c", "d"} {
		steps = append(steps, &keyedStep{name: name, value: name + "1", clock: cb.clock, runs: &runs})
	}
	o := testOptions(t, out, steps...)
	o.Clock, o.CacheDir = cb.clock.Now, cb.cacheDir
	rep, err := Build(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return rep, runs
}

// TestStageCacheSnapshot: the finished root's entry is the snapshot
// output itself, and a rebuild takes the snapshot from it.
func TestStageCacheSnapshot(t *testing.T) {
	requireRootForCache(t)
	dir := t.TempDir()
	cb := &cacheBuild{t: t, cacheDir: filepath.Join(dir, "cache"), clock: &fakeClock{t: time.Unix(1_800_000_000, 0)},
		recipe: "name: test\nsuite: bookworm\noutputs:\n  snapshot: {path: image.tar.zst}\n"}
	rep, _ := cb.run(filepath.Join(dir, "out1"), nil, &snapshotStep{})
	if got := cachePattern(rep); got != "a:miss+stored b:miss+stored c:miss d:miss snapshot:miss" {
		t.Errorf("cold: %s", got)
	}
	first := rep.Snapshot
	rep, runs := cb.run(filepath.Join(dir, "out2"), nil, &snapshotStep{})
	if got := cachePattern(rep); got != "a:hit b:hit c:hit d:hit snapshot:hit" || len(runs) > 0 {
		t.Errorf("rebuild: %s, ran %v", got, runs)
	}
	if rep.Snapshot == nil || first == nil || rep.Snapshot.SHA256 != first.SHA256 {
		t.Errorf("snapshot %+v, want the first build's %+v", rep.Snapshot, first)
	}
	var found bool
	for _, o := range rep.Outputs {
		if o.Path == "image.tar.zst" {
			found = o.SHA256 == first.SHA256
		}
	}
	if !found {
		t.Errorf("outputs = %+v, want image.tar.zst with the snapshot's digest", rep.Outputs)
	}
}

func TestWorthStoring(t *testing.T) {
	for _, tt := range []struct {
		work, lastStore time.Duration
		want            bool
	}{
		{65 * time.Second, 0, true},                  // the bootstrap
		{100 * time.Millisecond, 0, false},           // a file or two
		{3 * time.Second, 4 * time.Second, true},     // half the store is enough
		{3 * time.Second, 8 * time.Second, false},    // a small step after a big root
		{1500 * time.Millisecond, time.Second, true}, // ssh's package
		{900 * time.Millisecond, 0, false},           // below the floor
	} {
		if got := worthStoring(tt.work, tt.lastStore); got != tt.want {
			t.Errorf("worthStoring(%s, %s) = %v", tt.work, tt.lastStore, got)
		}
	}
}

// TestReusePreviousSamePlaceOnly: the previous output's root is reused
// through hard links only when the new root takes its place; a root the
// recipe moved elsewhere stays, and must not share its files.
func TestReusePreviousSamePlaceOnly(t *testing.T) {
	dir := t.TempDir()
	prev := filepath.Join(dir, "old-root")
	os.MkdirAll(filepath.Join(prev, "etc"), 0o755)
	os.WriteFile(filepath.Join(prev, "etc/motd"), []byte("hi\n"), 0o644)
	for _, tt := range []struct {
		name, final string
		want        bool
	}{
		{"same place", prev, true},
		{"moved", filepath.Join(dir, "new-root"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Linking changes the files' ctimes, and so the fingerprint.
			fp, err := stagecache.TreeFingerprint(t.Context(), prev)
			if err != nil {
				t.Fatal(err)
			}
			previous := &Report{Cache: &CacheReport{RootKey: "final", Fingerprint: &fp}}
			previous.Output.Rootfs = prev
			c := &stageCache{final: "final", log: logging.Discard(), last: -1}
			env := &Env{Root: filepath.Join(t.TempDir(), "staging"), FinalRoot: tt.final, State: &State{}}
			if got := c.reusePrevious(t.Context(), env, previous); got != tt.want {
				t.Errorf("reusePrevious = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestUntrustedCacheDir: a build refuses a cache directory someone else
// could write or swap, before it runs or preflights any step; Check says
// so too, and creates nothing.
func TestUntrustedCacheDir(t *testing.T) {
	testenv.RequireRoot(t, "a cache directory of another user's")
	for _, tt := range []struct {
		name  string
		setup func(dir string) error
	}{
		{"writable by others", func(dir string) error { return os.Chmod(dir, 0o777) }},
		{"someone else's", func(dir string) error { return os.Chown(dir, 65534, 65534) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := tt.setup(dir); err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			out := filepath.Join(t.TempDir(), "out")
			o := testOptions(t, out, rec.step("a"))
			o.CacheDir, o.StageCache = dir, true
			if err := Check(t.Context(), o); !errors.Is(err, cachedir.ErrUntrusted) {
				t.Errorf("Check = %v, want ErrUntrusted", err)
			}
			if _, err := Build(t.Context(), o); !errors.Is(err, cachedir.ErrUntrusted) {
				t.Fatalf("Build = %v, want ErrUntrusted", err)
			}
			if ev := rec.events(); slices.Contains(ev, "a:preflight") || slices.Contains(ev, "a:run") {
				t.Errorf("steps ran with an untrusted cache: %v", ev)
			}
			if _, err := os.Lstat(out); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the refused build left %s", out)
			}
		})
	}
}

func TestCheckCreatesNoCacheDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	o := testOptions(t, filepath.Join(t.TempDir(), "out"), (&recorder{}).step("a"))
	o.CacheDir = dir
	if err := Check(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Check created the cache directory")
	}
}

// The native bootstrap keeps its packages in the cache directory it is
// given, else the default one, and never in a shared one.
func TestNewNativeCacheDir(t *testing.T) {
	xdg := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", xdg)
	n, err := newNative(nil, logging.Discard(), "")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(xdg, "krgimage"); n.CacheDir != want {
		t.Errorf("default CacheDir = %s, want %s", n.CacheDir, want)
	}
	if fi, err := os.Stat(n.CacheDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the default cache directory: %v, %v; want mode 0700", fi, err)
	}
	bad := filepath.Join(t.TempDir(), "w")
	if err := os.Mkdir(bad, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bad, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := newNative(nil, logging.Discard(), bad); !errors.Is(err, cachedir.ErrUntrusted) {
		t.Errorf("newNative(%s) = %v, want ErrUntrusted", bad, err)
	}
	// Without a home, only root has a default.
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	n, err = newNative(nil, logging.Discard(), "")
	if os.Geteuid() != 0 {
		if !errors.Is(err, cachedir.ErrNoDefault) {
			t.Errorf("newNative without a home = %v, want ErrNoDefault", err)
		}
		return
	}
	// Root's is the system's, as a root build without a home uses it.
	if err != nil || n.CacheDir != cachedir.SystemDir {
		t.Errorf("root's default without a home = %v, %v; want %s", n, err, cachedir.SystemDir)
	}
}
