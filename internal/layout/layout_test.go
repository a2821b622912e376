package layout

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/recipes"
)

func TestPaths(t *testing.T) {
	plain := &recipes.Recipe{Name: "n", Netboot: &recipes.Netboot{},
		Outputs: recipes.Outputs{Snapshot: &recipes.SnapshotOutput{Path: "n.tar.zst"}}}
	external := &recipes.Recipe{Name: "n", Outputs: recipes.Outputs{Rootfs: "/srv/nfs/n/"}}
	withMedia := &recipes.Recipe{Name: "n", Netboot: &recipes.Netboot{Media: &recipes.Media{Kind: "ipxe", Output: "pxe.iso"}}}
	for _, tt := range []struct {
		name                                 string
		l                                    Layout
		rootfs, media, snapshot, stageRootfs string
		external                             bool
	}{
		{name: "in the output", l: New("/o/out", plain), rootfs: "/o/out/rootfs", media: "/o/out/n.iso", snapshot: "/o/out/n.tar.zst", stageRootfs: "/o/.out.partial/rootfs"},
		{name: "outputs.rootfs", l: New("/o/out", external), rootfs: "/srv/nfs/n", stageRootfs: "/srv/nfs/.n.partial", external: true},
		{name: "netboot.media", l: New("/o/out", withMedia), rootfs: "/o/out/rootfs", media: "/o/out/pxe.iso", stageRootfs: "/o/.out.partial/rootfs"},
		{name: "no recipe", l: New("/o/out", nil), rootfs: "/o/out/rootfs", stageRootfs: "/o/.out.partial/rootfs"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.l
			got := []string{l.Rootfs(), l.Media(), l.Snapshot(), l.Staging().Rootfs(), l.RootfsLink(), l.BuildJSON(), l.Netboot(), l.BootTest(), l.Logs(), l.Staging().Out()}
			want := []string{tt.rootfs, tt.media, tt.snapshot, tt.stageRootfs, "/o/out/rootfs", "/o/out/build.json", "/o/out/netboot", "/o/out/boot-test", "/o/out/logs", "/o/.out.partial"}
			if !slices.Equal(got, want) {
				t.Errorf("paths\n got %q\nwant %q", got, want)
			}
			if l.External() != tt.external {
				t.Errorf("External() = %v", l.External())
			}
			outLock, rootLock := l.Locks()
			if outLock != "/o/.out.lock" || (rootLock != "") == !tt.external || (tt.external && rootLock != "/srv/nfs/.n.lock") {
				t.Errorf("Locks() = %q, %q", outLock, rootLock)
			}
		})
	}
}

func TestReadRecipe(t *testing.T) {
	out := t.TempDir()
	if _, err := ReadBuilt(out); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("empty directory: %v, want ErrNotBuilt", err)
	}
	os.WriteFile(filepath.Join(out, BuildJSONName), []byte(`{"result": "ok"}`), 0o644)
	if _, err := ReadBuilt(out); !errors.Is(err, ErrBadReport) {
		t.Errorf("no recipe: %v, want ErrBadReport", err)
	}
	os.WriteFile(filepath.Join(out, BuildJSONName), []byte(`{"recipe": {"name": "r", "source": "embedded:bookworm-nfsroot.yaml",
		"variables": {"B": "2", "A": "1"}, "withheld_variables": ["SECRET"]}, "started": "2023-11-14T22:20:00Z", "build_time": "2023-11-14T22:13:20Z"}`), 0o644)
	b, err := ReadBuilt(out)
	if err != nil {
		t.Fatal(err)
	}
	if b.BuildTime.Unix() != 1700000000 {
		t.Errorf("build time %v", b.BuildTime)
	}
	var gotSrc string
	var gotSet []string
	load := func(src string, set []string) (*recipes.Recipe, error) {
		gotSrc, gotSet = src, set
		r := &recipes.Recipe{Vars: map[string]string{}}
		for _, kv := range set {
			k, v, _ := strings.Cut(kv, "=")
			r.Vars[k] = v
		}
		return r, nil
	}
	if _, err := b.Recipe.ReadRecipe(load, []string{"B=3"}); !errors.Is(err, ErrWithheld) {
		t.Errorf("SECRET not given: %v, want ErrWithheld", err)
	}
	if gotSrc != "bookworm-nfsroot" || !slices.Equal(gotSet, []string{"A=1", "B=2", "B=3"}) {
		t.Errorf("loaded %q with %q", gotSrc, gotSet)
	}
	r, err := b.Recipe.ReadRecipe(load, []string{"SECRET=x"})
	if err != nil || r.Vars["SECRET"] != "x" || r.Vars["A"] != "1" {
		t.Errorf("ReadRecipe = %v, %v", r, err)
	}
	b.Recipe.File = "/r/x.yaml"
	if b.Recipe.Ref() != "/r/x.yaml" {
		t.Errorf("Ref() = %q, want the file", b.Recipe.Ref())
	}
}

// A build stages beside its outputs and takes their names on Commit; an
// external root gets its link at OUT/rootfs. Prepare refuses a directory
// krgimage did not write.
func TestStage(t *testing.T) {
	dir := t.TempDir()
	r := &recipes.Recipe{Name: "n", Outputs: recipes.Outputs{Rootfs: filepath.Join(dir, "nfs", "n")}}
	final := New(filepath.Join(dir, "out"), r)
	s, err := Prepare(final, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(final, false, false); err == nil {
		t.Error("a second build of the same output was not refused: the lock is not held")
	}
	os.MkdirAll(filepath.Join(s.Staging.Rootfs(), "etc"), 0o755)
	os.WriteFile(s.Staging.BuildJSON(), []byte("{}"), 0o644)
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	s.Unlock()
	if link, err := os.Readlink(final.RootfsLink()); err != nil || link != final.Rootfs() {
		t.Errorf("OUT/rootfs -> %q (%v), want %s", link, err, final.Rootfs())
	}
	if _, err := os.Stat(filepath.Join(final.Rootfs(), "etc")); err != nil {
		t.Error(err)
	}
	for _, p := range []string{s.Staging.Out(), s.Staging.Rootfs()} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
	foreign := New(t.TempDir(), nil)
	os.WriteFile(filepath.Join(foreign.Out(), "notes.txt"), []byte("mine"), 0o644)
	if _, err := Prepare(foreign, false, false); !errors.Is(err, ErrRefuseReplace) {
		t.Errorf("foreign directory: %v, want ErrRefuseReplace", err)
	}
}
