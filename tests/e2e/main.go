// Command e2e builds and boot-tests every shipped recipe this machine can
// build, and writes a JSON summary (recipe, phases, seconds, image size,
// snapshot sha256) that nightly CI archives and compares from run to run.
// "make e2e" runs it. A recipe the machine cannot build (its suite is not
// on the mirror, its kernel sources are absent) is reported as skipped,
// with the reason krgimage build --check gave; any other failure fails
// the run.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/krgimage/krgimage/boottest"
	"github.com/krgimage/krgimage/pipeline"
	"github.com/krgimage/krgimage/recipes"
)

// The images are test images: root logs in with a known password so that
// boot-test can run the recipe's checks.
const (
	password     = "krgimage-test"
	passwordHash = "$y$j9T$krgimagetestsalt$TSomTYUPHOYBuH1Q1OVyPf2H2URIxJdLc2kzEfFcuRB"
)

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
}

func main() {
	bin := flag.String("krgimage", "bin/krgimage", "the krgimage binary to test")
	dir := flag.String("o", "out/e2e", "where the builds and summary.json go")
	only := flag.String("recipes", "", "comma-separated shipped recipes (default: all)")
	flag.Parse()
	if err := run(*bin, *dir, *only); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

func run(bin, dir, only string) error {
	names := recipes.Shipped()
	if only != "" {
		names = strings.Split(only, ",")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sum := Summary{Started: time.Now().UTC(), Passed: true}
	for _, name := range names {
		e := one(bin, dir, name)
		fmt.Fprintf(os.Stderr, "e2e: %s: %s %s\n", name, e.Status, strings.ReplaceAll(e.Reason+e.Verdict, "\n", " / "))
		sum.Recipes = append(sum.Recipes, e)
		sum.Passed = sum.Passed && e.Status != "failed"
	}
	sum.Finished = time.Now().UTC()
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "summary.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECIPE\tSTATUS\tBUILD\tBOOT\tIMAGE\tSNAPSHOT SHA256")
	for _, e := range sum.Recipes {
		snap := "-"
		if e.Snapshot != nil {
			snap = e.Snapshot.SHA256
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0fs\t%.0fs\t%.0f MiB\t%s\n", e.Recipe, e.Status, e.BuildSeconds, e.BootSeconds, float64(e.ImageBytes)/(1<<20), snap)
	}
	tw.Flush()
	fmt.Println(path)
	if !sum.Passed {
		return errors.New("a buildable recipe failed to build or boot")
	}
	return nil
}

// one builds and boots a recipe.
func one(bin, dir, name string) Entry {
	e := Entry{Recipe: name, Output: filepath.Join(dir, name)}
	build := []string{"build", name, "-o", e.Output, "--set", "ROOT_PASSWORD_HASH=" + passwordHash}
	if out, err := krgimage(bin, append(build, "--check")...); err != nil {
		e.Status, e.Reason = "skipped", "not buildable here: "+out
		return e
	}
	start := time.Now()
	out, err := krgimage(bin, build...)
	e.BuildSeconds = time.Since(start).Seconds()
	if rep, rerr := readReport(e.Output); rerr == nil {
		e.Snapshot, e.Steps = rep.Snapshot, rep.Steps
		e.ImageBytes = treeBytes(rep.Output.Rootfs)
	}
	if err != nil {
		e.Status, e.Reason = "failed", "build: "+out
		return e
	}
	start = time.Now()
	out, err = krgimage(bin, "boot-test", e.Output, "--set", "ROOT_PASSWORD="+password)
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

func readReport(out string) (*pipeline.Report, error) {
	var rep pipeline.Report
	return &rep, readJSON(filepath.Join(out, pipeline.ReportFile), &rep)
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

// treeBytes is the apparent size of the files of a tree.
func treeBytes(root string) int64 {
	var n int64
	filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
