package provision

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// aptSources writes the image's APT sources and updates its lists
// (recipes.AptSources).
type aptSources struct {
	cfg *recipes.AptSources
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

// render returns the file to write and its content.
func (a aptSources) render() (path, content string) {
	head := "# Written by krgimage for recipe " + a.img.Recipe.Name + ".\n"
	if !a.deb822() {
		return "/etc/apt/sources.list", head + strings.Join(a.lines(), "\n") + "\n"
	}
	var b strings.Builder
	b.WriteString(head)
	for i, l := range a.lines() {
		f := strings.Fields(l)
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "Types: %s\nURIs: %s\nSuites: %s\nComponents: %s\n", f[0], f[1], f[2], strings.Join(f[3:], " "))
	}
	return "/etc/apt/sources.list.d/debian.sources", b.String()
}

func (a aptSources) Describe() []string {
	path, _ := a.render()
	out := []string{"write " + path + ":"}
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
		f := strings.Fields(line)
		if len(f) > 0 && f[0] != "deb" {
			continue
		}
		// Options: deb [arch=amd64 signed-by=...] URI SUITE COMPONENTS.
		for len(f) > 1 && strings.HasPrefix(f[1], "[") {
			end := slices.IndexFunc(f[1:], func(s string) bool { return strings.HasSuffix(s, "]") })
			if end < 0 {
				return nil, fmt.Errorf("apt source %q: unterminated options", line)
			}
			f = append(f[:1], f[2+end:]...)
		}
		if len(f) < 3 {
			return nil, fmt.Errorf("apt source %q: expected deb URI SUITE COMPONENTS", line)
		}
		in = append(in, Input{Key: "indices", Archive: &Archive{f[1], f[2], f[3:]}})
	}
	return in, nil
}

// ChangesKernel: new archives change which kernel package installs.
func (aptSources) ChangesKernel() bool { return true }

func (a aptSources) Apply(ctx context.Context, s *chroot.Session) error {
	path, content := a.render()
	if err := s.WriteFile(path, []byte(content), 0o644, "root", "root"); err != nil {
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
