package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/bootstrap/bootstraptest"
	"github.com/krgimage/krgimage/recipes"
)

const keyRecipe = `name: keys
suite: bookworm
keyring: mirror/keyring.gpg
variant: minbase
cluster:
  domain: c.home
  server: {name: server, ip: 10.0.0.1}
  subnet: 10.0.0.0/24
  nodes: [{name: n1, ip: 10.0.0.11}]
nfsroot: {path: /srv/nfsroot/keys}
provision:
  - apt-sources: {security: false}
  - packages: [less]
  - root-password: {hash: "$y$j9T$salt$hashone"}
  - files: [{src: motd, dst: /etc/motd}]
  - write: {path: /etc/issue, content: "one\n"}
kernel: {package: linux-image-amd64}
initramfs: {generator: native}
netboot: {pxelinux: {append: [console=ttyS0]}}
outputs:
  snapshot: {path: keys.tar.zst}
`

// TestStepKeys changes one thing at a time and checks which keys change:
// the changed step's and every later one's, never an earlier one's.
func TestStepKeys(t *testing.T) {
	dir := t.TempDir()
	mirror, setRelease := keyMirror(t, dir)
	setRelease(sumA)
	os.WriteFile(filepath.Join(dir, "motd"), []byte("hello\n"), 0o644)
	keys := func(src string) (names, keys []string) {
		t.Helper()
		p := filepath.Join(dir, "r.yaml")
		os.WriteFile(p, []byte(src), 0o644)
		r, err := recipes.Load(p, recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
		if err != nil {
			t.Fatal(err)
		}
		steps, c := keyCache(t, dir, mirror, r)
		for i, s := range steps {
			if !isOutputOnly(s) {
				names = append(names, s.Name())
				keys = append(keys, c.keys[i])
			}
		}
		return append(names, "finished", "snapshot archive"), append(keys, c.final, c.snap)
	}
	names, base := keys(keyRecipe)
	if got := strings.Join(names, ", "); got != "bootstrap, apt-sources, packages, kernel, root-password, files, write, initramfs, finished, snapshot archive" {
		t.Fatalf("keys: %s", got)
	}
	for i, k := range base {
		if k == "" {
			t.Fatalf("%s has no key", names[i])
		}
	}
	for _, tt := range []struct {
		name   string
		change func() string
		// first is the first key that changes; "" means none does.
		first string
	}{
		{"no change", func() string { return keyRecipe }, ""},
		{"write content", func() string { return strings.Replace(keyRecipe, `"one\n"`, `"two\n"`, 1) }, "write"},
		{"files input", func() string {
			os.WriteFile(filepath.Join(dir, "motd"), []byte("changed\n"), 0o644)
			return keyRecipe
		}, "files"},
		{"password hash", func() string { return strings.Replace(keyRecipe, "hashone", "hashtwo", 1) }, "root-password"},
		{"packages", func() string { return strings.Replace(keyRecipe, "[less]", "[less, procps]", 1) }, "packages"},
		{"the inventory", func() string { return strings.Replace(keyRecipe, "10.0.0.11", "10.0.0.12", 1) }, "apt-sources"},
		{"the mirror's packages", func() string { setRelease(strings.Replace(sumA, "aaaa", "cccc", 1)); return keyRecipe }, "bootstrap"},
		{"initramfs", func() string {
			return strings.Replace(keyRecipe, "{generator: native}", "{generator: native, compression: xz}", 1)
		}, "initramfs"},
		{"snapshot level", func() string {
			return strings.Replace(keyRecipe, "{path: keys.tar.zst}", "{path: keys.tar.zst, level: 9}", 1)
		}, "snapshot archive"},
		// Output steps are not on the root's chain.
		{"netboot only", func() string { return strings.Replace(keyRecipe, "[console=ttyS0]", "[console=ttyS0, quiet]", 1) }, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(dir, "motd"), []byte("hello\n"), 0o644)
			setRelease(sumA)
			_, got := keys(tt.change())
			changed := false
			for i := range base {
				if names[i] == tt.first && !changed {
					changed = true
				}
				if (got[i] != base[i]) != changed {
					t.Errorf("%s: key changed %v, want %v", names[i], got[i] != base[i], changed)
				}
			}
		})
	}
}

// TestStepKeysLockfile: a lockfile keys the bootstrap, which it pins; the
// steps after it install from the mirror, whose indices then key them.
func TestStepKeysLockfile(t *testing.T) {
	dir := t.TempDir()
	mirror, setRelease := keyMirror(t, dir)
	lock := `{"format":1,"suite":"bookworm","architecture":"amd64","variant":"minbase","components":["main"],` +
		`"release":{"codename":"bookworm","date":"2026-07-11T10:16:37Z"},"packages":[{"name":"base-files","version":"12",` +
		`"architecture":"amd64","filename":"pool/b.deb","size":1,"sha256":"` + strings.Repeat("a", 64) + `"}]}`
	os.WriteFile(filepath.Join(dir, "r.lock"), []byte(lock), 0o644)
	p := filepath.Join(dir, "r.yaml")
	os.WriteFile(p, []byte("name: keys\nsuite: bookworm\nkeyring: mirror/keyring.gpg\nvariant: minbase\nbootstrap: {method: native}\nprovision:\n  - packages: [openssh-server]\n  - mtab\nkernel: {package: linux-image-amd64}\n"), 0o644)
	r, err := recipes.Load(p, recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	keys := func() map[string]string {
		steps, c := keyCache(t, dir, mirror, r)
		out := map[string]string{}
		for i, s := range steps {
			if c.keys[i] == "" {
				t.Fatalf("%s has no key", s.Name())
			}
			out[s.Name()] = c.keys[i]
		}
		return out
	}
	setRelease(sumA)
	before := keys()
	setRelease(strings.Replace(sumA, "aaaa", "cccc", 1))
	after := keys()
	for name, changed := range map[string]bool{"bootstrap": false, "packages": true, "kernel": true, "mtab": true} {
		if (before[name] != after[name]) != changed {
			t.Errorf("%s: key changed %v with the mirror's indices, want %v", name, before[name] != after[name], changed)
		}
	}
}

// TestStepKeysUnverifiedRelease: a Release no key of the recipe's
// keyring signed keys nothing, so the steps are not cached.
func TestStepKeysUnverifiedRelease(t *testing.T) {
	dir := t.TempDir()
	mirror, setRelease := keyMirror(t, dir)
	setRelease(sumA)
	forger, err := bootstraptest.Write(filepath.Join(dir, "forger"), bootstraptest.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	if err := forger.WriteRelease([]byte(releaseText("Sat, 11 Jul 2026 10:16:37 UTC", strings.Replace(sumA, "aaaa", "dddd", 1)))); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(forger.Dists(), "InRelease"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(mirror, "dists/bookworm/InRelease"), b, 0o644)
	p := filepath.Join(dir, "r.yaml")
	os.WriteFile(p, []byte("name: keys\nsuite: bookworm\nkeyring: mirror/keyring.gpg\nvariant: minbase\nprovision:\n  - mtab\n"), 0o644)
	r, err := recipes.Load(p, recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	steps, c := keyCache(t, dir, mirror, r)
	for i, s := range steps {
		if c.keys[i] != "" {
			t.Errorf("%s is keyed from a Release signed by an unknown key", s.Name())
		}
	}
}

// keyMirror makes a file mirror of bookworm whose signed Release the test
// rewrites with setRelease; its keyring is mirror/keyring.gpg.
func keyMirror(t *testing.T, dir string) (mirror string, setRelease func(sum string)) {
	t.Helper()
	mirror = filepath.Join(dir, "mirror")
	repo, err := bootstraptest.Write(mirror, bootstraptest.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	return mirror, func(sum string) {
		if err := repo.WriteRelease([]byte(releaseText("Sat, 11 Jul 2026 10:16:37 UTC", sum))); err != nil {
			t.Fatal(err)
		}
	}
}

// keyCache computes the keys of r's steps against mirror, with a store
// the test's cleanup closes.
func keyCache(t *testing.T, dir, mirror string, r *recipes.Recipe) ([]BuildStep, *stageCache) {
	t.Helper()
	o := testOptions(t, filepath.Join(dir, "out"))
	o.Recipe, o.Steps, o.StageCache, o.CacheDir = r, nil, true, filepath.Join(dir, "cache")
	o.Mirror = Mirror{URL: "file://" + mirror, Source: "test"}
	steps := o.steps()
	c := newStageCache(t.Context(), &o, steps, o.env(filepath.Join(dir, "root"), filepath.Join(dir, "out")), newReleases(o.env(filepath.Join(dir, "root"), filepath.Join(dir, "out"))))
	t.Cleanup(func() { c.store.Close() })
	return steps, c
}
