package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/internal/fsutil"
	"github.com/krgimage/krgimage/internal/layout"
)

// Report is build.json: what was built, from what, and how each step went.
type Report struct {
	Krgimage struct {
		Version string `json:"version"`
	} `json:"krgimage"`
	Recipe layout.BuiltRecipe `json:"recipe"`
	Mirror Mirror             `json:"mirror"`
	Output struct {
		Dir string `json:"dir"`
		// Rootfs is read back by the next build, which must know its
		// own root: it keeps its real value.
		Rootfs string `json:"rootfs" redact:"keep"`
	} `json:"output"`
	BuildTime       time.Time     `json:"build_time"`
	Started         time.Time     `json:"started"`
	Finished        time.Time     `json:"finished"`
	DurationSeconds float64       `json:"duration_seconds"`
	Result          string        `json:"result"`
	Error           string        `json:"error,omitempty"`
	Steps           []StepReport  `json:"steps"`
	Snapshot        *SnapshotInfo `json:"snapshot,omitempty"`
	// Normalize says what was done to make the root reproducible.
	Normalize *NormalizeReport `json:"normalize,omitempty"`
	// Cache is the stage cache's part: where the build started from.
	Cache *CacheReport `json:"cache,omitempty"`
	// Image is the size of the image root.
	Image *ImageInfo `json:"image,omitempty"`
	// Packages are the Debian packages installed in the image.
	Packages []Package `json:"packages,omitempty"`
	// Outputs are the files of the output directory, with their
	// digests; the root's are the snapshot's and its /boot's.
	Outputs []OutputFile `json:"outputs,omitempty"`

	// redact hides the recipe's withheld variables in what the report
	// shows: build.json, the summary and the text.
	redact func(string) string
}

// ImageInfo is the size of the image root.
type ImageInfo struct {
	Entries int   `json:"entries"`
	Bytes   int64 `json:"bytes"`
}

// Package is an installed Debian package.
type Package struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Architecture string `json:"architecture,omitempty"`
	// InstalledKiB is dpkg's Installed-Size.
	InstalledKiB int64 `json:"installed_kib,omitempty"`
}

// OutputFile is a file the build wrote, relative to the output directory.
type OutputFile struct {
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256" redact:"keep"`
}

// StepReport is one step's line in the report.
type StepReport struct {
	Name            string    `json:"name"`
	Started         time.Time `json:"started"`
	DurationSeconds float64   `json:"duration_seconds"`
	Result          string    `json:"result"`
	Error           string    `json:"error,omitempty"`
	// Key is the stage cache's key of the image root after the step.
	Key string `json:"key,omitempty" redact:"keep"`
	// Cache is hit when the step's result came from the stage cache,
	// miss when it ran; empty without the cache or for steps it does
	// not keep.
	Cache string `json:"cache,omitempty"`
	// Stored: the root was stored in the stage cache after the step.
	Stored       bool    `json:"stored,omitempty"`
	StoreSeconds float64 `json:"store_seconds,omitempty"`
}

// Results of a build or step.
const (
	ResultSuccess     = "success"
	ResultFailed      = "failed"
	ResultInterrupted = "interrupted"
)

func newReport(o *Options, out, root string) *Report {
	rec := o.Recipe
	r := &Report{redact: rec.Redactor()}
	r.Krgimage.Version = o.Version
	r.Recipe.Name, r.Recipe.Source, r.Recipe.File, r.Recipe.SHA256 = rec.Name, rec.Source, rec.File, sha256Hex(rec.Raw)
	for k, v := range rec.Vars {
		if !rec.Public(k) {
			r.Recipe.Withheld = append(r.Recipe.Withheld, k)
			continue
		}
		if r.Recipe.Variables == nil {
			r.Recipe.Variables = map[string]string{}
		}
		r.Recipe.Variables[k] = v
	}
	slices.Sort(r.Recipe.Withheld)
	r.Recipe.Suite, r.Recipe.Architecture, r.Recipe.Variant = rec.Suite, rec.Architecture, rec.Variant
	// build.json is an output: a mirror's credentials stay out of it.
	r.Mirror = o.Mirror
	r.Mirror.URL = debarchive.RedactURL(o.Mirror.URL)
	r.Mirror.Security = debarchive.RedactURL(o.Mirror.Security)
	r.Output.Dir, r.Output.Rootfs = out, root
	r.BuildTime = o.BuildTime.UTC()
	r.Started = o.Clock().UTC()
	return r
}

func result(err error, ctx context.Context) string {
	switch {
	case err == nil:
		return ResultSuccess
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return ResultInterrupted
	}
	return ResultFailed
}

func (r *Report) addStep(name string, start time.Time, d time.Duration, err error, ctx context.Context) *StepReport {
	s := StepReport{Name: name, Started: start.UTC(), DurationSeconds: d.Seconds(), Result: result(err, ctx)}
	if err != nil {
		s.Error = err.Error()
	}
	r.Steps = append(r.Steps, s)
	return &r.Steps[len(r.Steps)-1]
}

func (r *Report) finish(now time.Time, err error, ctx context.Context) {
	r.Finished = now.UTC()
	r.DurationSeconds = r.Finished.Sub(r.Started).Seconds()
	r.Result = result(err, ctx)
	if err != nil {
		r.Error = err.Error()
	}
}

// Duration is the build's wall time.
func (r *Report) Duration() time.Duration {
	return time.Duration(r.DurationSeconds * float64(time.Second))
}

// WriteSummary prints the time of each step and, with the stage cache,
// whether it came from the cache.
func (r *Report) WriteSummary(w io.Writer) {
	r = r.shown()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if r.Cache == nil {
		fmt.Fprintf(tw, "step\ttime\tresult\n")
		for _, s := range r.Steps {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, fmtSeconds(s.DurationSeconds), s.Result)
		}
		fmt.Fprintf(tw, "total\t%s\t%s\n", fmtSeconds(r.DurationSeconds), r.Result)
		tw.Flush()
		return
	}
	fmt.Fprintf(tw, "step\ttime\tresult\tcache\n")
	for _, s := range r.Steps {
		c := s.Cache
		if s.Stored {
			c += ", stored in " + fmtSeconds(s.StoreSeconds)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, fmtSeconds(s.DurationSeconds), s.Result, c)
	}
	fmt.Fprintf(tw, "total\t%s\t%s\t%s\n", fmtSeconds(r.DurationSeconds), r.Result, r.Cache.Restored)
	tw.Flush()
}

func fmtSeconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(100 * time.Millisecond).String()
}

func writeReport(path string, rep *Report) error {
	data, err := json.MarshalIndent(rep.shown(), "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", ReportFile, err)
	}
	return nil
}

// ErrBadReport: a build.json that is not one.
var ErrBadReport = layout.ErrBadReport

// ReadReport reads a build.json, or the one in an output directory.
func ReadReport(path string) (*Report, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = layout.New(path, nil).BuildJSON()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := layout.DecodeReport(path, b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func readPreviousReport(out string) (*Report, error) {
	r, err := ReadReport(layout.New(out, nil).BuildJSON())
	switch {
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.ENOTDIR):
		return nil, nil
	case errors.Is(err, ErrBadReport):
		// A damaged report still marks the directory as ours.
		return &Report{}, nil
	}
	return r, err
}

// shown is the report as it may be shown: a copy with the recipe's
// withheld variables masked in every string but those tagged
// redact:"keep", which are digests (a value may happen to be hex) and
// what later builds read back. Masking by default, rather than a list of
// fields to mask, keeps a field added later from carrying a value out.
func (r *Report) shown() *Report {
	if r == nil || r.redact == nil {
		return r
	}
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("pipeline: report does not marshal: %v", err))
	}
	c := &Report{}
	if err := json.Unmarshal(b, c); err != nil {
		panic(fmt.Sprintf("pipeline: report does not read back: %v", err))
	}
	redactStrings(reflect.ValueOf(c).Elem(), r.redact)
	return c
}

func redactStrings(v reflect.Value, redact func(string) string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(redact(v.String()))
	case reflect.Pointer:
		if !v.IsNil() {
			redactStrings(v.Elem(), redact)
		}
	case reflect.Slice:
		for i := range v.Len() {
			redactStrings(v.Index(i), redact)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(it.Value())
			redactStrings(e, redact)
			v.SetMapIndex(it.Key(), e)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && f.Tag.Get("redact") != "keep" {
				redactStrings(v.Field(i), redact)
			}
		}
	}
}
