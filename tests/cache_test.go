package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/testfixture"
	"github.com/krgimage/krgimage/pipeline"
	"github.com/krgimage/krgimage/snapshot"
)

// The builds of this package run without the stage cache unless a test
// asks for it: a cached bootstrap would never print what TestBuildKilled
// and TestBuildInterrupted wait for, and no test should read or fill the
// developer's own cache.
func init() {
	os.Setenv("KRGIMAGE_NO_CACHE", "1")
}

// cacheRecipe is a bookworm minbase with packages installed (long enough
// that the stage cache keeps the root after them) and a late files step
// whose input file the test changes.
func cacheRecipe(t *testing.T, dir string, packages []string, motd string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "motd"), []byte(motd), 0o644); err != nil {
		t.Fatal(err)
	}
	recipe := fmt.Sprintf(`name: cache-test
suite: bookworm
architecture: amd64
variant: minbase
provision:
  - packages: [%s]
  - files: [{src: motd, dst: /etc/motd}]
`, strings.Join(packages, ", "))
	p := filepath.Join(dir, "cache-test.yaml")
	if err := os.WriteFile(p, []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// cachedBuild builds recipe into out with the stage cache in cacheDir and
// returns its report and how long krgimage ran.
func cachedBuild(t testing.TB, recipe, out, cacheDir string, args ...string) (*pipeline.Report, time.Duration) {
	t.Helper()
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), krgimage, append([]string{"build", recipe, "-o", out, "--cache-dir", cacheDir, "--no-cache=false"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("krgimage build: %v\n%s", err, tail(stderr.String(), 40))
	}
	took := time.Since(start)
	return readReport(t, out), took
}

func readReport(t testing.TB, out string) *pipeline.Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, pipeline.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	var rep pipeline.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return &rep
}

// pattern is the steps' cache results, e.g. "bootstrap:hit packages:miss".
func pattern(rep *pipeline.Report) string {
	var out []string
	for _, s := range rep.Steps {
		out = append(out, s.Name+":"+s.Cache)
	}
	return strings.Join(out, " ")
}

// TestStageCache builds a small image cold, then again with no change,
// with a change to its last step's input file, with a change to an early
// step, with a corrupt cache entry and twice at once, and checks which
// steps came from the cache each time and how long the builds took.
func TestStageCache(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	out := filepath.Join(dir, "out")
	pkgs := []string{"less", "procps", "iproute2", "kmod"}
	recipe := cacheRecipe(t, dir, pkgs, "first\n")
	motd := func(out string) string {
		b, _ := os.ReadFile(filepath.Join(out, "rootfs/etc/motd"))
		return string(b)
	}
	times := map[string]time.Duration{}
	expect := func(name string, rep *pipeline.Report, took time.Duration, want string) {
		t.Helper()
		times[name] = took
		t.Logf("%-28s %5.1fs (restore %4.1fs, until in place %5.1fs)  %s", name, took.Seconds(), rep.Cache.RestoreSeconds, rep.DurationSeconds, pattern(rep))
		if got := pattern(rep); got != want {
			t.Errorf("%s: cache pattern\n got %s\nwant %s", name, got, want)
		}
	}

	rep, took := cachedBuild(t, recipe, out, cache)
	expect("cold", rep, took, "bootstrap:miss packages:miss files:miss")
	if !rep.Steps[0].Stored || !rep.Steps[1].Stored {
		t.Fatalf("the cache did not keep the roots after bootstrap and packages: the packages step took %.1fs, storing the bootstrapped root %.1fs",
			rep.Steps[1].DurationSeconds, rep.Steps[0].StoreSeconds)
	}
	cold := took

	rep, took = cachedBuild(t, recipe, out, cache)
	expect("no change", rep, took, "bootstrap:hit packages:hit files:hit")
	if !strings.HasPrefix(rep.Cache.Restored, "previous output") {
		t.Errorf("a rebuild with no change copied the root from %q instead of reusing the previous output's", rep.Cache.Restored)
	}
	// Without a snapshot output, the finished root is not kept: the last
	// step and the normalization are cheaper to redo than to store.
	rep, took = cachedBuild(t, recipe, filepath.Join(dir, "elsewhere"), cache)
	expect("no change, new output", rep, took, "bootstrap:hit packages:hit files:miss")

	recipe = cacheRecipe(t, dir, pkgs, "second\n")
	rep, took = cachedBuild(t, recipe, out, cache)
	expect("last step's input changed", rep, took, "bootstrap:hit packages:hit files:miss")
	if motd(out) != "second\n" {
		t.Errorf("/etc/motd = %q after the change", motd(out))
	}
	if took > cold/2 {
		t.Errorf("the rebuild after a change to the last step took %s, the cold build %s", took.Round(time.Second), cold.Round(time.Second))
	}
	packagesKey := rep.Steps[1].Key

	recipe = cacheRecipe(t, dir, append(pkgs, "netbase"), "second\n")
	rep, took = cachedBuild(t, recipe, out, cache)
	expect("early step changed", rep, took, "bootstrap:hit packages:miss files:miss")

	// Corrupt the root kept after the packages step: the next build must
	// notice, run the step again and store it anew.
	archive := filepath.Join(cache, pipeline.StagesDir, packagesKey, "root.tar.zst")
	f, err := os.OpenFile(archive, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0x5a}, 4096), fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	recipe = cacheRecipe(t, dir, pkgs, "third\n")
	rep, took = cachedBuild(t, recipe, out, cache)
	expect("corrupt entry", rep, took, "bootstrap:hit packages:miss files:miss")
	if len(rep.Cache.Ignored) != 1 || rep.Cache.Ignored[0] != packagesKey || !rep.Steps[1].Stored {
		t.Errorf("corrupt entry: ignored %v, packages stored %v; want %s ignored and stored anew", rep.Cache.Ignored, rep.Steps[1].Stored, packagesKey[:12])
	}
	if _, err := snapshot.Verify(t.Context(), archive, snapshot.VerifyOptions{}); err != nil {
		t.Errorf("the rebuilt entry does not verify: %v", err)
	}
	if motd(out) != "third\n" {
		t.Errorf("/etc/motd = %q", motd(out))
	}

	// Two builds at once share the cache: both restore the packages
	// root, both store the finished one, one copy is kept.
	recipe = cacheRecipe(t, dir, pkgs, "fourth\n")
	var wg sync.WaitGroup
	reps := make([]*pipeline.Report, 2)
	start := time.Now()
	for i := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], _ = cachedBuild(t, recipe, filepath.Join(dir, fmt.Sprintf("concurrent%d", i)), cache)
		}()
	}
	wg.Wait()
	t.Logf("%-28s %6.1fs", "two at once", time.Since(start).Seconds())
	for i, r := range reps {
		if r == nil {
			continue
		}
		if got := pattern(r); got != "bootstrap:hit packages:hit files:miss" {
			t.Errorf("concurrent build %d: %s", i, got)
		}
		if motd(filepath.Join(dir, fmt.Sprintf("concurrent%d", i))) != "fourth\n" {
			t.Errorf("concurrent build %d has the wrong /etc/motd", i)
		}
	}
	if reps[0] != nil && reps[1] != nil && (reps[0].Cache.RootKey != reps[1].Cache.RootKey) {
		t.Error("two builds of one recipe made different finished roots")
	}
	ls, err := exec.Command(krgimage, "cache", "ls", "--cache-dir", cache).CombinedOutput()
	if err != nil || strings.Contains(string(ls), ".tmp-") {
		t.Errorf("krgimage cache ls: %v\n%s", err, ls)
	}
	t.Logf("krgimage cache ls:\n%s", ls)
	if o, err := exec.Command(krgimage, "cache", "prune", "--keep", "1", "--cache-dir", cache).CombinedOutput(); err != nil {
		t.Errorf("krgimage cache prune: %v\n%s", err, o)
	}

	t.Logf("no change: %.0f%% of the cold build; last step changed: %.0f%%; early step changed: %.0f%%",
		100*times["no change"].Seconds()/cold.Seconds(), 100*times["last step's input changed"].Seconds()/cold.Seconds(),
		100*times["early step changed"].Seconds()/cold.Seconds())
	testfixture.AssertNoMounts(t, dir)
}
