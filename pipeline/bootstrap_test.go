package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/bootstrap"
	"github.com/krgimage/krgimage/bootstrap/bootstraptest"
	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/recipes"
)

func loadTestRecipe(t *testing.T, dir, body string) *recipes.Recipe {
	t.Helper()
	path := filepath.Join(dir, "node.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := recipes.Load(path, recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func bootstrapEnv(r *recipes.Recipe, mirror string) *Env {
	return &Env{Recipe: r, Root: "/srv/root", Mirror: Mirror{URL: mirror}, Log: logging.Discard(),
		Runner: run.New(logging.Discard()), CacheDir: "/var/cache/krg", Arch: r.Architecture}
}

func TestBootstrapStepDescribe(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, recipe string
		lock         bool
		want, not    []string
	}{
		{
			name:   "native by default",
			recipe: "suite: bookworm\nvariant: minbase\n",
			want: []string{"native bootstrap: the packages of debootstrap --arch=amd64 --variant=minbase --components=main bookworm /srv/root http://m/debian",
				"kept in /var/cache/krg/packages", "checks first: root, an empty target"},
			not: []string{"pins", "gpgv installed"},
		},
		{
			name:   "native with its lockfile",
			recipe: "suite: bookworm\n",
			lock:   true,
			want:   []string{"exactly the 1 packages " + filepath.Join(dir, "node.lock") + " pins (Release of 2024-01-02)"},
		},
		{
			name:   "debootstrap",
			recipe: "suite: lenny\nbootstrap: {method: debootstrap}\narchived: true\n",
			lock:   true,
			want:   []string{"debootstrap --arch=amd64 --components=main lenny /srv/root http://m/debian", "debootstrap and gpgv installed"},
			not:    []string{"native", "pins", "expired"},
		},
		{
			name:   "foreign falls back to debootstrap",
			recipe: "suite: bookworm\narchitecture: arm64\nbootstrap: {foreign: true}\n",
			want:   []string{"debootstrap --arch=arm64 --components=main --foreign", "qemu-user-static"},
		},
		{
			name:   "archived native",
			recipe: "suite: lenny\narchived: true\nbootstrap: {method: native}\n",
			want:   []string{"expired signing keys are accepted"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "node.lock"))
			if tt.lock {
				writeTestLock(t, filepath.Join(dir, "node.lock"))
			}
			r := loadTestRecipe(t, dir, tt.recipe)
			env := bootstrapEnv(r, "http://m/debian")
			s := &bootstrapStep{}
			if err := s.Validate(t.Context(), env); err != nil {
				t.Fatal(err)
			}
			got := strings.Join(s.Describe(env), "\n")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("plan lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("plan mentions %q:\n%s", n, got)
				}
			}
		})
	}
}

func writeTestLock(t *testing.T, path string) {
	t.Helper()
	l := &bootstrap.Lockfile{Format: bootstrap.LockFormat, Suite: "bookworm", Architecture: "amd64", Variant: "important",
		Components: []string{"main"}, Release: bootstrap.LockedRelease{Codename: "bookworm", Date: bootstraptest.Epoch},
		Packages: []bootstrap.LockedPackage{{Name: "a", Version: "1", Architecture: "all", Filename: "pool/a.deb", Size: 1, SHA256: strings.Repeat("0", 64)}}}
	if err := l.Write(path); err != nil {
		t.Fatal(err)
	}
}

func TestBootstrapStepLockfile(t *testing.T) {
	dir := t.TempDir()
	r := loadTestRecipe(t, dir, "suite: bookworm\nbootstrap: {lockfile: pinned.lock}\n")
	s := &bootstrapStep{}
	env := bootstrapEnv(r, "http://m/debian")
	if err := s.Validate(t.Context(), env); err == nil || !strings.Contains(err.Error(), "krgimage lock") {
		t.Errorf("Validate() with a missing named lockfile = %v", err)
	}
	os.WriteFile(filepath.Join(dir, "pinned.lock"), []byte("{"), 0o644)
	if err := s.Validate(t.Context(), env); err == nil || !strings.Contains(err.Error(), "pinned.lock") {
		t.Errorf("Validate() with a broken lockfile = %v", err)
	}
	writeTestLock(t, filepath.Join(dir, "pinned.lock"))
	if err := s.Validate(t.Context(), env); err != nil || s.options(env).Lock == nil {
		t.Errorf("Validate() = %v, lock %v", err, s.options(env).Lock)
	}
	if _, err := recipes.Parse([]byte("bootstrap: {method: debootstrap, lockfile: x.lock}\n"), "x.yaml", recipes.Options{}); err == nil {
		t.Error("a lockfile with method: debootstrap is accepted")
	}
}

func TestLock(t *testing.T) {
	repo := bootstraptest.NewRepo(t, bootstraptest.Spec{Suite: "trixie", Debs: []bootstraptest.Deb{
		{Name: "base", Version: "1", Priority: "required", Depends: "lib"},
		{Name: "lib", Version: "2"},
		{Name: "apt", Version: "3", Depends: "lib (>= 2)"},
	}})
	dir := t.TempDir()
	r := loadTestRecipe(t, dir, "suite: trixie\nvariant: minbase\nkeyring: "+repo.Keyring+"\n")
	o := Options{Recipe: r, Mirror: Mirror{URL: repo.Serve(t)}, Log: logging.Discard(), Runner: run.New(logging.Discard()), CacheDir: t.TempDir()}
	path, l, err := Lock(t.Context(), o, "")
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "node.lock") || len(l.Packages) != 3 {
		t.Errorf("Lock() = %s, %+v", path, l)
	}
	back, err := bootstrap.ReadLockfile(path)
	if err != nil || back.Packages[1].Name != "base" {
		t.Errorf("the lockfile reads back as %+v, %v", back, err)
	}
	// A recipe embedded in krgimage has no place for a lockfile.
	r.File = ""
	if _, _, err := Lock(t.Context(), o, ""); err == nil {
		t.Error("Lock() of an embedded recipe without a path = nil error")
	}
}
