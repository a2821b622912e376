package bootstrap

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"pault.ag/go/debian/dependency"
	"pault.ag/go/debian/version"

	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/recipes"
)

// Index is what a suite offers for one architecture: its own packages and
// the architecture-independent ones, found by name or by what they
// provide.
type Index struct {
	arch     string
	archDep  dependency.Arch
	byName   map[string][]*candidate
	names    []string
	provides map[string][]provision
}

type candidate struct {
	*debarchive.Package
	ver version.Version
}

// provision is a package providing a virtual name, at a version when the
// Provides entry gives one.
type provision struct {
	c       *candidate
	version string
}

// NewIndex indexes pkgs for arch. Packages of other architectures, and
// those whose version cannot be read, are left out: neither could be
// installed.
func NewIndex(arch string, pkgs []*debarchive.Package, log *slog.Logger) *Index {
	ix := &Index{arch: arch, byName: map[string][]*candidate{}}
	if a, err := dependency.ParseArch(arch); err == nil {
		ix.archDep = *a
	}
	for _, p := range pkgs {
		if p.Architecture != arch && p.Architecture != "all" {
			continue
		}
		v, err := version.Parse(p.Version)
		if err != nil {
			log.Warn("skipping a package with an unreadable version", "package", p.Name, "version", p.Version, "err", err)
			continue
		}
		ix.byName[p.Name] = append(ix.byName[p.Name], &candidate{Package: p, ver: v})
	}
	for name, cs := range ix.byName {
		// Newest first: the resolver takes the first that fits.
		slices.SortStableFunc(cs, func(a, b *candidate) int { return version.Compare(b.ver, a.ver) })
		ix.names = append(ix.names, name)
	}
	slices.Sort(ix.names)
	return ix
}

// Len is the number of package names in the index.
func (ix *Index) Len() int { return len(ix.names) }

// Find returns the package name at exactly version, or nil.
func (ix *Index) Find(name, ver string) *debarchive.Package {
	for _, c := range ix.byName[name] {
		if c.Version == ver {
			return c.Package
		}
	}
	return nil
}

func (ix *Index) providers(name string) []provision {
	if ix.provides == nil {
		ix.provides = map[string][]provision{}
		for _, n := range ix.names {
			for _, c := range ix.byName[n] {
				if c.Provides == "" {
					continue
				}
				d, err := dependency.Parse(c.Provides)
				if err != nil {
					continue // an unreadable Provides provides nothing
				}
				for _, p := range d.GetAllPossibilities() {
					pv := provision{c: c}
					if p.Version != nil && p.Version.Operator == "=" {
						pv.version = p.Version.Number
					}
					ix.provides[p.Name] = append(ix.provides[p.Name], pv)
				}
			}
		}
	}
	return ix.provides[name]
}

// Selection says which packages a bootstrap starts from. The rules are
// debootstrap's, so that both bootstrappers install the same system.
type Selection struct {
	// Codename of the suite (from its Release): it decides the
	// merged-/usr packages.
	Codename string
	// Variant is important (Priority required and important), minbase
	// (required and apt) or buildd (minbase and build-essential).
	Variant string
	Include []string
	Exclude []string
	// HTTPS adds ca-certificates, which apt needs to use an https mirror.
	HTTPS bool
}

// Seed is a package a bootstrap asks for, and why.
type Seed struct {
	Name string
	Why  string
}

// Seeds returns the packages sel asks for, and the names dependencies on
// which are dropped. Excluded packages are removed from the seeds only: as
// with debootstrap, a package another one needs is still installed.
func (ix *Index) Seeds(sel Selection) ([]Seed, map[string]bool) {
	excluded := map[string]bool{}
	for _, x := range sel.Exclude {
		excluded[x] = true
	}
	var seeds []Seed
	seen := map[string]bool{}
	add := func(name, why string) {
		if !seen[name] && !excluded[name] {
			seen[name] = true
			seeds = append(seeds, Seed{Name: name, Why: why})
		}
	}
	for _, n := range ix.names {
		if ix.byName[n][0].Priority == "required" {
			add(n, "Priority: required")
		}
	}
	drop := map[string]bool{}
	switch v := recipes.SuiteVersion(sel.Codename); {
	case v == 12:
		// bookworm is merged by debootstrap itself, or deliberately
		// not: either way usrmerge's live conversion has no place, and
		// usr-is-merged records that the transition is done.
		add("usr-is-merged", "bookworm's merged /usr")
		drop["usrmerge"] = true
	case v > 12:
		drop["usrmerge"] = true
	}
	switch sel.Variant {
	case "minbase":
		add("apt", "variant minbase")
	case "buildd":
		add("apt", "variant buildd")
		add("build-essential", "variant buildd")
	default:
		for _, n := range ix.names {
			if ix.byName[n][0].Priority == "important" {
				add(n, "Priority: important")
			}
		}
	}
	if sel.HTTPS {
		if recipes.SuiteVersion(sel.Codename) <= 9 {
			add("apt-transport-https", "https mirror")
		}
		add("ca-certificates", "https mirror")
	}
	for _, n := range sel.Include {
		add(n, "include")
	}
	return seeds, drop
}

// Resolution is the closed set of packages to install.
type Resolution struct {
	// Packages sorted by name.
	Packages []*debarchive.Package
	// Why says, for each package name, what brought it in.
	Why map[string]string
}

// link records why a package was selected: the seed reason, or the
// package that needed it.
type link struct {
	from string // "" for a seed
	why  string
}

type resolver struct {
	ix       *Index
	drop     map[string]bool
	excluded map[string]bool
	log      *slog.Logger
	selected map[string]*candidate
	links    map[string]link
	queue    []*candidate
	// alts are relations with several alternatives, decided only once
	// every unconditional need is known, so that an alternative already
	// chosen for another reason wins over the first one listed.
	alts []pendingRel
}

type pendingRel struct {
	from *candidate
	rel  []dependency.Possibility
}

// Resolve closes seeds over Depends and Pre-Depends. Each relation is
// satisfied by a package already selected when one fits, else by its first
// alternative that can be installed: a real package of a fitting version,
// or a provider of a virtual one. Relations on names in drop are ignored.
// A relation nothing satisfies is an ErrUnsatisfiable error naming the
// chain of packages that led to it.
func (ix *Index) Resolve(seeds []Seed, drop map[string]bool, exclude []string, log *slog.Logger) (*Resolution, error) {
	r := &resolver{ix: ix, drop: drop, excluded: map[string]bool{}, log: log,
		selected: map[string]*candidate{}, links: map[string]link{}}
	for _, x := range exclude {
		r.excluded[x] = true
	}
	for _, s := range seeds {
		c, err := r.pick(dependency.Possibility{Name: s.Name})
		if err != nil {
			return nil, fmt.Errorf("%w: %s (%s): %v", ErrNoPackage, s.Name, s.Why, err)
		}
		r.add(c, link{why: s.Why})
	}
	for {
		for len(r.queue) > 0 {
			c := r.queue[0]
			r.queue = r.queue[1:]
			if err := r.expand(c); err != nil {
				return nil, err
			}
		}
		if len(r.alts) == 0 {
			break
		}
		p := r.alts[0]
		r.alts = r.alts[1:]
		if r.satisfied(p.rel) {
			continue
		}
		if err := r.choose(p.from, p.rel); err != nil {
			return nil, err
		}
	}
	res := &Resolution{Why: map[string]string{}}
	for name, c := range r.selected {
		res.Packages = append(res.Packages, c.Package)
		res.Why[name] = r.chain(name)
	}
	slices.SortFunc(res.Packages, func(a, b *debarchive.Package) int { return cmp.Compare(a.Name, b.Name) })
	return res, nil
}

func (r *resolver) add(c *candidate, l link) {
	if _, ok := r.selected[c.Name]; ok {
		return
	}
	if r.excluded[c.Name] && l.from != "" {
		r.log.Warn("an excluded package is needed by another one and is installed anyway", "package", c.Name, "needed_by", l.from)
	}
	r.selected[c.Name] = c
	r.links[c.Name] = l
	r.queue = append(r.queue, c)
}

// relations returns c's Pre-Depends then Depends, possibilities on other
// architectures and dropped names removed.
func (r *resolver) relations(c *candidate) ([][]dependency.Possibility, error) {
	var out [][]dependency.Possibility
	for _, field := range []string{c.PreDepends, c.Depends} {
		if strings.TrimSpace(field) == "" {
			continue
		}
		d, err := dependency.Parse(field)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: relation %q: %v", ErrMalformed, c.ID(), field, err)
		}
		for _, rel := range d.Relations {
			var ps []dependency.Possibility
			for _, p := range rel.Possibilities {
				if p.Substvar || r.drop[p.Name] {
					continue
				}
				if p.Architectures != nil && !p.Architectures.Matches(&r.ix.archDep) {
					continue
				}
				ps = append(ps, p)
			}
			if len(ps) > 0 {
				out = append(out, ps)
			}
		}
	}
	return out, nil
}

func (r *resolver) expand(c *candidate) error {
	rels, err := r.relations(c)
	if err != nil {
		return err
	}
	for _, rel := range rels {
		if r.satisfied(rel) {
			continue
		}
		if len(rel) > 1 {
			r.alts = append(r.alts, pendingRel{from: c, rel: rel})
			continue
		}
		if err := r.choose(c, rel); err != nil {
			return err
		}
	}
	return nil
}

// satisfied reports whether a selected package fulfils one of rel's
// possibilities.
func (r *resolver) satisfied(rel []dependency.Possibility) bool {
	for _, p := range rel {
		if c, ok := r.selected[p.Name]; ok && fits(c.ver, p.Version) {
			return true
		}
		for _, pv := range r.ix.providers(p.Name) {
			if s, ok := r.selected[pv.c.Name]; ok && s == pv.c && providesFits(pv, p.Version) {
				return true
			}
		}
	}
	return false
}

// choose selects the first installable alternative of rel.
func (r *resolver) choose(from *candidate, rel []dependency.Possibility) error {
	var reasons []string
	// An excluded alternative is only taken when nothing else fits.
	for pass := 0; pass < 2; pass++ {
		reasons = reasons[:0]
		for _, p := range rel {
			if pass == 0 && r.excluded[p.Name] {
				reasons = append(reasons, p.Name+" is excluded")
				continue
			}
			c, err := r.pick(p)
			if err != nil {
				reasons = append(reasons, err.Error())
				continue
			}
			r.add(c, link{from: from.Name})
			return nil
		}
	}
	return fmt.Errorf("%w: %s needs %s, but %s (chain: %s)", ErrUnsatisfiable,
		from.ID(), relString(rel), strings.Join(reasons, "; "), r.chain(from.Name))
}

// pick returns the package that installs possibility p: the newest real
// package of a fitting version, else a provider.
func (r *resolver) pick(p dependency.Possibility) (*candidate, error) {
	cs := r.ix.byName[p.Name]
	for _, c := range cs {
		if fits(c.ver, p.Version) {
			if s, ok := r.selected[p.Name]; ok && s != c {
				return nil, fmt.Errorf("%s is already selected at %s", p.Name, s.Version)
			}
			return c, nil
		}
	}
	if len(cs) > 0 {
		return nil, fmt.Errorf("%s %s does not satisfy (%s %s)", p.Name, cs[0].Version, p.Version.Operator, p.Version.Number)
	}
	var provs []provision
	for _, pv := range r.ix.providers(p.Name) {
		if providesFits(pv, p.Version) {
			provs = append(provs, pv)
		}
	}
	if len(provs) == 0 {
		return nil, fmt.Errorf("%s is not in the index and nothing provides it", p.Name)
	}
	// Several providers: the most important one, then by name, so that
	// the choice is the same on every run.
	slices.SortStableFunc(provs, func(a, b provision) int {
		if d := cmp.Compare(priorityRank(a.c.Priority), priorityRank(b.c.Priority)); d != 0 {
			return d
		}
		return cmp.Compare(a.c.Name, b.c.Name)
	})
	if len(provs) > 1 {
		r.log.Info("several packages provide a virtual package; taking the most important", "virtual", p.Name, "package", provs[0].c.Name)
	}
	return provs[0].c, nil
}

func fits(v version.Version, rel *dependency.VersionRelation) bool {
	return rel == nil || rel.SatisfiedBy(v)
}

// providesFits: an unversioned Provides satisfies only unversioned
// relations (Debian policy 7.5).
func providesFits(pv provision, rel *dependency.VersionRelation) bool {
	if rel == nil {
		return true
	}
	if pv.version == "" {
		return false
	}
	v, err := version.Parse(pv.version)
	return err == nil && rel.SatisfiedBy(v)
}

func priorityRank(p string) int {
	switch p {
	case "required":
		return 0
	case "important":
		return 1
	case "standard":
		return 2
	case "optional":
		return 3
	}
	return 4
}

func relString(rel []dependency.Possibility) string {
	parts := make([]string, len(rel))
	for i, p := range rel {
		parts[i] = p.Name
		if p.Version != nil {
			parts[i] += " (" + p.Version.Operator + " " + p.Version.Number + ")"
		}
	}
	return strings.Join(parts, " | ")
}

// chain explains how name came to be selected: seed reason first.
func (r *resolver) chain(name string) string {
	var parts []string
	seen := map[string]bool{}
	for name != "" && !seen[name] {
		seen[name] = true
		l := r.links[name]
		if l.from == "" {
			parts = append(parts, name+" ("+l.why+")")
			break
		}
		parts = append(parts, name)
		name = l.from
	}
	slices.Reverse(parts)
	return strings.Join(parts, " -> ")
}
