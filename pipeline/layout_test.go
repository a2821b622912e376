package pipeline

import (
	"path/filepath"
	"testing"

	"github.com/krgimage/krgimage/internal/layout"
	"github.com/krgimage/krgimage/recipes"
)

// siblings is the staging directory and lock file of a build into path,
// as the layout places them.
func siblings(path string) (stage, lock string) {
	l := layout.New(path, nil)
	lock, _ = l.Locks()
	return l.Staging().Out(), lock
}

// The plan names the image root, the netboot directory, the medium and
// the snapshot where the layout puts them, an external root included.
func TestPlanAsksTheLayout(t *testing.T) {
	r, err := recipes.LoadShipped("bookworm-nfsroot", recipes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ext := filepath.Join(t.TempDir(), "nfsroot")
	r.Outputs.Rootfs = ext
	r.Netboot.Media = &recipes.Media{Kind: "isolinux", Output: "n.iso"}
	o := Options{Recipe: r, OutDir: t.TempDir(), Mirror: Mirror{URL: "http://mirror.invalid/debian"}}
	lay, err := o.layout()
	if err != nil {
		t.Fatal(err)
	}
	env := o.env(lay.Rootfs(), lay.Out())
	if got := env.finalLayout().Rootfs(); got != ext {
		t.Errorf("image root %s, want %s", got, ext)
	}
	if got, want := env.finalLayout().Media(), filepath.Join(o.OutDir, "n.iso"); got != want {
		t.Errorf("medium %s, want %s", got, want)
	}
	if got := (&mediaStep{}).Describe(env)[0]; got[:len("write "+lay.Media())] != "write "+lay.Media() {
		t.Errorf("media plan line %q does not name %s", got, lay.Media())
	}
	if got := (&netbootStep{}).Describe(env)[0]; got != "write "+lay.Netboot()+":" {
		t.Errorf("netboot plan line %q", got)
	}
}
