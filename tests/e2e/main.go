// Command e2e builds and boot-tests every shipped recipe this machine can
// build, and writes a JSON summary (recipe, phases, seconds, image size,
// snapshot sha256) that nightly CI archives and compares from run to run.
// "make e2e" runs it. A recipe the machine cannot build (its suite is not
// on the mirror, its kernel sources are absent) is reported as skipped,
// with the reason krgimage build --check gave; any other failure fails
// the run.
//
// By default every build starts from scratch (--no-cache). With -nightly
// ("make nightly") the builds use the stage cache and the same output
// directories as the night before, so only what changed is rebuilt; each
// recipe gets RECIPE.report.txt, krgimage report of the build against the
// previous one (kept as RECIPE.previous.json), and the cache is pruned to
// what the last -keep builds used.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/krgimage/krgimage/boottest"
	"github.com/krgimage/krgimage/pipeline"
	"github.com/krgimage/krgimage/recipes"
)

// lockedHash is root's password in the images: locked, so that a nightly
// image can be served as it is. boot-test logs in to run the recipe's
// checks with a one-time password of its own that the image never holds.
const lockedHash = "!"

// Summary is what one run found.
type Summary struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Passed   bool      `json:"passed"`
	Recipes  []Entry   `json:"recipes"`
}

// Entry is one recipe's result.
type Entry struct {
	Recipe string `json:"recipe"`
	// Status is passed, failed or skipped.
	Status       string                 `json:"status"`
	Reason       string                 `json:"reason,omitempty"`
	BuildSeconds float64                `json:"build_seconds,omitempty"`
	BootSeconds  float64                `json:"boot_seconds,omitempty"`
	Verdict      string                 `json:"verdict,omitempty"`
	Phases       []boottest.PhaseTime   `json:"phases,omitempty"`
	ImageBytes   int64                  `json:"image_bytes,omitempty"`
	Snapshot     *pipeline.SnapshotInfo `json:"snapshot,omitempty"`
	Steps        []pipeline.StepReport  `json:"steps,omitempty"`
	Output       string                 `json:"output,omitempty"`
	// CacheHits and CacheMisses count the steps the stage cache provided
	// and those that ran (-nightly).
	CacheHits   int `json:"cache_hits,omitempty"`
	CacheMisses int `json:"cache_misses,omitempty"`
	// Report is krgimage report's summary and differences (-nightly).
	Report string `json:"report,omitempty"`
}

// config is how the run builds.
type config struct {
	bin, dir string
	nightly  bool
	cacheDir string
	keep     int
}

func main() {
	bin := flag.String("krgimage", "bin/krgimage", "the krgimage binary to test")
	dir := flag.String("o", "out/e2e", "where the builds and summary.json go")
	only := flag.String("recipes", "", "comma-separated shipped recipes (default: all)")
	nightly := flag.Bool("nightly", false, "build with the stage cache over the previous run's outputs and write reports")
	cacheDir := flag.String("cache-dir", "", "with -nightly, krgimage's cache directory (default: krgimage's)")
	keep := flag.Int("keep", 2, "with -nightly, prune the stage cache to what the last N builds of each recipe used (0: do not prune)")
	flag.Parse()
	if err := run(config{bin: *bin, dir: *dir, nightly: *nightly, cacheDir: *cacheDir, keep: *keep}, *only); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

func run(c config, only string) error {
	names := recipes.Shipped()
	if only != "" {
		names = strings.Split(only, ",")
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	sum := Summary{Started: time.Now().UTC(), Passed: true}
	for _, name := range names {
		e := one(c, name)
		fmt.Fprintf(os.Stderr, "e2e: %s: %s %s\n", name, e.Status, strings.ReplaceAll(e.Reason+e.Verdict, "\n", " / "))
		sum.Recipes = append(sum.Recipes, e)
		sum.Passed = sum.Passed && e.Status != "failed"
	}
	tested := false
	for _, e := range sum.Recipes {
		tested = tested || e.Status == "passed"
	}
	// A run that could build nothing proves nothing.
	sum.Passed = sum.Passed && tested
	sum.Finished = time.Now().UTC()
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(c.dir, "summary.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECIPE\tSTATUS\tBUILD\tCACHE\tBOOT\tIMAGE\tSNAPSHOT SHA256")
	for _, e := range sum.Recipes {
		snap := "-"
		if e.Snapshot != nil {
			snap = e.Snapshot.SHA256
		}
		cache := "-"
		if c.nightly {
			cache = fmt.Sprintf("%d hit, %d run", e.CacheHits, e.CacheMisses)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0fs\t%s\t%.0fs\t%.0f MiB\t%s\n", e.Recipe, e.Status, e.BuildSeconds, cache, e.BootSeconds, float64(e.ImageBytes)/(1<<20), snap)
	}
	tw.Flush()
	for _, e := range sum.Recipes {
		if e.Report != "" {
			fmt.Println(e.Report)
		}
	}
	if c.nightly && c.keep > 0 {
		args := []string{"cache", "prune", "--keep", strconv.Itoa(c.keep)}
		if c.cacheDir != "" {
			args = append(args, "--cache-dir", c.cacheDir)
		}
		if out, err := krgimage(c.bin, args...); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: pruning the stage cache: %v\n%s\n", err, out)
		}
	}
	fmt.Println(path)
	if !sum.Passed {
		return errors.New("a buildable recipe failed to build or boot, or none could be built here")
	}
	return nil
}

// one builds and boots a recipe.
func one(c config, name string) Entry {
	bin := c.bin
	e := Entry{Recipe: name, Output: filepath.Join(c.dir, name)}
	build := []string{"build", name, "-o", e.Output, "--set", "ROOT_PASSWORD_HASH=" + lockedHash}
	if out, err := krgimage(bin, append(build, "--check")...); err != nil {
		// Only the host checks (suite not on the mirror, sources absent)
		// say a recipe cannot be built here; an invalid recipe, a missing
		// binary or a non-root run is a failure.
		e.Status, e.Reason = "failed", "build --check: "+out
		if strings.Contains(out, pipeline.ErrPreflight.Error()) {
			e.Status, e.Reason = "skipped", "not buildable here: "+out
		}
		return e
	}
	previous := ""
	if c.nightly {
		build = append(build, "--no-cache=false")
		if c.cacheDir != "" {
			build = append(build, "--cache-dir", c.cacheDir)
		}
		// The build replaces the output: keep its report to compare.
		if b, err := os.ReadFile(filepath.Join(e.Output, pipeline.ReportFile)); err == nil {
			previous = filepath.Join(c.dir, name+".previous.json")
			if err := os.WriteFile(previous, b, 0o644); err != nil {
				e.Status, e.Reason = "failed", err.Error()
				return e
			}
		}
	} else {
		build = append(build, "--no-cache")
	}
	start := time.Now()
	out, err := krgimage(bin, build...)
	e.BuildSeconds = time.Since(start).Seconds()
	if rep, rerr := pipeline.ReadReport(e.Output); rerr == nil {
		e.Snapshot, e.Steps = rep.Snapshot, rep.Steps
		if rep.Image != nil {
			e.ImageBytes = rep.Image.Bytes
		}
		for _, s := range rep.Steps {
			switch s.Cache {
			case pipeline.CacheHit:
				e.CacheHits++
			case pipeline.CacheMiss:
				e.CacheMisses++
			}
		}
	}
	if err != nil {
		e.Status, e.Reason = "failed", "build: "+out
		return e
	}
	if c.nightly {
		e.Report = filepath.Join(c.dir, name+".report.txt")
		if err := writeReport(bin, e.Output, previous, e.Report); err != nil {
			e.Status, e.Reason = "failed", "report: "+err.Error()
			return e
		}
	}
	start = time.Now()
	out, err = krgimage(bin, "boot-test", e.Output)
	e.BootSeconds = time.Since(start).Seconds()
	res, rerr := readResult(e.Output)
	if rerr != nil {
		e.Status, e.Reason = "failed", "boot-test: "+out
		return e
	}
	e.Verdict = res.Verdict
	if len(res.Nodes) > 0 {
		e.Phases = res.Nodes[0].Timeline
	}
	e.Status = "passed"
	if err != nil || !res.Passed {
		e.Status = "failed"
	}
	return e
}

// writeReport saves krgimage report of the build in out, against the
// previous build's report when there is one.
func writeReport(bin, out, previous, path string) error {
	args := []string{"report", out}
	if previous != "" {
		args = append(args, "--previous", previous)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return os.WriteFile(path, stdout.Bytes(), 0o644)
}

// krgimage runs the binary and returns the end of its error output.
func krgimage(bin string, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	err := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, "\n"), err
}

func readResult(out string) (*boottest.Result, error) {
	var res boottest.Result
	return &res, readJSON(filepath.Join(out, boottest.Dir, "result.json"), &res)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
