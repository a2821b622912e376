package pipeline

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"pault.ag/go/debian/version"

	"github.com/krgimage/krgimage/internal/debarchive"
)

// WriteText prints the report for a person: what was built, from what,
// how each step went, and the outputs with their digests.
func (r *Report) WriteText(w io.Writer) {
	r = r.shown()
	fmt.Fprintf(w, "%s: %s in %s\n", r.Recipe.Name, r.Result, fmtSeconds(r.DurationSeconds))
	if r.Error != "" {
		fmt.Fprintf(w, "error      %s\n", firstLine(r.Error))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	recipe := r.Recipe.Source
	if r.Recipe.SHA256 != "" {
		recipe += " (sha256 " + short(r.Recipe.SHA256) + ")"
	}
	fmt.Fprintf(tw, "recipe\t%s\n", recipe)
	image := fmt.Sprintf("Debian %s %s, variant %s", r.Recipe.Suite, r.Recipe.Architecture, r.Recipe.Variant)
	if len(r.Packages) > 0 {
		image += fmt.Sprintf(", %d packages", len(r.Packages))
	}
	if r.Image != nil {
		image += fmt.Sprintf(", %d entries, %s", r.Image.Entries, FormatBytes(r.Image.Bytes))
	}
	fmt.Fprintf(tw, "image\t%s\n", image)
	fmt.Fprintf(tw, "mirror\t%s (%s)\n", debarchive.RedactURL(r.Mirror.URL), r.Mirror.Source)
	fmt.Fprintf(tw, "date\t%s (the time the outputs carry)\n", r.BuildTime.UTC().Format(time.RFC3339))
	fmt.Fprintf(tw, "started\t%s, krgimage %s\n", r.Started.UTC().Format(time.RFC3339), r.Krgimage.Version)
	if c := r.Cache; c != nil {
		hits := 0
		for _, s := range r.Steps {
			if s.Cache == CacheHit {
				hits++
			}
		}
		from := "nothing: every step ran"
		if c.Restored != "" {
			from = c.Restored + " in " + fmtSeconds(c.RestoreSeconds)
		}
		fmt.Fprintf(tw, "cache\t%d of %d steps from the cache; restored %s\n", hits, len(r.Steps), from)
		for _, k := range c.Ignored {
			fmt.Fprintf(tw, "\tcorrupt entry %s ignored and rebuilt\n", short(k))
		}
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "step\ttime\tresult\tcache\n")
	for _, s := range r.Steps {
		c := s.Cache
		if s.Stored {
			c += ", stored"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, fmtSeconds(s.DurationSeconds), s.Result, c)
	}
	if n := r.Normalize; n != nil && n.Skipped == "" {
		fmt.Fprintf(tw, "(normalize)\t%s\t\t%d times clamped, %d kinds of files removed\n", fmtSeconds(n.Seconds), n.Clamped, len(n.Removed))
	}
	fmt.Fprintf(tw, "total\t%s\t%s\t\n", fmtSeconds(r.DurationSeconds), r.Result)
	tw.Flush()

	if len(r.Outputs) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "outputs")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, o := range r.Outputs {
			fmt.Fprintf(tw, "  %s\t%10s\tsha256 %s\n", o.Path, FormatBytes(o.Bytes), short(o.SHA256))
		}
		tw.Flush()
	}
}

// ReportDiff is what changed from one build to the next.
type ReportDiff struct {
	Previous *Report
	Current  *Report
	// Recipe, Krgimage, Mirror, Date are "old -> new" when they changed.
	Recipe, Krgimage, Mirror, Date string
	Upgraded                       []PackageChange
	Downgraded                     []PackageChange
	Added, Removed                 []Package
	OutputsChanged                 []OutputChange
	OutputsAdded, OutputsRemoved   []OutputFile
	// Rerun lists the steps that ran because their key changed.
	Rerun []string
}

// PackageChange is a package whose version changed.
type PackageChange struct {
	Name, Old, New string
}

// OutputChange is an output whose content changed.
type OutputChange struct {
	Path     string
	Old, New OutputFile
}

// Empty reports whether the two builds made the same image and outputs.
func (d *ReportDiff) Empty() bool {
	return len(d.Upgraded)+len(d.Downgraded)+len(d.Added)+len(d.Removed)+len(d.OutputsChanged)+len(d.OutputsAdded)+len(d.OutputsRemoved) == 0
}

// CompareReports lists what changed from prev to cur.
func CompareReports(prev, cur *Report) *ReportDiff {
	prev, cur = prev.shown(), cur.shown()
	d := &ReportDiff{Previous: prev, Current: cur}
	change := func(old, new string) string {
		if old == new {
			return ""
		}
		return old + " -> " + new
	}
	d.Recipe = change(short(prev.Recipe.SHA256), short(cur.Recipe.SHA256))
	d.Krgimage = change(prev.Krgimage.Version, cur.Krgimage.Version)
	d.Mirror = change(prev.Mirror.URL, cur.Mirror.URL)
	d.Date = change(prev.BuildTime.UTC().Format(time.RFC3339), cur.BuildTime.UTC().Format(time.RFC3339))

	type pkgKey struct{ name, arch string }
	old := map[pkgKey]Package{}
	for _, p := range prev.Packages {
		old[pkgKey{p.Name, p.Architecture}] = p
	}
	for _, p := range cur.Packages {
		k := pkgKey{p.Name, p.Architecture}
		o, ok := old[k]
		delete(old, k)
		switch {
		case !ok:
			d.Added = append(d.Added, p)
		case o.Version != p.Version:
			c := PackageChange{p.Name, o.Version, p.Version}
			if compareVersions(o.Version, p.Version) > 0 {
				d.Downgraded = append(d.Downgraded, c)
			} else {
				d.Upgraded = append(d.Upgraded, c)
			}
		}
	}
	for _, p := range prev.Packages {
		if _, ok := old[pkgKey{p.Name, p.Architecture}]; ok {
			d.Removed = append(d.Removed, p)
		}
	}

	outs := map[string]OutputFile{}
	for _, o := range prev.Outputs {
		outs[o.Path] = o
	}
	for _, o := range cur.Outputs {
		p, ok := outs[o.Path]
		delete(outs, o.Path)
		switch {
		case !ok:
			d.OutputsAdded = append(d.OutputsAdded, o)
		case p.SHA256 != o.SHA256:
			d.OutputsChanged = append(d.OutputsChanged, OutputChange{o.Path, p, o})
		}
	}
	for _, o := range prev.Outputs {
		if _, ok := outs[o.Path]; ok {
			d.OutputsRemoved = append(d.OutputsRemoved, o)
		}
	}

	keys := map[string]string{}
	for _, s := range prev.Steps {
		keys[s.Name] = s.Key
	}
	for _, s := range cur.Steps {
		if s.Key != "" && keys[s.Name] != s.Key && s.Cache == CacheMiss {
			d.Rerun = append(d.Rerun, s.Name)
		}
	}
	return d
}

func compareVersions(a, b string) int {
	va, err1 := version.Parse(a)
	vb, err2 := version.Parse(b)
	if err1 != nil || err2 != nil {
		return strings.Compare(a, b)
	}
	return version.Compare(va, vb)
}

// WriteText prints the differences, as a nightly job posts them.
func (d *ReportDiff) WriteText(w io.Writer) {
	p := d.Previous
	fmt.Fprintf(w, "since the previous build (%s, %s in %s):\n", p.Started.UTC().Format(time.RFC3339), p.Result, fmtSeconds(p.DurationSeconds))
	for _, c := range []struct{ what, change string }{
		{"recipe sha256", d.Recipe}, {"krgimage", d.Krgimage}, {"mirror", d.Mirror}, {"date", d.Date},
	} {
		if c.change != "" {
			fmt.Fprintf(w, "  %s: %s\n", c.what, c.change)
		}
	}
	if d.Empty() {
		fmt.Fprintln(w, "  same packages, same outputs")
	}
	section := func(title string, n int, lines func(tw io.Writer)) {
		if n == 0 {
			return
		}
		fmt.Fprintf(w, "  %s (%d):\n", title, n)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		lines(tw)
		tw.Flush()
	}
	section("packages upgraded", len(d.Upgraded), func(tw io.Writer) {
		for _, c := range d.Upgraded {
			fmt.Fprintf(tw, "    %s\t%s -> %s\n", c.Name, c.Old, c.New)
		}
	})
	section("packages downgraded", len(d.Downgraded), func(tw io.Writer) {
		for _, c := range d.Downgraded {
			fmt.Fprintf(tw, "    %s\t%s -> %s\n", c.Name, c.Old, c.New)
		}
	})
	section("packages added", len(d.Added), func(tw io.Writer) {
		for _, p := range d.Added {
			fmt.Fprintf(tw, "    %s\t%s\n", p.Name, p.Version)
		}
	})
	section("packages removed", len(d.Removed), func(tw io.Writer) {
		for _, p := range d.Removed {
			fmt.Fprintf(tw, "    %s\t%s\n", p.Name, p.Version)
		}
	})
	section("outputs changed", len(d.OutputsChanged), func(tw io.Writer) {
		for _, c := range d.OutputsChanged {
			fmt.Fprintf(tw, "    %s\tsha256 %s -> %s\t%s -> %s\n", c.Path, short(c.Old.SHA256), short(c.New.SHA256), FormatBytes(c.Old.Bytes), FormatBytes(c.New.Bytes))
		}
	})
	section("outputs added", len(d.OutputsAdded), func(tw io.Writer) {
		for _, o := range d.OutputsAdded {
			fmt.Fprintf(tw, "    %s\tsha256 %s\t%s\n", o.Path, short(o.SHA256), FormatBytes(o.Bytes))
		}
	})
	section("outputs removed", len(d.OutputsRemoved), func(tw io.Writer) {
		for _, o := range d.OutputsRemoved {
			fmt.Fprintf(tw, "    %s\tsha256 %s\t%s\n", o.Path, short(o.SHA256), FormatBytes(o.Bytes))
		}
	})
	if len(d.Rerun) > 0 {
		fmt.Fprintf(w, "  steps rerun because their inputs changed: %s\n", strings.Join(d.Rerun, " "))
	}
	c := d.Current
	if p.Image != nil && c.Image != nil && *p.Image != *c.Image {
		fmt.Fprintf(w, "  image: %d -> %d entries, %s -> %s\n", p.Image.Entries, c.Image.Entries, FormatBytes(p.Image.Bytes), FormatBytes(c.Image.Bytes))
	}
	fmt.Fprintf(w, "  build time: %s -> %s\n", fmtSeconds(p.DurationSeconds), fmtSeconds(c.DurationSeconds))
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// FormatBytes prints a size in binary units, as reports show sizes.
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
