package provision

import (
	"context"
	"fmt"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/recipes"
)

// AptSources writes the image's /etc/apt/sources.list and runs apt-get
// update. Without sources, it writes the build's mirror for the suite and
// components and, when security is true, the security archive (lenny's
// "SUITE/updates", later "SUITE-security"):
//
//   - apt-sources:
//     sources:
//   - deb http://MIRROR/debian lenny main non-free contrib
//   - deb http://MIRROR/debian-security lenny/updates main contrib
//
// format is one-line (sources.list, the only one lenny reads), deb822
// (sources.list.d/debian.sources) or auto (by suite).
type AptSources struct {
	Sources        []string `yaml:"sources,omitempty"`
	Security       bool     `yaml:"security"`
	SecurityMirror string   `yaml:"security_mirror,omitempty" check:"url"`
	Update         bool     `yaml:"update"`
	Format         string   `yaml:"format" enum:"auto,one-line,deb822"`
}

var aptSourcesType = typeOf(func() *AptSources { return &AptSources{Security: true, Update: true, Format: "auto"} }, func(c *AptSources, img *Image) Step { return aptSources{c, img} })

func (*AptSources) ShorthandField() string { return "sources" }

func (a *AptSources) Validate(v *recipes.Validator, keyPath string) {
	for i, s := range a.Sources {
		if err := checkSourceLine(s); err != nil {
			v.Errorf(fmt.Sprintf("%s.sources[%d]", keyPath, i), recipes.ErrInvalid, "%v", err)
		}
	}
	if a.Format == "deb822" && recipes.Legacy(v.Recipe().Suite) {
		v.Errorf(keyPath+".format", recipes.ErrConflict, "%s's APT reads only the one-line format", v.Recipe().Suite)
	}
}

// checkSourceLine reads s as provisioning will, so that what passes
// here is what the step writes and keys.
func checkSourceLine(s string) error {
	if _, err := debarchive.ParseLine(s); err != nil {
		return fmt.Errorf("expected a sources.list line: deb [OPTION=VALUE ...] URI SUITE [COMPONENT...], got %q: %w", s, err)
	}
	return nil
}

// aptSources writes the image's APT sources and updates its lists
// (AptSources).
type aptSources struct {
	cfg *AptSources
	img *Image
}

// lines returns the one-line entries the image gets.
func (a aptSources) lines() []string {
	if len(a.cfg.Sources) > 0 {
		return a.cfg.Sources
	}
	r := a.img.Recipe
	comps := strings.Join(r.Components, " ")
	out := []string{fmt.Sprintf("deb %s %s %s", a.img.Mirror, r.Suite, comps)}
	if sec := a.security(); sec != "" {
		out = append(out, fmt.Sprintf("deb %s %s %s", sec, recipes.SecuritySuite(r.Suite), comps))
	}
	return out
}

// security is the security archive the default sources name, "" for none
// (not asked for, none known, or a suite without one).
func (a aptSources) security() string {
	sec := a.cfg.SecurityMirror
	if sec == "" {
		sec = a.img.SecurityMirror
	}
	if !a.cfg.Security || sec == "" || a.img.Recipe.Suite == "sid" || a.img.Recipe.Suite == "unstable" {
		return ""
	}
	return sec
}

func (a aptSources) deb822() bool { return a.cfg.Format == "deb822" }

// entries returns the sources the image gets.
func (a aptSources) entries() ([]debarchive.Entry, error) {
	var out []debarchive.Entry
	for _, line := range a.lines() {
		e, err := debarchive.ParseLine(line)
		if err != nil {
			return nil, fmt.Errorf("apt source %q: %w", line, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// path is the file render writes.
func (a aptSources) path() string {
	if a.deb822() {
		return "/etc/apt/sources.list.d/debian.sources"
	}
	return "/etc/apt/sources.list"
}

// render returns the content of path: the one-line sources as the
// recipe wrote them, or their deb822 stanzas.
func (a aptSources) render() (string, error) {
	head := "# Written by krgimage for recipe " + a.img.Recipe.Name + ".\n"
	if !a.deb822() {
		return head + strings.Join(a.lines(), "\n") + "\n", nil
	}
	es, err := a.entries()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(head)
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Deb822())
	}
	return b.String(), nil
}

func (a aptSources) Describe() []string {
	out := []string{"write " + a.path() + ":"}
	for _, l := range a.lines() {
		out = append(out, "  "+l)
	}
	if a.cfg.Security && len(a.cfg.Sources) == 0 && a.cfg.SecurityMirror == "" && a.img.SecurityMirror == "" {
		out = append(out, "(no security archive is known for this mirror: set security_mirror)")
	}
	if a.cfg.Update {
		out = append(out, "apt-get update")
	}
	return out
}

func (aptSources) Check() error { return nil }

// Reads: the package indices of every archive apt-get update reads, which
// are what later steps install from.
func (a aptSources) Reads() ([]Input, error) {
	r := a.img.Recipe
	var in []Input
	if len(a.cfg.Sources) == 0 {
		in = append(in, Input{Key: "indices", Archive: &Archive{a.img.Mirror, r.Suite, r.Components}})
		if sec := a.security(); sec != "" {
			in = append(in, Input{Key: "indices", Archive: &Archive{sec, recipes.SecuritySuite(r.Suite), r.Components}})
		}
	}
	for _, line := range a.cfg.Sources {
		e, err := debarchive.ParseLine(line)
		if err != nil {
			return nil, fmt.Errorf("apt source %q: %w", line, err)
		}
		if e.Types[0] != "deb" {
			continue // apt-get update reads no source indices for installing
		}
		in = append(in, Input{Key: "indices", Archive: &Archive{e.URIs[0], e.Suites[0], e.Components}})
	}
	return in, nil
}

// ChangesKernel: new archives change which kernel package installs.
func (aptSources) ChangesKernel() bool { return true }

func (a aptSources) Apply(ctx context.Context, s *chroot.Session) error {
	content, err := a.render()
	if err != nil {
		return err
	}
	if err := s.WriteFile(a.path(), []byte(content), 0o644, "root", "root"); err != nil {
		return err
	}
	if a.deb822() {
		if err := s.WriteFile("/etc/apt/sources.list", []byte("# See /etc/apt/sources.list.d/debian.sources.\n"), 0o644, "root", "root"); err != nil {
			return err
		}
	}
	if !a.cfg.Update {
		return nil
	}
	return s.Run(ctx, "apt-get", "update")
}
