package media

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/confread"
	"github.com/krgimage/krgimage/netboot"
	"github.com/krgimage/krgimage/recipes"
	"github.com/krgimage/krgimage/recipes/recipestest"
)

// FuzzBootMenus: for every recipe that validates, the medium's GRUB and
// isolinux configurations read back (as GRUB's lexer and syslinux read
// them) to exactly the entries and kernel arguments the recipe asks for.
func FuzzBootMenus(f *testing.F) {
	for _, v := range recipestest.Seeds {
		f.Add(v.Name, v.Path, v.Option, v.Label, v.Arg)
	}
	f.Fuzz(func(t *testing.T, name, path, option, label, arg string) {
		v := recipestest.Seeds[0]
		v.Name, v.Path, v.Option, v.Label, v.Arg = name, path, option, label, arg
		r, err := recipestest.Recipe(v)
		if err != nil {
			return
		}
		entries := Entries(r, "boot/vmlinuz", "boot/initrd.img")
		if err := checkGrub(r, GrubConfig(r, entries), entries); err != nil {
			t.Fatal(err)
		}
		if err := checkIsolinux(r, IsolinuxConfig(r, entries), entries); err != nil {
			t.Fatal(err)
		}
	})
}

func checkGrub(r *recipes.Recipe, text string, entries []Entry) error {
	got, err := confread.GrubWords(text)
	if err != nil {
		return fmt.Errorf("%v\n%s", err, text)
	}
	want := [][]string{{"set", "default=" + entries[0].Label}, {"set", fmt.Sprintf("timeout=%d", (timeout(r, entries)+9)/10)}}
	for _, e := range entries {
		want = append(want, []string{"menuentry", e.Label, "--id", e.Label, "{"},
			append([]string{"linux", "/boot/vmlinuz"}, e.Args...), []string{"initrd", "/boot/initrd.img"}, []string{"}"})
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		return fmt.Errorf("GRUB commands %q, want %q", got, want)
	}
	return nil
}

func checkIsolinux(r *recipes.Recipe, text string, entries []Entry) error {
	ds, err := confread.Syslinux(text)
	if err != nil {
		return err
	}
	unit, baud, _ := netboot.SerialConsole(entries[0].Args)
	want := []confread.Directive{{Key: "SERIAL", Args: unit + " " + baud}, {Key: "DEFAULT", Args: entries[0].Label}}
	if len(entries) > 1 {
		// The seeds' inventory gives node n1 its own arguments.
		say := "krgimage " + r.Name + ": Enter boots " + entries[0].Label + "; a node with its own arguments boots by its name: n1"
		want = append(want, confread.Directive{Key: "SAY", Args: say})
	}
	if t := timeout(r, entries); t > 0 {
		want = append(want, confread.Directive{Key: "PROMPT", Args: "1"}, confread.Directive{Key: "TIMEOUT", Args: fmt.Sprint(t)})
	}
	for _, e := range entries {
		want = append(want, confread.Directive{Key: "LABEL", Args: e.Label}, confread.Directive{Key: "KERNEL", Args: "/boot/vmlinuz"},
			confread.Directive{Key: "APPEND", Args: strings.Join(append([]string{"initrd=/boot/initrd.img"}, e.Args...), " ")})
	}
	if !slices.Equal(ds, want) {
		return fmt.Errorf("directives %+v, want %+v", ds, want)
	}
	return nil
}
