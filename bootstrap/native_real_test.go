package bootstrap_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krgimage/krgimage/bootstrap"
	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/progress"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/internal/testfixture"
)

// TestNativeMatchesDebootstrap bootstraps a real bookworm minbase from the
// host's mirror with the native method and compares it with debootstrap's
// for the same suite and variant: the same packages at the same versions,
// all fully installed. Then it rebuilds with the cache the first build
// filled, which must download nothing but the Release, and once more from
// a lockfile, which must download nothing at all. Needs root and the
// mirror; CI has both.
func TestNativeMatchesDebootstrap(t *testing.T) {
	testenv.RequireRoot(t, "bootstrapping: chroot, mknod, chown")
	mirror := testfixture.Mirror(t)
	log := logging.Discard()
	if testing.Verbose() {
		log, _ = logging.New(os.Stderr, logging.Text, false)
	}
	// The package cache is shared by test runs, like the fixtures.
	cache := filepath.Join(testfixture.CacheDir(), "native")
	n := bootstrap.NewNative(run.New(log), log, cache)
	o := minbase(mirror, filepath.Join(t.TempDir(), "native"))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	task := progress.New(nil, false).Task("native", 0)
	start := time.Now()
	res, err := n.Run(ctx, o, task)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("native bootstrap: %d packages in %s (resolve %s, fetch %s, install %s), %+v", len(res.Packages),
		time.Since(start).Round(100*time.Millisecond), res.Resolve.Round(time.Millisecond), res.Fetch.Round(time.Millisecond),
		res.Install.Round(time.Millisecond), res.Stats)

	if out, err := exec.Command("chroot", o.Target, "/bin/true").CombinedOutput(); err != nil {
		t.Errorf("chroot /bin/true: %v %s", err, out)
	}
	if out, err := exec.Command("chroot", o.Target, "dpkg", "--audit").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("dpkg --audit: %v\n%s", err, out)
	}
	got := packages(t, o.Target)
	want := packages(t, testfixture.CachedRoot(t, testfixture.Bookworm))
	if got != want {
		// The shared debootstrap fixture may predate a change of the
		// mirror: only a debootstrap run now can tell.
		t.Log("the debootstrap fixture differs; running debootstrap now")
		fresh := o
		fresh.Target = filepath.Join(t.TempDir(), "debootstrap")
		if err := bootstrap.NewDebootstrap(run.New(log), log).Run(ctx, fresh, progress.New(nil, false).Task("debootstrap", 0)); err != nil {
			t.Fatal(err)
		}
		want = packages(t, fresh.Target)
	}
	if got != want {
		t.Errorf("dpkg -l differs from debootstrap's:\nnative:\n%s\ndebootstrap:\n%s", got, want)
	}
	for _, link := range []string{"bin", "sbin", "lib", "lib64"} {
		if dst, err := os.Readlink(filepath.Join(o.Target, link)); err != nil || dst != "usr/"+link {
			t.Errorf("/%s -> %q (%v): bookworm has a merged /usr", link, dst, err)
		}
	}

	// Warm: the same build again.
	o.Target = filepath.Join(t.TempDir(), "warm")
	start = time.Now()
	res2, err := n.Run(ctx, o, task)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("warm native bootstrap in %s: %+v", time.Since(start).Round(100*time.Millisecond), res2.Stats)
	if res2.Stats.Downloaded != 0 || res2.Stats.Reused != len(res.Packages) {
		t.Errorf("the warm build downloaded %d bytes (%+v), want 0", res2.Stats.Downloaded, res2.Stats)
	}

	// Locked: nothing but the packages, all cached.
	lock, err := n.Lock(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Lock, o.Target = lock, filepath.Join(t.TempDir(), "locked")
	res3, err := n.Run(ctx, o, task)
	if err != nil {
		t.Fatal(err)
	}
	if res3.Stats.Downloaded != 0 || res3.Stats.Metadata != 0 {
		t.Errorf("the locked warm build downloaded %+v, want nothing", res3.Stats)
	}
	if got3 := packages(t, o.Target); got3 != got {
		t.Errorf("the locked build installed another set:\n%s", got3)
	}
}

// minbase is what the real tests build: debootstrap --variant=minbase
// bookworm, as the shared debootstrap fixture is made.
func minbase(mirror, target string) bootstrap.Options {
	return bootstrap.Options{Suite: "bookworm", Arch: "amd64", Variant: "minbase", Mirror: mirror,
		Components: []string{"main"}, MergedUsr: "auto", Target: target}
}

// packages is dpkg -l in short: every package, version and state.
func packages(t *testing.T, root string) string {
	t.Helper()
	out, err := exec.Command("chroot", root, "dpkg-query", "-W", "-f", "${Package} ${Version} ${db:Status-Abbrev}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query in %s: %v", root, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.Join(lines, "\n")
}
