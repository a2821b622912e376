package bootstrap_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/krgimage/krgimage/bootstrap"
	"github.com/krgimage/krgimage/internal/fsutil"
	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/progress"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/internal/testfixture"
)

var (
	benchRounds  = flag.Int("bootstrap-rounds", 3, "rounds of BenchmarkBootstrapMethods per iteration")
	benchMethods = flag.String("bootstrap-methods", "native,debootstrap,mmdebstrap", "the methods BenchmarkBootstrapMethods compares")
)

// BenchmarkBootstrapMethods times a bookworm minbase made by krgimage's
// native bootstrapper, debootstrap and mmdebstrap, each from the same
// mirror in the same run, first with an empty package cache (cold), then
// with the cache the first run filled (warm), and prints the times as
// ratios to mmdebstrap's. Each round runs every method in turn, so that a
// busy moment of a shared machine hits them all; the table gives the
// medians of -bootstrap-rounds rounds per iteration. Run it with
// make bench-bootstrap (needs root, the mirror and mmdebstrap).
func BenchmarkBootstrapMethods(b *testing.B) {
	testenv.RequireRoot(b, "bootstrapping: chroot, mknod, chown")
	mirror := testfixture.Mirror(b)
	for _, tool := range []string{"debootstrap", "mmdebstrap"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(b, "%s is not installed (make bench-bootstrap installs it)", tool)
		}
	}
	type method struct {
		name string
		run  func(ctx context.Context, root, cache string) (string, error)
	}
	methods := []method{
		{"native", func(ctx context.Context, root, cache string) (string, error) {
			n := bootstrap.NewNative(run.New(logging.Discard()), logging.Discard(), cache)
			res, err := n.Run(ctx, minbase(mirror, root), progress.New(nil, false).Task("native", 0))
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("resolve %s, fetch %s, install %s, %d bytes downloaded", res.Resolve.Round(time.Millisecond),
				res.Fetch.Round(time.Millisecond), res.Install.Round(time.Millisecond), res.Stats.Downloaded), nil
		}},
		{"debootstrap", func(ctx context.Context, root, cache string) (string, error) {
			return "", command(ctx, "debootstrap", "--variant=minbase", "--cache-dir="+cache, "bookworm", root, mirror)
		}},
		{"mmdebstrap", func(ctx context.Context, root, cache string) (string, error) {
			// The package cache goes in before the download and comes
			// back out at the end; lists are fetched either way, as
			// mmdebstrap always does.
			return "", command(ctx, "mmdebstrap", "--variant=minbase", "--mode=root", "--skip=essential/unlink", "--skip=cleanup/apt/cache",
				"--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives", "--setup-hook=sync-in "+cache+" /var/cache/apt/archives",
				"--customize-hook=sync-out /var/cache/apt/archives "+cache, "bookworm", root, mirror)
		}},
	}
	methods = slices.DeleteFunc(methods, func(m method) bool { return !slices.Contains(strings.Split(*benchMethods, ","), m.name) })
	times := map[string][]time.Duration{}
	// The roots are removed at the end, not between runs: on ext4 without
	// a journal, creating files soon after thousands were deleted makes
	// the kernel skip over the recently freed inodes, which costs seconds
	// (perf: recently_deleted) and would charge each method for the
	// previous one's cleanup.
	var roots []string
	for round := range b.N * *benchRounds {
		caches := map[string]string{}
		for _, m := range methods {
			caches[m.name] = filepath.Join(b.TempDir(), m.name+"-cache")
			if err := os.MkdirAll(caches[m.name], 0o755); err != nil {
				b.Fatal(err)
			}
		}
		for _, state := range []string{"cold", "warm"} {
			for _, m := range methods {
				root := filepath.Join(b.TempDir(), "root")
				// Settle what the previous run left in the page cache, so
				// that no method pays for another's writes.
				exec.Command("sync").Run()
				start := time.Now()
				detail, err := m.run(b.Context(), root, caches[m.name])
				if err != nil {
					b.Fatalf("%s (%s cache): %v", m.name, state, err)
				}
				d := time.Since(start)
				times[m.name+"/"+state] = append(times[m.name+"/"+state], d)
				if testing.Verbose() {
					// Only with -v: benchmark output is cut after ten
					// lines, and the table must show.
					b.Logf("round %d: %s %s %s %s", round+1, m.name, state, d.Round(100*time.Millisecond), detail)
				}
				roots = append(roots, root)
			}
		}
	}
	for _, root := range roots {
		if err := fsutil.RemoveAll(root); err != nil {
			b.Fatal(err)
		}
	}
	median := func(key string) time.Duration {
		ds := slices.Clone(times[key])
		if len(ds) == 0 {
			return 0
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	ratio := func(a, b time.Duration) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", float64(a)/float64(b))
	}
	var out strings.Builder
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "bookworm minbase, median of %d\tcold\tvs mmdebstrap\twarm\tvs mmdebstrap\t\n", len(times["native/cold"]))
	for _, m := range methods {
		cold, warm := median(m.name+"/cold"), median(m.name+"/warm")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", m.name, cold.Round(100*time.Millisecond), ratio(cold, median("mmdebstrap/cold")),
			warm.Round(100*time.Millisecond), ratio(warm, median("mmdebstrap/warm")))
		b.ReportMetric(cold.Seconds(), m.name+"-cold-s")
		b.ReportMetric(warm.Seconds(), m.name+"-warm-s")
	}
	tw.Flush()
	if mm := median("mmdebstrap/cold"); mm > 0 {
		b.ReportMetric(float64(median("native/cold"))/float64(mm), "native/mmdebstrap-cold")
		b.ReportMetric(float64(median("native/warm"))/float64(median("mmdebstrap/warm")), "native/mmdebstrap-warm")
	}
	b.Log("\n" + out.String())
}

func command(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return fmt.Errorf("%s: %v\n%s", name, err, strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
	return nil
}
