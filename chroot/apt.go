package chroot

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/krgimage/krgimage/recipes"
)

// aptSources writes the image's APT sources and updates its lists.
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
	sec := a.cfg.SecurityMirror
	if sec == "" {
		sec = a.img.SecurityMirror
	}
	if a.cfg.Security && sec != "" && r.Suite != "sid" && r.Suite != "unstable" {
		out = append(out, fmt.Sprintf("deb %s %s %s", sec, recipes.SecuritySuite(r.Suite), comps))
	}
	return out
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

func (a aptSources) Apply(ctx context.Context, s *Session) error {
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

// packages installs packages with apt-get.
type packages struct {
	cfg *recipes.Packages
}

func (p packages) args() []string {
	a := []string{"apt-get", "install", "-y", "-q",
		"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}
	if !p.cfg.Recommends {
		a = append(a, "--no-install-recommends")
	}
	return append(a, p.cfg.Install...)
}

func (p packages) Describe() []string {
	return []string{strings.Join(p.args(), " "), "apt-get clean"}
}

func (packages) Check() error { return nil }

var (
	unknownPkgRE  = regexp.MustCompile(`^E: Unable to locate package (\S+)`)
	noCandidateRE = regexp.MustCompile(`^E: Package '([^']+)' has no installation candidate`)
)

func (p packages) Apply(ctx context.Context, s *Session) error {
	return s.Install(ctx, p.cfg.Install, p.cfg.Recommends)
}

// Install installs packages with apt-get (updating the lists first when the
// image has none), extra environment variables added. A package apt does
// not know is an ErrNoSuchPackage naming it.
func (s *Session) Install(ctx context.Context, pkgs []string, recommends bool, env ...string) error {
	if err := ensureLists(ctx, s); err != nil {
		return err
	}
	argv := packages{cfg: &recipes.Packages{Install: pkgs, Recommends: recommends}}.args()
	var mu sync.Mutex
	var unknown []string
	err := s.RunCommand(ctx, Command{Argv: argv, Env: env, Line: func(l string) {
		for _, re := range []*regexp.Regexp{unknownPkgRE, noCandidateRE} {
			if m := re.FindStringSubmatch(l); m != nil {
				mu.Lock()
				unknown = append(unknown, m[1])
				mu.Unlock()
			}
		}
	}})
	if len(unknown) > 0 {
		return fmt.Errorf("%w: %s not in %s (check the name and the apt sources)", ErrNoSuchPackage, strings.Join(unknown, ", "), s.Recipe.Suite)
	}
	if err != nil {
		return err
	}
	return s.Run(ctx, "apt-get", "clean")
}

// ensureLists runs apt-get update when the image has no package lists:
// a step may install packages before any apt-sources step.
func ensureLists(ctx context.Context, s *Session) error {
	lists, err := s.Glob("/var/lib/apt/lists", "*_Packages*")
	if err != nil {
		return err
	}
	if len(lists) > 0 {
		return nil
	}
	return s.Run(ctx, "apt-get", "update")
}
