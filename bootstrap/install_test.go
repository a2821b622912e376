package bootstrap

import (
	"errors"
	"testing"

	"pault.ag/go/debian/version"
)

func mkDeb(name, ver string, essential bool, pre, dep, prov string) *debFile {
	v, _ := version.Parse(ver)
	return &debFile{Name: name, Version: ver, ver: v, Essential: essential, PreDepends: pre, Depends: dep, Provides: prov}
}

func layerNames(p *installPlan) [][]string {
	var out [][]string
	for _, l := range p.Layers {
		var names []string
		for _, d := range l {
			names = append(names, d.Name)
		}
		out = append(out, names)
	}
	return out
}

func TestPlanInstall(t *testing.T) {
	debs := []*debFile{
		mkDeb("libc6", "2.36", false, "", "libgcc-s1", ""),
		mkDeb("libgcc-s1", "12", false, "", "libc6 (>= 2.35)", ""),
		mkDeb("coreutils", "9.1", true, "libc6", "", ""),
		mkDeb("mawk", "1.3", false, "", "libc6", "awk"),
		mkDeb("c", "1", false, "b", "", ""),
		mkDeb("b", "1", false, "a (>= 1)", "", ""),
		mkDeb("a", "1", false, "", "d", ""),
		mkDeb("d", "1", false, "", "a", ""),
		mkDeb("e", "1", false, "", "c, not-installed | coreutils", ""),
		mkDeb("f", "1", false, "virtual-thing", "", ""),
		mkDeb("g", "1", false, "", "", "virtual-thing"),
	}
	p, err := planInstall(debs, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	var core []string
	for _, d := range p.Core {
		core = append(core, d.Name)
	}
	if got := fmtList(core); got != "libc6 mawk libgcc-s1 coreutils" {
		t.Errorf("core = %s", got)
	}
	// a and d form a Depends cycle: same run. b pre-depends on a, c on b,
	// e depends on c; f pre-depends on what g provides.
	want := "[d a g] [b f] [c e]"
	if got := fmtLayers(layerNames(p)); got != want {
		t.Errorf("layers = %s, want %s", got, want)
	}

	loop := []*debFile{mkDeb("x", "1", false, "y", "", ""), mkDeb("y", "1", false, "x", "", "")}
	if _, err := planInstall(loop, "amd64"); !errors.Is(err, ErrUnsatisfiable) {
		t.Errorf("a Pre-Depends loop: %v", err)
	}
}

func fmtList(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

func fmtLayers(ls [][]string) string {
	out := ""
	for i, l := range ls {
		if i > 0 {
			out += " "
		}
		out += "[" + fmtList(l) + "]"
	}
	return out
}
