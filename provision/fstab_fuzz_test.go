package provision

import (
	"fmt"
	"slices"
	"testing"

	"github.com/krgimage/krgimage/internal/confread"
	"github.com/krgimage/krgimage/recipes/recipestest"
)

// FuzzFstab: for every recipe that validates, /etc/fstab reads back (as
// getmntent reads it) to exactly the mounts the recipe asks for: the
// options it lists, or fstab's defaults where it lists none.
func FuzzFstab(f *testing.F) {
	for _, v := range recipestest.Seeds {
		f.Add(v.Name, v.Path, v.MountOptions)
	}
	f.Fuzz(func(t *testing.T, name, path, mountOptions string) {
		v := recipestest.Seeds[0]
		v.Name, v.Path, v.MountOptions = name, path, mountOptions
		r, err := recipestest.Recipe(v)
		if err != nil {
			return
		}
		cfg := r.Provision[0].Config.(*Fstab)
		got, err := confread.Fstab(FstabFile(r, cfg))
		if err != nil {
			t.Fatalf("%v\n%s", err, FstabFile(r, cfg))
		}
		opts := mountOptions
		if opts == "" {
			opts = "defaults"
		}
		want := []confread.FstabEntry{
			{Source: "none", Target: "/proc", Type: "proc", Options: "defaults", Dump: "0", Pass: "0"},
			{Source: "none", Target: "/sys", Type: "sysfs", Options: "defaults", Dump: "0", Pass: "0"},
			{Source: "none", Target: "/config", Type: "configfs", Options: "defaults", Dump: "0", Pass: "0"},
			{Source: "10.0.0.1:" + r.NFSRoot.Path + "/var", Target: "/var", Type: "nfs", Options: opts, Dump: "0", Pass: "0"},
			{Source: "none", Target: "/tmp", Type: "tmpfs", Options: opts, Dump: "0", Pass: "0"},
		}
		if !slices.Equal(got, want) {
			t.Fatalf("fstab %s, want %s", fmt.Sprint(got), fmt.Sprint(want))
		}
	})
}
